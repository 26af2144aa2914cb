package conntrack

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

func ep(addr string, ready bool) proxy.Endpoint {
	return proxy.Endpoint{Addr: netip.MustParseAddrPort(addr), Ready: ready, Serving: ready}
}

func terminating(addr string, serving bool) proxy.Endpoint {
	return proxy.Endpoint{Addr: netip.MustParseAddrPort(addr), Serving: serving, Terminating: true}
}

// TestStale: which UDP flows a change of endpoints clears, as kube-proxy's
// conntrack cleanup: those of endpoints that no longer serve (a terminating
// endpoint that still serves keeps its flows), and all flows to the VIPs when
// the first serving endpoint appears.
func TestStale(t *testing.T) {
	sp := &proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "dns", Port: "dns"}, Protocol: corev1.ProtocolUDP,
		ClusterIP: netip.MustParseAddr("10.96.0.26"), Port: 53, NodePort: 30053, LoadBalancerIPs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}
	a, b := "10.244.0.9:53", "10.244.0.10:53"
	far := ep(b, true)
	far.Far = true
	for _, tc := range []struct {
		name     string
		old, cur []proxy.Endpoint
		gone     []string
		fresh    int // VIPs whose flows are all cleared
		filters  int
	}{
		// per gone endpoint: cluster IP, LB IP, node port
		{"an endpoint removed", []proxy.Endpoint{ep(a, true), ep(b, true)}, []proxy.Endpoint{ep(a, true)}, []string{b}, 0, 3},
		{"terminating but serving keeps its flows", []proxy.Endpoint{ep(a, true), ep(b, true)}, []proxy.Endpoint{ep(a, true), terminating(b, true)}, nil, 0, 0},
		{"terminating and no longer serving", []proxy.Endpoint{ep(a, true), terminating(b, true)}, []proxy.Endpoint{ep(a, true), terminating(b, false)}, []string{b}, 0, 3},
		{"not ready, not terminating", []proxy.Endpoint{ep(a, true), ep(b, true)}, []proxy.Endpoint{ep(a, true), ep(b, false)}, []string{b}, 0, 3},
		{"far by topology keeps its flows", []proxy.Endpoint{ep(a, true), ep(b, true)}, []proxy.Endpoint{ep(a, true), far}, nil, 0, 0},
		// cluster IP, LB IP, node port
		{"first endpoint: flows to the VIPs cleared", nil, []proxy.Endpoint{ep(a, true)}, nil, 2, 3},
		{"all gone", []proxy.Endpoint{ep(a, true)}, nil, []string{a}, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, cur := Of(sp, tc.old), Of(sp, tc.cur)
			gone, fresh := Stale(old, cur)
			var got []string
			for _, g := range gone {
				got = append(got, g.String())
			}
			if !slices.Equal(got, tc.gone) || len(fresh) != tc.fresh {
				t.Errorf("gone %v fresh %v; want gone %v and %d fresh", got, fresh, tc.gone, tc.fresh)
			}
			if n := len(Filters(old, cur)); n != tc.filters {
				t.Errorf("%d filters, want %d", n, tc.filters)
			}
		})
	}
	gone, fresh := Stale(Of(sp, []proxy.Endpoint{ep(a, true)}), nil) // the Service deleted
	if len(gone) != 1 || fresh != nil {
		t.Errorf("service deleted: gone %v fresh %v", gone, fresh)
	}
	tcp := *sp
	tcp.Protocol = corev1.ProtocolTCP
	if u := Of(&tcp, []proxy.Endpoint{ep(a, true)}); u != nil {
		t.Errorf("TCP: %+v; want nothing to clean", u)
	}
	local := *sp
	local.NodeLocal = true // the node's own DNS server answers on the cluster IP
	if u := Of(&local, nil); slices.Contains(u.VIPs, sp.ClusterIP) {
		t.Errorf("node-local cluster IP %v among the VIPs %v", sp.ClusterIP, u.VIPs)
	}
}
