package ingress

import (
	"context"
	"maps"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

func TestControllerSyncsTableAndStatus(t *testing.T) {
	ing := testIngress("web", nil)
	ing.Spec.Rules = appendPath(nil, "web.test", networkingv1.PathTypePrefix, "/", "web", 80)
	other := testIngress("other", nil)
	other.Spec.IngressClassName = ptrTo("nginx")
	other.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "10.0.0.1"}, {IP: "10.0.0.9"}}
	client := fake.NewClientset(testClass(true), ing, other,
		testService("web", corev1.ServicePort{Name: "http", Port: 80}),
		testSlice("web", "web-1", "http", 8080, testEP{"10.1.0.1", true, true, false}))
	srv := NewServer(ServerOptions{})
	var mu sync.Mutex
	var programmed map[netip.Addr]int // the ready endpoints of the table last swapped in
	c := NewController(client, srv, ControllerOptions{NodeName: "n1", Addresses: []string{"10.0.0.1"}, HTTPPort: 80, HTTPSPort: 443,
		Programmed: func(ready map[netip.Addr]int) { mu.Lock(); programmed = ready; mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	poll := func(what string, f func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) { return f(), nil }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	endpoint := func() string {
		rt := srv.Table().Ports[80].Match(httptest.NewRequest("GET", "http://web.test/", nil))
		if rt == nil || len(rt.Backends[0].Endpoints) == 0 {
			return ""
		}
		return rt.Backends[0].Endpoints[0].String()
	}
	poll("route live", func() bool { return endpoint() == "10.1.0.1:8080" })
	status := func(name string) []networkingv1.IngressLoadBalancerIngress {
		got, err := client.NetworkingV1().Ingresses("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got.Status.LoadBalancer.Ingress
	}
	poll("status written", func() bool { s := status("web"); return len(s) == 1 && s[0].IP == "10.0.0.1" })
	poll("status of an Ingress not ours loses our address", func() bool { s := status("other"); return len(s) == 1 && s[0].IP == "10.0.0.9" })
	// An endpoint change is live without anything else changing.
	_, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx,
		testSlice("web", "web-1", "http", 8080, testEP{"10.1.0.2", true, true, false}), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll("new endpoint live", func() bool { return endpoint() == "10.1.0.2:8080" })
	mu.Lock()
	defer mu.Unlock()
	if want := map[netip.Addr]int{netip.MustParseAddr("10.1.0.2"): 1}; !maps.Equal(programmed, want) {
		t.Errorf("ready endpoints reported after the swap: %v, want %v", programmed, want)
	}
}

func TestReadyIPs(t *testing.T) {
	got := readyIPs([]*discoveryv1.EndpointSlice{
		testSlice("web", "web-1", "http", 8080, testEP{"10.1.0.1", true, true, false}, testEP{"10.1.0.2", false, true, true},
			testEP{"10.1.0.3", false, false, false}),
		testSlice("api", "api-1", "http", 8080, testEP{"10.1.0.1", true, true, false}),
		testSlice("pub", "pub-1", "http", 8080, testEP{"10.1.0.4", true, true, true}), // publishNotReadyAddresses: terminating yet ready
	})
	want := map[netip.Addr]int{netip.MustParseAddr("10.1.0.1"): 2}
	if !maps.Equal(got, want) {
		t.Errorf("readyIPs = %v, want %v", got, want)
	}
}

func ptrTo[T any](v T) *T { return &v }
