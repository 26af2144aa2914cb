package proxy

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestDNSListeners(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"10.96.0.10:53", []string{"10.96.0.10:53/TCP", "10.96.0.10:53/UDP"}, false},
		{"169.254.20.10:5353", []string{"169.254.20.10:5353/TCP", "169.254.20.10:5353/UDP"}, false},
		{"10.96.0.10", nil, true},
		{"dns:53", nil, true},
		{"10.96.0.10:0", nil, true},
	} {
		got, err := DNSListeners(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.err)
			continue
		}
		var s []string
		for _, l := range got {
			s = append(s, l.String())
		}
		if len(s) != len(tc.want) || (len(s) > 0 && s[0] != tc.want[0] || len(s) > 1 && s[1] != tc.want[1]) {
			t.Errorf("%q: %v, want %v", tc.in, s, tc.want)
		}
	}
}

// TestTrackerMarksNodeLocal: the kube-dns Service's DNS ports, on the address
// the node's DNS server listens on, are flagged; its other ports and other
// Services are not, with or without the label svcnet's own kube-dns has.
func TestTrackerMarksNodeLocal(t *testing.T) {
	local, err := DNSListeners("10.96.0.10:53")
	if err != nil {
		t.Fatal(err)
	}
	dns := func(s *corev1.Service) {
		s.Namespace, s.Name = "kube-system", "kube-dns"
		s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}, {Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP}}
	}
	tr := NewTracker("n1", local...)
	tr.OnService(svc("kube-dns", "10.96.0.10", dns), false)
	tr.OnService(svc("web", "10.96.0.20", func(s *corev1.Service) { s.Spec.Ports[0].Port = 53 }), false)
	st, _, _ := tr.Apply()
	for k, want := range map[Key]bool{
		{"kube-system", "kube-dns", "dns"}:     true,
		{"kube-system", "kube-dns", "dns-tcp"}: true,
		{"kube-system", "kube-dns", "metrics"}: false,
		{"ns", "web", "http"}:                  false,
	} {
		sp := st.Services[k]
		if sp == nil {
			t.Errorf("%s: missing", k)
			continue
		}
		if sp.NodeLocal != want {
			t.Errorf("%s: NodeLocal %v, want %v", k, sp.NodeLocal, want)
		}
	}
	// The conversion's own values are not changed in place.
	ports := ServicePorts(svc("kube-dns", "10.96.0.10", dns))
	marked := MarkNodeLocal(append([]*ServicePort{}, ports...), local)
	if ports[0].NodeLocal || !marked[0].NodeLocal || marked[0].ClusterIP != netip.MustParseAddr("10.96.0.10") {
		t.Errorf("MarkNodeLocal: original %+v, marked %+v", ports[0], marked[0])
	}
}
