package netpol

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// The upstream netpol e2e model: namespaces x, y, z with pods a, b, c each,
// serving TCP and UDP on 80 and 81 under the names serve-80-tcp etc. Pods a
// and b run on node n1, c on n2, so flows cross nodes too. x is 10.244.1.0/24,
// y 10.244.2.0/24, z 10.244.3.0/24; 192.168.1.5 and .200 are outside clients.
var (
	modelNamespaces = []string{"x", "y", "z"}
	modelPods       = []string{"a", "b", "c"}
	externals       = []string{"192.168.1.5", "192.168.1.200"}
)

func modelIP(ns, pod string) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 244, byte(slices.Index(modelNamespaces, ns) + 1), byte(slices.Index(modelPods, pod) + 2)})
}

func model(t *testing.T, policies string) *State {
	t.Helper()
	var pods []*Pod
	var nss []*Namespace
	for _, ns := range modelNamespaces {
		nss = append(nss, FromNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"ns": ns}}}))
		for _, name := range modelPods {
			node := "n1"
			if name == "c" {
				node = "n2"
			}
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"pod": name}},
				Spec:   corev1.PodSpec{NodeName: node},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: modelIP(ns, name).String()}}
			for _, port := range []int32{80, 81} {
				for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
					p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d-%s", port, proto),
						Ports: []corev1.ContainerPort{{Name: fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto))), ContainerPort: port, Protocol: proto}}})
				}
			}
			pods = append(pods, FromPod(p))
		}
	}
	var pols []*Policy
	for _, doc := range strings.Split(policies, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var np networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict([]byte(doc), &np); err != nil {
			t.Fatalf("policy %q: %v", doc, err)
		}
		p, err := FromPolicy(&np)
		if err != nil {
			t.Fatal(err)
		}
		pols = append(pols, p)
	}
	return NewState(pods, nss, pols)
}

// probe is one flow of the model.
type probe struct {
	from, to string // ns/pod or an external IP
	proto    corev1.Protocol
	port     uint16
}

func addrOf(s string) netip.Addr {
	if ns, pod, ok := strings.Cut(s, "/"); ok {
		return modelIP(ns, pod)
	}
	return netip.MustParseAddr(s)
}

func probes() []probe {
	var ends []string
	for _, ns := range modelNamespaces {
		for _, p := range modelPods {
			ends = append(ends, ns+"/"+p)
		}
	}
	var out []probe
	for _, from := range append(slices.Clone(ends), externals...) {
		for _, to := range append(slices.Clone(ends), externals...) {
			if !strings.Contains(from+to, "/") {
				continue
			}
			for _, pp := range []struct {
				proto corev1.Protocol
				port  uint16
			}{{"TCP", 80}, {"TCP", 81}, {"UDP", 80}, {"UDP", 81}} {
				out = append(out, probe{from, to, pp.proto, pp.port})
			}
		}
	}
	return out
}

func ns(s string) string { n, _, _ := strings.Cut(s, "/"); return n }

// The cases follow the Kubernetes NetworkPolicy docs and the upstream e2e
// suite (test/e2e/network/netpol): each says which probes succeed.
var cases = []struct {
	name     string
	policies string
	want     func(p probe) bool
}{
	{"no policy: everything allowed", "", func(probe) bool { return true }},
	{"default-deny-ingress in x", `
metadata: {name: default-deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
		func(p probe) bool { return ns(p.to) != "x" }},
	{"default-deny-all in x (ingress and egress)", `
metadata: {name: default-deny-all, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}`,
		func(p probe) bool { return ns(p.to) != "x" && ns(p.from) != "x" }},
	{"allow x/a from pods of its namespace with pod=b (podSelector)", `
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]`,
		func(p probe) bool { return p.to != "x/a" || p.from == "x/b" }},
	{"allow x/a only from namespace y (namespaceSelector)", `
metadata: {name: allow-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]}]`,
		func(p probe) bool { return p.to != "x/a" || ns(p.from) == "y" }},
	{"namespaceSelector with the default label kubernetes.io/metadata.name", `
metadata: {name: allow-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "y"}}}]}]`,
		func(p probe) bool { return p.to != "x/a" || ns(p.from) == "y" }},
	{"podSelector AND namespaceSelector in one peer", `
metadata: {name: allow-y-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: b}}}]}]`,
		func(p probe) bool { return p.to != "x/a" || p.from == "y/b" }},
	{"podSelector OR namespaceSelector (two peers)", `
metadata: {name: allow-b-or-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}, {namespaceSelector: {matchLabels: {ns: "y"}}}]}]`,
		func(p probe) bool { return p.to != "x/a" || p.from == "x/b" || ns(p.from) == "y" }},
	{"any pod in any namespace (empty namespaceSelector) with pod=b", `
metadata: {name: allow-any-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]}]`,
		func(p probe) bool { return p.to != "x/a" || strings.HasSuffix(p.from, "/b") }},
	{"matchExpressions on pods and namespaces", `
metadata: {name: allow-expr, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: ["x"]}]}}]}]`,
		func(p probe) bool {
			return (p.to != "x/a" && p.to != "x/b") || (ns(p.from) != "x" && strings.Contains(p.from, "/"))
		}},
	{"ports: only TCP 81 to x/a", `
metadata: {name: allow-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81}]}]`,
		func(p probe) bool { return p.to != "x/a" || p.proto == "TCP" && p.port == 81 }},
	{"named port serve-81-tcp to x/a from namespace y", `
metadata: {name: allow-named, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: serve-81-tcp}]}]`,
		func(p probe) bool { return p.to != "x/a" || ns(p.from) == "y" && p.proto == "TCP" && p.port == 81 }},
	{"a protocol without a port: every UDP port", `
metadata: {name: allow-udp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: UDP}]}]`,
		func(p probe) bool { return p.to != "x/a" || p.proto == "UDP" }},
	{"UDP 81 only: TCP 81 stays closed", `
metadata: {name: allow-udp-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: UDP, port: 81}]}]`,
		func(p probe) bool { return p.to != "x/a" || p.proto == "UDP" && p.port == 81 }},
	{"endPort: TCP 80-81", `
metadata: {name: allow-range, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 80, endPort: 81}]}]`,
		func(p probe) bool { return p.to != "x/a" || p.proto == "TCP" }},
	{"stacked policies with overlapping selectors: the union", `
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80}, {port: 79, endPort: 80, protocol: UDP}]}]
---
metadata: {name: allow-y, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 80, endPort: 81}]}]`,
		func(p probe) bool {
			switch {
			case ns(p.to) != "x":
				return true
			case p.to == "x/a" && p.from == "x/b" && p.port == 80:
				return true
			}
			return ns(p.from) == "y" && p.proto == "TCP"
		}},
	{"allow-all ingress beats default deny", `
metadata: {name: deny, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
metadata: {name: allow-all, namespace: x}
spec: {podSelector: {}, ingress: [{}]}`,
		func(probe) bool { return true }},
	{"egress denied on the client although the server allows everything", `
metadata: {name: deny-egress, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}
---
metadata: {name: allow-all, namespace: y}
spec: {podSelector: {}, ingress: [{}]}`,
		func(p probe) bool { return p.from != "x/a" }},
	{"egress on one named port to namespace y", `
metadata: {name: egress-named, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: serve-81-udp, protocol: UDP}]}]`,
		func(p probe) bool { return p.from != "x/a" || ns(p.to) == "y" && p.proto == "UDP" && p.port == 81 }},
	{"egress named port to everyone: only pods that have it", `
metadata: {name: egress-named-all, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{ports: [{port: serve-80-tcp}]}]`,
		func(p probe) bool {
			return p.from != "x/a" || strings.Contains(p.to, "/") && p.proto == "TCP" && p.port == 80
		}},
	{"egress rules without policyTypes default to Ingress and Egress", `
metadata: {name: egress-only-rules, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{podSelector: {matchLabels: {pod: b}}}]}]`,
		func(p probe) bool { return p.to != "x/a" && (p.from != "x/a" || p.to == "x/b") }},
	{"ingress and egress isolated independently", `
metadata: {name: in, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress], ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}]}]}
---
metadata: {name: out, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {pod: b}}}]}]}`,
		func(p probe) bool { return (p.to != "x/a" || p.from == "x/c") && (p.from != "x/a" || p.to == "x/b") }},
	{"egress to a CIDR with an except", `
metadata: {name: egress-cidr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}}]}]`,
		func(p probe) bool { return p.from != "x/a" || strings.Contains(p.to, "/") && ns(p.to) != "y" }},
	{"an IP in both a CIDR's except and another ipBlock is allowed", `
metadata: {name: egress-overlap, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.2/32]}}, {ipBlock: {cidr: 10.244.2.2/32}}]}]`,
		func(p probe) bool { return p.from != "x/a" || strings.Contains(p.to, "/") }},
	{"ingress from outside clients by ipBlock", `
metadata: {name: from-lan, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{ipBlock: {cidr: 192.168.1.0/24, except: [192.168.1.128/25]}}], ports: [{port: 80}]}]`,
		func(p probe) bool {
			return p.to != "x/a" || p.from == "192.168.1.5" && p.proto == "TCP" && p.port == 80
		}},
	{"egress to outside addresses", `
metadata: {name: to-lan, namespace: z}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 192.168.1.0/25}}]}]`,
		func(p probe) bool { return ns(p.from) != "z" || p.to == "192.168.1.5" }},
}

func TestDecideAndCompile(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := model(t, tc.policies)
			node := map[string]Rules{"n1": Compile(s, "n1"), "n2": Compile(s, "n2")}
			nodeOf := func(end string) string {
				if strings.HasSuffix(end, "/c") {
					return "n2"
				}
				if strings.Contains(end, "/") {
					return "n1"
				}
				return ""
			}
			for _, p := range probes() {
				want := tc.want(p) || p.from == p.to // a pod reaches itself (hairpin through its Service)
				f := Flow{Src: addrOf(p.from), Dst: addrOf(p.to), Protocol: p.proto, Port: p.port}
				if v := Decide(s, f); v.Allowed() != want {
					t.Errorf("Decide %s -> %s %s/%d = %v (%s), want %v", p.from, p.to, p.proto, p.port, v.Allowed(), v, want)
				}
				// The packet crosses the source's node, then the destination's.
				got := true
				for _, n := range slices.Compact([]string{nodeOf(p.from), nodeOf(p.to)}) {
					if n != "" && !trace(node[n], f) {
						got = false
					}
				}
				if got != want {
					t.Errorf("rules %s -> %s %s/%d pass = %v, want %v", p.from, p.to, p.proto, p.port, got, want)
				}
			}
		})
	}
}

// trace walks a packet of flow f (a new connection) through the ruleset
// description with r's elements, as the kernel would.
func trace(r Rules, f Flow) bool {
	els := elements(r)
	key := map[field][]byte{saddr: ip4(f.Src), daddr: ip4(f.Dst), l4proto: {protoNum(f.Protocol), 0, 0, 0},
		dport: {byte(f.Port >> 8), byte(f.Port), 0, 0}}
	in := func(set string, fields []field) bool {
		var k []byte
		for _, fl := range fields {
			k = append(k, key[fl]...)
		}
		for _, e := range els {
			if e.set != set {
				continue
			}
			end := e.end
			if end == "" {
				end = e.key
			}
			ok := true
			for i := 0; i < len(k); i += 4 { // each component within its range
				if bytes.Compare(k[i:i+4], []byte(e.key[i:i+4])) < 0 || bytes.Compare(k[i:i+4], []byte(end[i:i+4])) > 0 {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
		return false
	}
	var run func(chain string) (verdict string)
	run = func(chain string) string {
		for _, rl := range ruleset {
			if rl.chain != chain || rl.established || len(rl.key) > 0 && !in(rl.set, rl.key) {
				continue
			}
			if next, ok := strings.CutPrefix(rl.verdict, "jump "); ok {
				if v := run(next); v != "return" {
					return v
				}
				continue
			}
			return rl.verdict
		}
		return "return"
	}
	return run("forward") != "drop"
}

// TestElementsDisjoint: no two elements of a set overlap (the kernel refuses
// overlapping intervals in concatenated sets).
func TestElementsDisjoint(t *testing.T) {
	for _, tc := range cases {
		s := model(t, tc.policies)
		for _, n := range []string{"n1", "n2"} {
			els := elements(Compile(s, n))
			for i, a := range els {
				for _, b := range els[i+1:] {
					if a.set == b.set && overlap(a, b) {
						t.Errorf("%s, node %s: %s and %s overlap in %s", tc.name, n, a.text(), b.text(), a.set)
					}
				}
			}
		}
	}
}

func overlap(a, b element) bool {
	ae, be := a.end, b.end
	if ae == "" {
		ae = a.key
	}
	if be == "" {
		be = b.key
	}
	for i := 0; i < len(a.key); i += 4 {
		if bytes.Compare([]byte(a.key[i:i+4]), []byte(be[i:i+4])) > 0 || bytes.Compare([]byte(b.key[i:i+4]), []byte(ae[i:i+4])) > 0 {
			return false
		}
	}
	return true
}

// TestRenderGolden is the Kubernetes docs' test-network-policy on node n1.
func TestRenderGolden(t *testing.T) {
	s := model(t, `
metadata: {name: test-network-policy, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}
    - namespaceSelector: {matchLabels: {ns: "y"}}
    - podSelector: {matchLabels: {pod: b}}
    ports: [{protocol: TCP, port: 6379}]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{protocol: TCP, port: 5978}]`)
	got := Render(Compile(s, "n1"))
	const golden = "testdata/ruleset.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("Render differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

func TestPlanChangesElementsOnly(t *testing.T) {
	s := model(t, `
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]`)
	first, written := plan(nil, Compile(s, "n1"))
	if !first.Full || len(first.Add) == 0 {
		t.Fatalf("first plan = %+v, want a full write", first)
	}
	if p, _ := plan(written, Compile(s, "n1")); p.Full || len(p.Add)+len(p.Delete) != 0 {
		t.Fatalf("unchanged state: plan %+v, want nothing", p)
	}
	// x/c gets the label pod=b: one more peer, x/a's element for x/b is widened.
	for _, p := range s.Pods {
		if p.Key() == "x/c" {
			p.Labels = map[string]string{"pod": "b"}
		}
	}
	p, _ := plan(written, Compile(s, "n1"))
	if p.Full || len(p.Add) == 0 {
		t.Fatalf("label change: plan %+v, want element changes", p)
	}
	var add []string
	for _, e := range p.Add {
		add = append(add, e.set+" "+e.text())
	}
	if want := "ingress-pairs 10.244.1.2 . 10.244.1.4"; !slices.Equal(add, []string{want}) || len(p.Delete) != 0 {
		t.Errorf("label change adds %v, want x/c (10.244.1.4) allowed to reach x/a", add)
	}
}

func TestFromPolicyErrors(t *testing.T) {
	bad := func(s string) *networkingv1.NetworkPolicy {
		var np networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict([]byte(s), &np); err != nil {
			t.Fatal(err)
		}
		return &np
	}
	for doc, want := range map[string]string{
		`{spec: {podSelector: {matchExpressions: [{key: a, operator: Bad}]}}}`:                       "spec.podSelector",
		`{spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: nope}}]}]}}`:                    "spec.ingress[0].peers[0].ipBlock.cidr",
		`{spec: {podSelector: {}, egress: [{ports: [{port: 90, endPort: 80}]}]}}`:                    "spec.egress[0].ports[0].endPort",
		`{spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [x]}}]}]}}`: "except[0]",
	} {
		if _, err := FromPolicy(bad(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FromPolicy(%s) = %v, want an error naming %s", doc, err, want)
		}
	}
}
