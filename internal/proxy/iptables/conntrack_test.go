package iptables

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

type nopRunner struct{}

func (nopRunner) Save() (string, error) { return "", nil }
func (nopRunner) Restore(string) error  { return nil }

// TestSyncClearsStaleUDP: the iptables mode clears the UDP flows of endpoints
// that stopped serving, as kube-proxy (a terminating endpoint that still
// serves keeps its flows).
func TestSyncClearsStaleUDP(t *testing.T) {
	b, _ := New(cfg, nopRunner{})
	var cleared []int
	b.clear = func(f []netlink.CustomConntrackFilter) error { cleared = append(cleared, len(f)); return nil }
	k := proxy.Key{Namespace: "default", Name: "dns", Port: "dns"}
	st := proxy.NewState()
	st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolUDP, ClusterIP: netip.MustParseAddr("10.96.0.26"), Port: 53}
	a := proxy.Endpoint{Addr: netip.MustParseAddrPort("10.244.0.9:53"), Ready: true, Serving: true}
	c := proxy.Endpoint{Addr: netip.MustParseAddrPort("10.244.0.10:53"), Ready: true, Serving: true}
	steps := []struct {
		name string
		eps  []proxy.Endpoint
		full bool
		want int // filters
	}{
		{"first sync: flows to the cluster IP tracked before any rule", []proxy.Endpoint{a, c}, true, 1},
		{"one endpoint terminating, still serving", []proxy.Endpoint{a, {Addr: c.Addr, Serving: true, Terminating: true}}, false, 0},
		{"it stops serving", []proxy.Endpoint{a, {Addr: c.Addr, Terminating: true}}, false, 1},
		{"a full sync with nothing changed", []proxy.Endpoint{a}, true, 0},
	}
	for _, s := range steps {
		st.Endpoints[k] = s.eps
		cleared = nil
		if err := b.Sync(st, []proxy.Key{k}, s.full); err != nil {
			t.Fatal(err)
		}
		if len(cleared) != 1 || cleared[0] != s.want {
			t.Errorf("%s: cleared %v, want %d filters", s.name, cleared, s.want)
		}
	}
}
