package explain

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/iptables"
)

func ptr[T any](v T) *T { return &v }

func objects() ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	httpd := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "httpd-svc"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.20", Ports: []corev1.ServicePort{{Port: 8080, NodePort: 30080, Protocol: corev1.ProtocolTCP}}}}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 5432}}}}
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "search"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.com"}}
	slice := func(svc string, ips ...string) *discoveryv1.EndpointSlice {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Port: ptr(int32(80))}}}
		for i, ip := range ips {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
				NodeName: ptr([]string{"node-a", "node-b"}[i%2])})
		}
		return es
	}
	return []*corev1.Service{httpd, headless, ext}, []*discoveryv1.EndpointSlice{slice("httpd-svc", "10.244.0.2", "10.244.1.2", "10.244.0.3"), slice("db", "10.244.0.9")}
}

func input(from, to string) Input {
	svcs, slices := objects()
	st := proxy.NewState()
	for _, s := range svcs {
		for _, sp := range proxy.ServicePorts(s) {
			st.Services[sp.Key] = sp
			for _, es := range slices {
				if es.Labels[discoveryv1.LabelServiceName] == s.Name {
					st.Endpoints[sp.Key] = append(st.Endpoints[sp.Key], proxy.SliceEndpoints(es, "node-a")[sp.Key.Port]...)
				}
			}
		}
	}
	c := iptables.Config{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}
	in := Input{From: from, To: to, Node: "node-a", NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.1.10")}, Services: svcs, Slices: slices,
		Namespaces: []string{"default", "dev"}, ClusterDNS: []string{"10.96.0.10"}, Zone: "cluster.local",
		Dump: iptables.Build(c, iptables.ComputeAll(c, st)).Save()}
	if strings.HasPrefix(from, "pod/") {
		in.Pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "dev", Name: "client"}, Status: corev1.PodStatus{PodIP: "10.244.0.5"}}
	}
	return in
}

func TestRequest(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     []string
	}{
		{"pod/dev/client", "http://httpd-svc.default:8080", []string{
			"httpd-svc.default.dev.svc.cluster.local", "NXDOMAIN", "httpd-svc.default.svc.cluster.local", "10.96.0.20",
			"Outcome: proxied", " 33.3%  10.244.0.2:80  on node node-a", "KUBE-SVC-", "--probability 0.33333333349", "KUBE-SEP-"}},
		{"203.0.113.9", "192.168.1.10:30080", []string{"Outcome: proxied", "33.3%", "(source masqueraded)", "KUBE-NODEPORTS", "KUBE-EXT-"}},
		{"pod/dev/client", "db.default", []string{"Outcome: headless", "10.244.0.9", "connects to the pod directly"}},
		{"pod/dev/client", "search.default", []string{"Outcome: external-name", "www.example.com", "CNAME"}},
	} {
		t.Run(c.to, func(t *testing.T) { checkText(t, input(c.from, c.to), c.want, nil) })
	}
}

// checkText explains in and wants every line of want in the text, none of not.
func checkText(t *testing.T, in Input, want, not []string) {
	t.Helper()
	ex, err := Request(in)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	ex.Text(&b)
	for _, w := range want {
		if !strings.Contains(b.String(), w) {
			t.Errorf("no %q in\n%s", w, b.String())
		}
	}
	for _, w := range not {
		if strings.Contains(b.String(), w) {
			t.Errorf("%q in\n%s", w, b.String())
		}
	}
}
