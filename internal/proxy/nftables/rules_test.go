package nftables

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var cfg = Config{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"),
	Local: mustListeners("10.96.0.10:53")}

// mustListeners are the listeners of the node's DNS server on hostport.
func mustListeners(hostport string) []proxy.Listener {
	ls, err := proxy.DNSListeners(hostport)
	if err != nil {
		panic(err)
	}
	return ls
}

func ep(addr string, ready, local bool) proxy.Endpoint {
	return proxy.Endpoint{Addr: netip.MustParseAddrPort(addr), Ready: ready, Serving: ready, Local: local}
}

// testState has one service port of each kind the rules distinguish.
func testState() *proxy.State {
	st := proxy.NewState()
	add := func(sp *proxy.ServicePort, eps ...proxy.Endpoint) {
		if sp.Protocol == "" {
			sp.Protocol = corev1.ProtocolTCP
		}
		sp = proxy.MarkNodeLocal([]*proxy.ServicePort{sp}, cfg.Local)[0] // as the tracker does
		st.Services[sp.Key] = sp
		st.Endpoints[sp.Key] = eps
	}
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "web", Port: "http"}, ClusterIP: netip.MustParseAddr("10.96.0.20"), Port: 80},
		ep("10.244.0.2:8080", true, true), ep("10.244.0.3:8080", true, true), ep("10.244.1.2:8080", true, false))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "empty"}, ClusterIP: netip.MustParseAddr("10.96.0.21"), Port: 80, NodePort: 30021})
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "local"}, ClusterIP: netip.MustParseAddr("10.96.0.22"), Port: 80, NodePort: 30022, ExternalLocal: true},
		ep("10.244.1.5:8080", true, false)) // its only endpoint is on another node
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "np"}, ClusterIP: netip.MustParseAddr("10.96.0.23"), Port: 80, NodePort: 30023},
		ep("10.244.0.7:8080", true, true))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "sticky"}, ClusterIP: netip.MustParseAddr("10.96.0.24"), Port: 80, AffinityTimeout: 10800},
		ep("10.244.0.2:8080", true, true), ep("10.244.0.3:8080", true, true))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "lb"}, ClusterIP: netip.MustParseAddr("10.96.0.25"), Port: 80, NodePort: 30025,
		LoadBalancerIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}, SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		ep("10.244.0.8:8080", true, true))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "dns", Port: "dns"}, Protocol: corev1.ProtocolUDP, ClusterIP: netip.MustParseAddr("10.96.0.26"), Port: 53},
		ep("10.244.0.9:53", false, true), proxy.Endpoint{Addr: netip.MustParseAddrPort("10.244.0.10:53"), Serving: true, Terminating: true, Local: true})
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "kube-system", Name: "other-proxy"}, ClusterIP: netip.MustParseAddr("10.96.0.11")}) // another proxy's
	// A real cluster's kube-dns (no service-proxy-name label) with a CoreDNS
	// pod; the node's DNS server listens on its cluster IP (cfg.Local).
	coredns := proxy.Endpoint{Addr: netip.MustParseAddrPort("10.244.1.53:53"), Ready: true, Serving: true}
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "kube-system", Name: "kube-dns", Port: "dns"}, Protocol: corev1.ProtocolUDP, ClusterIP: netip.MustParseAddr("10.96.0.10"), Port: 53}, coredns)
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "kube-system", Name: "kube-dns", Port: "dns-tcp"}, ClusterIP: netip.MustParseAddr("10.96.0.10"), Port: 53}, coredns)
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "kube-system", Name: "kube-dns", Port: "metrics"}, ClusterIP: netip.MustParseAddr("10.96.0.10"), Port: 9153},
		proxy.Endpoint{Addr: netip.MustParseAddrPort("10.244.1.53:9153"), Ready: true, Serving: true})
	return st
}

func TestGoldenRuleset(t *testing.T) {
	got := Render(cfg, ComputeAll(cfg, testState()))
	path := filepath.Join("testdata", "ruleset.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("ruleset differs from %s (run go test -update and review the diff):\n%s", path, got)
	}
}

// packet is what the tracer follows through the rules.
type packet struct {
	src, dst netip.Addr
	proto    corev1.Protocol
	port     uint16
}

// result is where a packet ends.
type result struct {
	verdict string // dnat, reject, drop, accept
	to      netip.AddrPort
	masq    bool
}

// tracer walks packets through computed fragments the way the kernel walks the
// table: nat lookups (service-ips, then node ports for local addresses), the
// chosen chains, then the filter checks for what was not DNATed.
type tracer struct {
	frags    map[proxy.Key]*Fragment
	nodeIPs  []netip.Addr
	affinity map[string]map[netip.Addr]bool
	pick     func(n int) int // which of n endpoints a random choice takes
	seen     int             // endpoints passed over in the current pick
}

func newTracer(st *proxy.State, nodeIPs ...string) *tracer {
	tr := &tracer{frags: ComputeAll(cfg, st), affinity: map[string]map[netip.Addr]bool{}, pick: func(int) int { return 0 }}
	for _, ip := range nodeIPs {
		tr.nodeIPs = append(tr.nodeIPs, netip.MustParseAddr(ip))
	}
	return tr
}

func (tr *tracer) local(a netip.Addr) bool {
	for _, n := range tr.nodeIPs {
		if n == a && !a.IsLoopback() {
			return true
		}
	}
	return false
}

func (tr *tracer) chain(name string) *Chain {
	for _, f := range tr.frags {
		for i := range f.Chains {
			if f.Chains[i].Name == name {
				return &f.Chains[i]
			}
		}
	}
	return nil
}

func (tr *tracer) trace(p packet) result {
	tr.seen = 0
	// raw: the node's own listeners are not tracked, so no NAT and no check applies.
	for _, l := range cfg.Local {
		if l.Addr == netip.AddrPortFrom(p.dst, p.port) && l.Protocol == p.proto {
			return result{verdict: "local"}
		}
	}
	masq := false
	// nat: services (IP keys), then nodeports (local destinations).
	for _, nodePort := range []bool{false, true} {
		t, ok := tr.target(p, nodePort)
		if !ok {
			continue
		}
		switch {
		case t.Masq == MasqAlways, t.Masq == MasqOffCluster && !cfg.ClusterCIDR.Contains(p.src):
			masq = true
		}
		if t.Chain != "" {
			if r, ok := tr.run(t.Chain, p, masq); ok {
				return r
			}
		}
		if n := len(t.Pick); n > 0 {
			to := t.Pick[tr.pick(n)]
			return result{verdict: "dnat", to: to, masq: masq || tr.hairpin(p.src, to)}
		}
	}
	// filter: service-checks, for what was not DNATed.
	for _, nodePort := range []bool{false, true} {
		if t, ok := tr.target(p, nodePort); ok && (t.Reject || t.Drop) {
			if t.Drop {
				return result{verdict: "drop"}
			}
			return result{verdict: "reject"}
		}
	}
	if cfg.ServiceCIDR.Contains(p.dst) {
		for _, f := range tr.frags {
			for _, ip := range f.ClusterIPs {
				if ip == p.dst {
					return result{verdict: "accept"}
				}
			}
		}
		return result{verdict: "reject"}
	}
	return result{verdict: "accept"}
}

// target finds the key a packet hits: its destination IP, or (for local
// destinations) its node port.
func (tr *tracer) target(p packet, nodePort bool) (Target, bool) {
	for _, f := range tr.frags {
		if nodePort {
			if t, ok := f.NodePortTarget(ProtoPort{p.proto, p.port}); ok && tr.local(p.dst) {
				return t, true
			}
		} else if t, ok := f.IPTarget(IPProtoPort{p.dst, p.proto, p.port}); ok {
			return t, true
		}
	}
	return Target{}, false
}

// hairpin: a local pod DNATed to itself is masqueraded.
func (tr *tracer) hairpin(src netip.Addr, to netip.AddrPort) bool {
	for _, f := range tr.frags {
		for _, ip := range f.Hairpin {
			if ip == src && ip == to.Addr() {
				return true
			}
		}
	}
	return false
}

// run executes a chain; ok is false when the packet returns or falls off its end.
func (tr *tracer) run(name string, p packet, masq bool) (result, bool) {
	ch := tr.chain(name)
	if ch == nil {
		panic("no chain " + name)
	}
	for _, r := range ch.Rules {
		if r.SaddrIn.IsValid() && !r.SaddrIn.Contains(p.src) {
			continue
		}
		if r.SaddrInSet != "" && !tr.affinity[r.SaddrInSet][p.src] {
			continue
		}
		if r.Update != "" {
			if tr.affinity[r.Update] == nil {
				tr.affinity[r.Update] = map[netip.Addr]bool{}
			}
			tr.affinity[r.Update][p.src] = true
		}
		switch {
		case r.Goto != "" && r.Random > 1: // endpoint tr.pick(n) of n is taken
			n := r.Random + tr.seen
			if tr.seen == tr.pick(n) {
				return tr.run(r.Goto, p, masq)
			}
			tr.seen++
		case r.Goto != "":
			return tr.run(r.Goto, p, masq)
		case r.Return:
			return result{}, false
		case r.DNAT.IsValid():
			return result{verdict: "dnat", to: r.DNAT, masq: masq || tr.hairpin(p.src, r.DNAT)}, true
		case r.Drop:
			return result{verdict: "drop"}, true
		}
	}
	return result{}, false
}

func TestTracePackets(t *testing.T) {
	pod, outside, node := netip.MustParseAddr("10.244.0.50"), netip.MustParseAddr("203.0.113.9"), "192.168.1.10"
	tcp := corev1.ProtocolTCP
	for _, tc := range []struct {
		name string
		p    packet
		pick int
		want result
	}{
		{"pod to cluster IP, endpoint 0", packet{pod, netip.MustParseAddr("10.96.0.20"), tcp, 80}, 0, result{"dnat", netip.MustParseAddrPort("10.244.0.2:8080"), false}},
		{"pod to cluster IP, endpoint 2 on another node", packet{pod, netip.MustParseAddr("10.96.0.20"), tcp, 80}, 2, result{"dnat", netip.MustParseAddrPort("10.244.1.2:8080"), false}},
		{"node to cluster IP is masqueraded", packet{netip.MustParseAddr(node), netip.MustParseAddr("10.96.0.20"), tcp, 80}, 1, result{"dnat", netip.MustParseAddrPort("10.244.0.3:8080"), true}},
		{"hairpin: the pod reaches itself, masqueraded", packet{netip.MustParseAddr("10.244.0.2"), netip.MustParseAddr("10.96.0.20"), tcp, 80}, 0, result{"dnat", netip.MustParseAddrPort("10.244.0.2:8080"), true}},
		{"wrong port of a cluster IP", packet{pod, netip.MustParseAddr("10.96.0.20"), tcp, 81}, 0, result{verdict: "accept"}},
		{"no endpoints: rejected", packet{pod, netip.MustParseAddr("10.96.0.21"), tcp, 80}, 0, result{verdict: "reject"}},
		{"no endpoints, node port: rejected", packet{outside, netip.MustParseAddr(node), tcp, 30021}, 0, result{verdict: "reject"}},
		{"unallocated cluster IP: rejected", packet{pod, netip.MustParseAddr("10.96.9.9"), tcp, 80}, 0, result{verdict: "reject"}},
		{"another proxy's cluster IP is left alone", packet{pod, netip.MustParseAddr("10.96.0.11"), corev1.ProtocolUDP, 53}, 0, result{verdict: "accept"}},
		{"Local policy, no local endpoint: node port dropped", packet{outside, netip.MustParseAddr(node), tcp, 30022}, 0, result{verdict: "drop"}},
		{"Local policy still serves the cluster IP", packet{pod, netip.MustParseAddr("10.96.0.22"), tcp, 80}, 0, result{"dnat", netip.MustParseAddrPort("10.244.1.5:8080"), false}},
		{"node port from outside: masqueraded", packet{outside, netip.MustParseAddr(node), tcp, 30023}, 0, result{"dnat", netip.MustParseAddrPort("10.244.0.7:8080"), true}},
		{"node port on loopback is not served", packet{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), tcp, 30023}, 0, result{verdict: "accept"}},
		{"LB IP from an allowed source", packet{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("192.0.2.100"), tcp, 80}, 0, result{"dnat", netip.MustParseAddrPort("10.244.0.8:8080"), true}},
		{"LB IP from a source outside loadBalancerSourceRanges", packet{outside, netip.MustParseAddr("192.0.2.100"), tcp, 80}, 0, result{verdict: "drop"}},
		{"no ready endpoint: a serving terminating one is used", packet{pod, netip.MustParseAddr("10.96.0.26"), corev1.ProtocolUDP, 53}, 0, result{"dnat", netip.MustParseAddrPort("10.244.0.10:53"), false}},
	} {
		tr := newTracer(testState(), node)
		tr.pick = func(n int) int {
			if tc.pick >= n {
				t.Fatalf("%s: pick %d of %d", tc.name, tc.pick, n)
			}
			return tc.pick
		}
		if got := tr.trace(tc.p); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestTraceNodeLocalDNS: the node's DNS listener answers 10.96.0.10:53
// whether kube-dns has CoreDNS endpoints, none, or does not exist; its other
// ports and other addresses are proxied as usual.
func TestTraceNodeLocalDNS(t *testing.T) {
	pod := netip.MustParseAddr("10.244.0.50")
	vip := netip.MustParseAddr("10.96.0.10")
	dnsKeys := []proxy.Key{{Namespace: "kube-system", Name: "kube-dns", Port: "dns"}, {Namespace: "kube-system", Name: "kube-dns", Port: "dns-tcp"}}
	metrics := proxy.Key{Namespace: "kube-system", Name: "kube-dns", Port: "metrics"}
	for _, tc := range []struct {
		name   string
		mutate func(*proxy.State)
		p      packet
		want   result
	}{
		{"UDP, CoreDNS endpoints", nil, packet{pod, vip, corev1.ProtocolUDP, 53}, result{verdict: "local"}},
		{"TCP, CoreDNS endpoints", nil, packet{pod, vip, corev1.ProtocolTCP, 53}, result{verdict: "local"}},
		{"from the node itself", nil, packet{netip.MustParseAddr("192.168.1.10"), vip, corev1.ProtocolUDP, 53}, result{verdict: "local"}},
		{"another port of kube-dns still goes to CoreDNS", nil, packet{pod, vip, corev1.ProtocolTCP, 9153}, result{"dnat", netip.MustParseAddrPort("10.244.1.53:9153"), false}},
		{"no endpoints", func(st *proxy.State) {
			for _, k := range dnsKeys {
				st.Endpoints[k] = nil
			}
		}, packet{pod, vip, corev1.ProtocolUDP, 53}, result{verdict: "local"}},
		{"no kube-dns Service", func(st *proxy.State) {
			for _, k := range append(dnsKeys, metrics) {
				delete(st.Services, k)
				delete(st.Endpoints, k)
			}
		}, packet{pod, vip, corev1.ProtocolUDP, 53}, result{verdict: "local"}},
		{"no kube-dns Service: its other ports are unallocated", func(st *proxy.State) {
			for _, k := range append(dnsKeys, metrics) {
				delete(st.Services, k)
			}
		}, packet{pod, vip, corev1.ProtocolTCP, 9153}, result{verdict: "reject"}},
	} {
		st := testState()
		if tc.mutate != nil {
			tc.mutate(st)
		}
		if got := newTracer(st, "192.168.1.10").trace(tc.p); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// The rules hold no reject or DNAT of the listener's keys either (what
	// explain shows), with or without endpoints.
	for _, k := range dnsKeys {
		if f := Compute(cfg, testState().Services[k], nil); len(f.IPs) != 0 {
			t.Errorf("%s: the node-local key is in the rules: %v", k, f.IPs)
		}
	}
}

func TestTraceAffinity(t *testing.T) {
	tr := newTracer(testState())
	clientA, clientB := netip.MustParseAddr("10.244.0.50"), netip.MustParseAddr("10.244.0.51")
	vip := netip.MustParseAddr("10.96.0.24")
	tr.pick = func(int) int { return 1 }
	first := tr.trace(packet{clientA, vip, corev1.ProtocolTCP, 80})
	tr.pick = func(int) int { return 0 } // a new random pick would choose another endpoint
	for i := 0; i < 5; i++ {
		if got := tr.trace(packet{clientA, vip, corev1.ProtocolTCP, 80}); got.to != first.to {
			t.Fatalf("client A moved from %v to %v despite ClientIP affinity", first.to, got.to)
		}
	}
	if got := tr.trace(packet{clientB, vip, corev1.ProtocolTCP, 80}); got.to == first.to {
		t.Errorf("client B pinned to A's endpoint %v", got.to)
	}
}

func TestOneChangeTouchesOneFragment(t *testing.T) {
	st := testState()
	before := ComputeAll(cfg, st)
	k := proxy.Key{Namespace: "default", Name: "web", Port: "http"}
	st.Endpoints[k] = st.Endpoints[k][:2]
	after := ComputeAll(cfg, st)
	for key := range before {
		same := Render(cfg, map[proxy.Key]*Fragment{key: before[key]}) == Render(cfg, map[proxy.Key]*Fragment{key: after[key]})
		if key == k && same {
			t.Errorf("%s: removing an endpoint changed nothing", key)
		}
		if key != k && !same {
			t.Errorf("%s changed although only %s did", key, k)
		}
	}
	if !strings.Contains(Render(cfg, before), "10.244.1.2 . 8080") || strings.Contains(Render(cfg, after), "10.244.1.2 . 8080") {
		t.Error("the removed endpoint should leave the ruleset")
	}
}

// TestFragmentOneEntryPerIP: an IP that is both an external and a
// load-balancer IP of a Service is one key (the kernel map holds it once).
func TestFragmentOneEntryPerIP(t *testing.T) {
	x := netip.MustParseAddr("192.0.2.50")
	sp := &proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "both"}, Protocol: corev1.ProtocolTCP,
		ClusterIP: netip.MustParseAddr("10.96.0.30"), Port: 80, NodePort: 30030, ExternalIPs: []netip.Addr{x}, LoadBalancerIPs: []netip.Addr{x},
		SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
	f := Compute(cfg, sp, []proxy.Endpoint{ep("10.244.0.2:8080", true, true)})
	if len(f.IPs) != 2 || len(f.NodePorts) != 1 {
		t.Fatalf("IPs %+v node ports %+v; want the cluster IP and %v once, one node port", f.IPs, f.NodePorts, x)
	}
	if tg, ok := f.IPTarget(IPProtoPort{x, corev1.ProtocolTCP, 80}); !ok || tg.Chain == "" {
		t.Errorf("%v leads to %+v; want the load-balancer firewall chain (the later entry)", x, tg)
	}
}
