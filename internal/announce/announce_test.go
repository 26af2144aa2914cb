package announce

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakeAPI is a fake clientset that numbers resourceVersions as etcd does.
func fakeAPI(objs ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	var mu sync.Mutex
	rv := 100
	bump := func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, ok := a.(interface{ GetObject() runtime.Object }); ok {
			mu.Lock()
			rv++
			m, _ := meta.Accessor(o.GetObject())
			m.SetResourceVersion(strconv.Itoa(rv))
			mu.Unlock()
		}
		return false, nil, nil
	}
	cs.PrependReactor("create", "leases", bump)
	cs.PrependReactor("update", "leases", bump)
	return cs
}

func lbService(etp corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.168.1.240"}}}}}
}

// TestFailover: two nodes, one announces; the other takes over once the
// holder stops renewing for a lease duration, and not before.
func TestFailover(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fakeAPI(lbService(corev1.ServiceExternalTrafficPolicyCluster))
	clk := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	node := func(name string) (*Announcer, *FakeResponder) {
		r := &FakeResponder{}
		a := New(Config{Client: cs, Node: name, Responder: r, Log: slog.New(slog.DiscardHandler), Now: clk.now})
		if !a.Start(ctx) {
			t.Fatal("informers did not sync")
		}
		return a, r
	}
	a, ra := node("a")
	b, rb := node("b")
	vip := []netip.Addr{netip.MustParseAddr("192.168.1.240")}
	holder := func(want string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			l, err := b.leases.Leases("kube-system").Get(LeaseName("default", "web"))
			return err == nil && ptr.Deref(l.Spec.HolderIdentity, "") == want && l.ResourceVersion == a.written[l.Name].ResourceVersion, nil
		})
		if err != nil {
			t.Fatalf("b never saw holder %q", want)
		}
	}
	a.Step(ctx)
	if got := ra.IPs(); len(got) != 1 || got[0] != vip[0] {
		t.Fatalf("a announces %v, want %v", got, vip)
	}
	holder("a")
	b.Step(ctx)
	if len(rb.IPs()) != 0 {
		t.Fatalf("b announces %v while a holds the lease", rb.IPs())
	}
	for range 4 { // a renews; b never takes over
		clk.add(time.Second)
		a.Step(ctx)
		holder("a")
		b.Step(ctx)
		if len(rb.IPs()) != 0 {
			t.Fatalf("b took over from a live holder")
		}
	}
	// a dies: after the lease duration b takes over and announces anew.
	clk.add(time.Second)
	b.Step(ctx)
	if len(rb.IPs()) != 0 {
		t.Fatalf("b took over before the lease expired")
	}
	clk.add(1100 * time.Millisecond)
	b.Step(ctx)
	if got := rb.IPs(); len(got) != 1 || got[0] != vip[0] || len(rb.GARP) != 1 {
		t.Fatalf("b announces %v (gratuitous %v), want %v", got, rb.GARP, vip)
	}
}

// TestLocalPolicy: under externalTrafficPolicy Local only a node with a ready
// endpoint announces; it lets go when the endpoint goes.
func TestLocalPolicy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.5"}, NodeName: ptr.To("b"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}}
	cs := fakeAPI(lbService(corev1.ServiceExternalTrafficPolicyLocal), slice)
	clk := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	ra, rb := &FakeResponder{}, &FakeResponder{}
	a := New(Config{Client: cs, Node: "a", Responder: ra, Log: slog.New(slog.DiscardHandler), Now: clk.now})
	b := New(Config{Client: cs, Node: "b", Responder: rb, Log: slog.New(slog.DiscardHandler), Now: clk.now})
	a.Start(ctx)
	b.Start(ctx)
	a.Step(ctx)
	if len(ra.IPs()) != 0 {
		t.Fatalf("a announces without a local endpoint")
	}
	b.Step(ctx)
	if len(rb.IPs()) != 1 {
		t.Fatalf("b (ready endpoint) does not announce")
	}
	slice.Endpoints[0].Conditions.Ready = ptr.To(false)
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		b.Step(ctx)
		return len(rb.IPs()) == 0, nil
	})
	if err != nil {
		t.Fatalf("b still announces after its endpoint went unready")
	}
}
