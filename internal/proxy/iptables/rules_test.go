package iptables

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var cfg = Config{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}

func ep(addr string, ready, local bool) proxy.Endpoint {
	return proxy.Endpoint{Addr: netip.MustParseAddrPort(addr), Ready: ready, Serving: ready, Local: local, Node: map[bool]string{true: "node-a", false: "node-b"}[local]}
}

// tutorialState is the walkthrough's Service: httpd-svc, port 8080 -> 80, 3 pods.
func tutorialState() *proxy.State {
	st := proxy.NewState()
	k := proxy.Key{Namespace: "default", Name: "httpd-svc"}
	st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.96.0.20"), Port: 8080}
	st.Endpoints[k] = []proxy.Endpoint{ep("10.244.0.2:80", true, true), ep("10.244.0.3:80", true, true), ep("10.244.1.2:80", true, false)}
	return st
}

// testState has one service port of each kind the rules distinguish.
func testState() *proxy.State {
	st := tutorialState()
	add := func(sp *proxy.ServicePort, eps ...proxy.Endpoint) {
		if sp.Protocol == "" {
			sp.Protocol = corev1.ProtocolTCP
		}
		st.Services[sp.Key] = sp
		st.Endpoints[sp.Key] = eps
	}
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "empty"}, ClusterIP: netip.MustParseAddr("10.96.0.21"), Port: 80, NodePort: 30021})
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "local"}, ClusterIP: netip.MustParseAddr("10.96.0.22"), Port: 80, NodePort: 30022, ExternalLocal: true},
		ep("10.244.1.5:8080", true, false)) // its only endpoint is on another node
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "np"}, ClusterIP: netip.MustParseAddr("10.96.0.23"), Port: 80, NodePort: 30023},
		ep("10.244.0.7:8080", true, true), ep("10.244.1.7:8080", true, false))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "sticky"}, ClusterIP: netip.MustParseAddr("10.96.0.24"), Port: 80, AffinityTimeout: 10800},
		ep("10.244.0.2:8080", true, true), ep("10.244.0.3:8080", true, true))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "lb"}, ClusterIP: netip.MustParseAddr("10.96.0.25"), Port: 80, NodePort: 30025,
		LoadBalancerIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}, SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		ep("10.244.0.8:8080", true, true))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "dns", Port: "dns"}, Protocol: corev1.ProtocolUDP, ClusterIP: netip.MustParseAddr("10.96.0.26"), Port: 53},
		ep("10.244.0.9:53", false, true), proxy.Endpoint{Addr: netip.MustParseAddrPort("10.244.0.10:53"), Serving: true, Terminating: true, Local: true})
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "default", Name: "itl"}, ClusterIP: netip.MustParseAddr("10.96.0.27"), Port: 80, InternalLocal: true},
		ep("10.244.1.9:8080", true, false))
	add(&proxy.ServicePort{Key: proxy.Key{Namespace: "kube-system", Name: "other-proxy"}, ClusterIP: netip.MustParseAddr("10.96.0.11")})
	return st
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", name, got)
	}
}

func TestGoldenTutorial(t *testing.T) {
	golden(t, "tutorial.golden", Build(cfg, ComputeAll(cfg, tutorialState())).Save())
}

func TestGoldenRuleset(t *testing.T) {
	golden(t, "ruleset.golden", Build(cfg, ComputeAll(cfg, testState())).Save())
}

// The chain names are kube-proxy's (its own test data: ns1/svc1:p80).
func TestChainNames(t *testing.T) {
	sp := &proxy.ServicePort{Key: proxy.Key{Namespace: "ns1", Name: "svc1", Port: "p80"}, Protocol: corev1.ProtocolTCP}
	if got := ServiceChain(sp); got != "KUBE-SVC-XPGD46QRK7WJZT7O" {
		t.Errorf("ServiceChain = %s", got)
	}
	if got := EndpointChain(sp, netip.MustParseAddrPort("10.180.0.1:80")); got != "KUBE-SEP-SXIVWICOYRO3J4NJ" {
		t.Errorf("EndpointChain = %s", got)
	}
}

func TestProbabilities(t *testing.T) {
	for _, c := range []struct {
		n           int
		wrote, save string
	}{{3, "0.3333333333", "0.33333333349"}, {2, "0.5000000000", "0.50000000000"}, {4, "0.2500000000", "0.25000000000"}} {
		if got := ProbabilityKubeProxy(c.n); got != c.wrote {
			t.Errorf("1/%d written %s, want %s", c.n, got, c.wrote)
		}
		if got := ProbabilitySaved(c.n); got != c.save {
			t.Errorf("1/%d saved %s, want %s", c.n, got, c.save)
		}
	}
}

var node = netip.MustParseAddr("192.168.1.10")

func isLocal(a netip.Addr) bool { return a == node || a.IsLoopback() }

func trace(t *testing.T, st *proxy.State, p Packet) []Path {
	t.Helper()
	d, err := ParseDump(Build(cfg, ComputeAll(cfg, st)).Save())
	if err != nil {
		t.Fatal(err)
	}
	p.Local = isLocal
	return Trace(d, p)
}

// summary prints paths as "p verdict to masq" lines, sorted.
func summary(paths []Path) string {
	var out []string
	for _, p := range paths {
		s := fmt.Sprintf("%.3f %s", p.Prob, p.Verdict)
		if p.To.IsValid() {
			s += " " + p.To.String()
		}
		if p.Masquerade {
			s += " masq"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func TestTracePackets(t *testing.T) {
	pod := netip.MustParseAddr("10.244.0.5")
	outside := netip.MustParseAddr("203.0.113.9")
	st := testState()
	for _, c := range []struct {
		name string
		p    Packet
		want string
	}{
		{"pod to cluster IP spreads over 3 endpoints", Packet{Src: pod, Dst: netip.MustParseAddr("10.96.0.20"), Proto: "tcp", Port: 8080},
			"0.333 DNAT 10.244.0.2:80; 0.333 DNAT 10.244.0.3:80; 0.333 DNAT 10.244.1.2:80"},
		{"outside to cluster IP is masqueraded", Packet{Src: outside, Dst: netip.MustParseAddr("10.96.0.23"), Proto: "tcp", Port: 80},
			"0.500 DNAT 10.244.0.7:8080 masq; 0.500 DNAT 10.244.1.7:8080 masq"},
		{"pod to cluster IP with no endpoints", Packet{Src: pod, Dst: netip.MustParseAddr("10.96.0.21"), Proto: "tcp", Port: 80}, "1.000 REJECT"},
		{"outside to node port with no endpoints", Packet{Src: outside, Dst: node, Proto: "tcp", Port: 30021}, "1.000 REJECT"},
		{"outside to node port", Packet{Src: outside, Dst: node, Proto: "tcp", Port: 30023},
			"0.500 DNAT 10.244.0.7:8080 masq; 0.500 DNAT 10.244.1.7:8080 masq"},
		{"outside to Local node port without local endpoint", Packet{Src: outside, Dst: node, Proto: "tcp", Port: 30022}, "1.000 DROP"},
		{"pod to Local node port is short-circuited", Packet{Src: pod, Dst: node, Proto: "tcp", Port: 30022}, "1.000 DNAT 10.244.1.5:8080"},
		{"node to Local node port", Packet{Src: node, Dst: node, Proto: "tcp", Port: 30022, FromNode: true}, "1.000 DNAT 10.244.1.5:8080 masq"},
		{"pod to itself through the service is masqueraded", Packet{Src: netip.MustParseAddr("10.244.0.8"), Dst: netip.MustParseAddr("10.96.0.25"), Proto: "tcp", Port: 80},
			"1.000 DNAT 10.244.0.8:8080 masq"},
		{"LB IP from an allowed range", Packet{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("192.0.2.100"), Proto: "tcp", Port: 80},
			"1.000 DNAT 10.244.0.8:8080 masq"},
		{"LB IP from elsewhere", Packet{Src: outside, Dst: netip.MustParseAddr("192.0.2.100"), Proto: "tcp", Port: 80}, "1.000 DROP"},
		{"udp to terminating fallback", Packet{Src: pod, Dst: netip.MustParseAddr("10.96.0.26"), Proto: "udp", Port: 53}, "1.000 DNAT 10.244.0.10:53"},
		{"internal Local without local endpoint", Packet{Src: pod, Dst: netip.MustParseAddr("10.96.0.27"), Proto: "tcp", Port: 80}, "1.000 DROP"},
		{"wrong port of a cluster IP passes untouched", Packet{Src: pod, Dst: netip.MustParseAddr("10.96.0.20"), Proto: "tcp", Port: 81}, "1.000 ACCEPT"},
		{"affinity", Packet{Src: pod, Dst: netip.MustParseAddr("10.96.0.24"), Proto: "tcp", Port: 80}, "0.500 DNAT 10.244.0.2:8080; 0.500 DNAT 10.244.0.3:8080"},
	} {
		t.Run(c.name, func(t *testing.T) {
			paths := trace(t, st, c.p)
			if got := summary(paths); got != c.want {
				for _, p := range paths {
					for _, s := range p.Steps {
						t.Logf("%s %s", s.Table, s.Rule)
					}
				}
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestTraceAffinityNote(t *testing.T) {
	paths := trace(t, testState(), Packet{Src: netip.MustParseAddr("10.244.0.5"), Dst: netip.MustParseAddr("10.96.0.24"), Proto: "tcp", Port: 80})
	if len(paths) == 0 || len(paths[0].Notes) == 0 || !strings.Contains(paths[0].Notes[0], "affinity") {
		t.Fatalf("no affinity note: %+v", paths)
	}
}

// applyRestore applies restore input to a model of the kernel's tables (the
// fake iptables-restore --noflush), so partial plans can be checked without root.
func applyRestore(t *testing.T, kernel map[string]map[string][]string, in string) {
	t.Helper()
	table := ""
	for _, line := range strings.Split(strings.TrimSpace(in), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if kernel[table] == nil {
				kernel[table] = map[string][]string{}
			}
		case line == "COMMIT" || line == "":
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			kernel[table][name] = []string{}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if _, ok := kernel[table][f[1]]; !ok {
				t.Fatalf("rule for a chain not declared: %s", line)
			}
			kernel[table][f[1]] = append(kernel[table][f[1]], line)
		case strings.HasPrefix(line, "-X "):
			delete(kernel[table], strings.TrimPrefix(line, "-X "))
		case strings.HasPrefix(line, "-I "):
			f := strings.Fields(line)
			if _, ok := kernel[table][f[1]]; !ok {
				continue // a jump in a built-in chain
			}
			r := "-A " + f[1] + strings.TrimPrefix(line, "-I "+f[1]+" 1")
			kernel[table][f[1]] = append([]string{r}, kernel[table][f[1]]...)
		case strings.HasPrefix(line, "-D "):
			f := strings.Fields(line)
			r := "-A " + strings.TrimPrefix(line, "-D ")
			i := slices.Index(kernel[table][f[1]], r)
			if i < 0 {
				t.Fatalf("deleting a rule not there: %s", line)
			}
			kernel[table][f[1]] = slices.Delete(kernel[table][f[1]], i, i+1)
		default:
			t.Fatalf("unexpected restore line %q", line)
		}
	}
}

// Random partial syncs leave the same rules as a full sync of the final state.
func TestPartialPlansMatchFull(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	st := testState()
	kernel := map[string]map[string][]string{}
	p := MakePlan(cfg, nil, st, nil, nil)
	applyRestore(t, kernel, p.Restore)
	cur := p.Next
	for step := 0; step < 300; step++ {
		k := proxy.Key{Namespace: "default", Name: fmt.Sprintf("s%d", r.IntN(8))}
		switch r.IntN(4) {
		case 0:
			delete(st.Services, k)
			delete(st.Endpoints, k)
		default:
			sp := &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.AddrFrom4([4]byte{10, 96, 1, byte(r.IntN(8) + 1)}), Port: 80}
			if r.IntN(2) == 0 {
				sp.NodePort = int32(30100 + r.IntN(8))
			}
			if r.IntN(3) == 0 {
				sp.AffinityTimeout = 60
			}
			sp.ExternalLocal = sp.NodePort != 0 && r.IntN(2) == 0
			var eps []proxy.Endpoint
			for i := 0; i < r.IntN(4); i++ {
				eps = append(eps, ep(fmt.Sprintf("10.244.%d.%d:8080", r.IntN(2), i+2), true, r.IntN(2) == 0))
			}
			st.Services[k], st.Endpoints[k] = sp, eps
		}
		p := MakePlan(cfg, cur, st, []proxy.Key{k}, nil)
		applyRestore(t, kernel, p.Restore)
		cur = p.Next
		full := map[string]map[string][]string{}
		applyRestore(t, full, MakePlan(cfg, nil, st, nil, nil).Restore)
		if a, b := dumpModel(kernel), dumpModel(full); a != b {
			t.Fatalf("step %d: after partial syncs\n%s\nfrom scratch\n%s", step, a, b)
		}
	}
}

func dumpModel(k map[string]map[string][]string) string {
	var out []string
	for t, chains := range k {
		for ch, rules := range chains {
			out = append(out, t+" :"+ch)
			for _, r := range rules {
				out = append(out, t+" "+r)
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// One endpoint change writes only that Service's chains and no shared one.
func TestOneChangeWritesItsChains(t *testing.T) {
	st := testState()
	p := MakePlan(cfg, nil, st, nil, nil)
	k := proxy.Key{Namespace: "default", Name: "httpd-svc"}
	st.Endpoints[k] = st.Endpoints[k][:2]
	p2 := MakePlan(cfg, p.Next, st, []proxy.Key{k}, nil)
	for _, ch := range p2.Chains {
		if !strings.HasPrefix(ch, "nat/KUBE-SVC-") {
			t.Errorf("wrote %s", ch)
		}
	}
	if len(p2.Deleted) != 1 || !strings.HasPrefix(p2.Deleted[0], "nat/KUBE-SEP-") {
		t.Errorf("deleted %v", p2.Deleted)
	}
	if p3 := MakePlan(cfg, p2.Next, st, []proxy.Key{k}, nil); p3.Restore != "" {
		t.Errorf("an unchanged Service writes:\n%s", p3.Restore)
	}
}

// A full sync deletes service chains a previous run left and inserts only missing jumps.
func TestFullPlanStaleAndJumps(t *testing.T) {
	save := Build(cfg, ComputeAll(cfg, tutorialState())).Save()
	save = strings.Replace(save, "COMMIT\n*nat\n", "COMMIT\n*nat\n:KUBE-SVC-STALEAAAAAAAAAAA - [0:0]\n", 1)
	ex := ParseExisting(save)
	p := MakePlan(cfg, nil, tutorialState(), nil, &ex)
	if !strings.Contains(p.Restore, "-X KUBE-SVC-STALEAAAAAAAAAAA") {
		t.Errorf("stale chain not deleted:\n%s", p.Restore)
	}
	if strings.Contains(p.Restore, "-I ") {
		t.Errorf("jumps inserted again:\n%s", p.Restore)
	}
	if p := MakePlan(cfg, nil, tutorialState(), nil, nil); strings.Count(p.Restore, "-I ") != len(Jumps) {
		t.Errorf("want %d jumps inserted:\n%s", len(Jumps), p.Restore)
	}
}
