// Package nftables is the kernel backend of the service proxy: one nftables
// table, `ip svcnet`, whose lookups are verdict maps keyed by
// `ip daddr . meta l4proto . th dport` (cluster, external and load-balancer
// IPs) and `meta l4proto . th dport` (node ports), so their cost does not grow
// with the number of Services; each Service port has a chain that picks an
// endpoint with `numgen random mod K == 0` rules (the first of N with
// probability 1/N, the next 1/(N-1) of the rest ...: uniform, as iptables'
// statistic match), and each endpoint a chain that DNATs. No map is shared
// between Services: the kernel validates what a commit can reach from the
// hooks, and a map referenced from every Service chain made that quadratic. The rules are
// computed here from proxy.State without I/O (see README.md for the hooks);
// apply.go sends only what changed over netlink, in one transaction.
package nftables

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

// Table is the nftables table svcnet owns.
const Table = "svcnet"

// MasqMark is the packet mark that asks the postrouting chain to masquerade.
const MasqMark = 0x4000

// Named maps and sets of the table.
const (
	MapServiceIPs          = "service-ips"           // ip . proto . port : goto service chain
	MapServiceNodePorts    = "service-nodeports"     // proto . port : goto external chain
	MapNoEndpointServices  = "no-endpoint-services"  // ip . proto . port : goto reject | drop
	MapNoEndpointNodePorts = "no-endpoint-nodeports" // proto . port : goto reject | drop
	SetClusterIPs          = "cluster-ips"           // every allocated cluster IP
	ChainReject            = "reject-chain"
)

// Config is what the rules need besides the state.
type Config struct {
	ClusterCIDR netip.Prefix // pod network: traffic from elsewhere to a cluster IP is masqueraded
	ServiceCIDR netip.Prefix // cluster IPs outside the set are rejected
}

// Verdict is a map value or a rule's end.
type Verdict struct {
	Goto string // chain; empty with Drop
	Drop bool
}

func (v Verdict) String() string {
	if v.Drop {
		return "drop"
	}
	return "goto " + v.Goto
}

// IPProtoPort is a key of the service-ips maps.
type IPProtoPort struct {
	IP    netip.Addr
	Proto corev1.Protocol
	Port  uint16
}

// ProtoPort is a key of the node port maps.
type ProtoPort struct {
	Proto corev1.Protocol
	Port  uint16
}

// Rule is one rule: its matches all hold, then its statements run in order.
type Rule struct {
	Comment    string
	SaddrIn    netip.Prefix // ip saddr <prefix>
	SaddrNotIn netip.Prefix // ip saddr != <prefix>
	SaddrInSet string       // ip saddr @set
	Mark       bool         // meta mark set meta mark | MasqMark
	Update     string       // update @set { ip saddr }
	// One terminal statement (or none):
	Goto   string
	Random int            // with Goto: only when numgen random mod Random == 0 (0: always)
	DNAT   netip.AddrPort // meta l4proto <proto> dnat ip to <addr:port>
	Proto  corev1.Protocol
	Drop   bool
}

// Chain is a regular chain of one service port.
type Chain struct {
	Name  string
	Rules []Rule
}

// AffinitySet remembers the clients of one endpoint (sessionAffinity ClientIP).
type AffinitySet struct {
	Name    string
	Timeout uint32 // seconds
}

// Fragment is everything one service port puts into the table.
type Fragment struct {
	Key                 proxy.Key
	Chains              []Chain
	ServiceIPs          map[IPProtoPort]Verdict
	NodePorts           map[ProtoPort]Verdict
	NoEndpoints         map[IPProtoPort]Verdict
	NoEndpointNodePorts map[ProtoPort]Verdict
	ClusterIPs          []netip.Addr
	Affinity            []AffinitySet
	Protocol            corev1.Protocol
	Backends            []netip.AddrPort // every endpoint some chain DNATs to
}

// chainName builds a readable, unique chain name: kind-ns/name/proto/port.
func chainName(kind string, sp *proxy.ServicePort) string {
	return fmt.Sprintf("%s-%s/%s/%s/%s", kind, sp.Key.Namespace, sp.Key.Name, strings.ToLower(string(sp.Protocol)), portLabel(sp))
}

func portLabel(sp *proxy.ServicePort) string {
	if sp.Key.Port != "" {
		return sp.Key.Port
	}
	return fmt.Sprintf("p%d", sp.Port)
}

// Compute returns the fragment of one service port with its endpoints.
func Compute(c Config, sp *proxy.ServicePort, eps []proxy.Endpoint) *Fragment {
	f := &Fragment{Key: sp.Key, Protocol: sp.Protocol, ServiceIPs: map[IPProtoPort]Verdict{}, NodePorts: map[ProtoPort]Verdict{},
		NoEndpoints: map[IPProtoPort]Verdict{}, NoEndpointNodePorts: map[ProtoPort]Verdict{}}
	if sp.ClusterIP.IsValid() {
		f.ClusterIPs = []netip.Addr{sp.ClusterIP}
	}
	if sp.Port == 0 { // a Service another proxy implements: only its IP is known here
		return f
	}
	comment := sp.Key.String()
	port := uint16(sp.Port)
	clusterEps := proxy.Usable(eps, sp.InternalLocal)
	allEps := proxy.Usable(eps, false)
	externalEps := allEps
	if sp.ExternalLocal {
		externalEps = proxy.Usable(eps, true)
	}
	reject := Verdict{Goto: ChainReject}

	// Endpoint chains, shared by the cluster and the local (external) pick.
	epChain := map[netip.AddrPort]string{}
	for _, e := range allEps {
		name := chainName("endpoint", sp) + "__" + e.Addr.String()
		epChain[e.Addr] = name
		f.Backends = append(f.Backends, e.Addr)
		ch := Chain{Name: name}
		ch.Rules = append(ch.Rules, Rule{Comment: comment, SaddrIn: netip.PrefixFrom(e.Addr.Addr(), 32), Mark: true})
		r := Rule{Comment: comment, DNAT: e.Addr, Proto: sp.Protocol}
		if sp.AffinityTimeout > 0 {
			r.Update = affinitySet(name)
			f.Affinity = append(f.Affinity, AffinitySet{Name: affinitySet(name), Timeout: uint32(sp.AffinityTimeout)})
		}
		ch.Rules = append(ch.Rules, r)
		f.Chains = append(f.Chains, ch)
	}
	pick := func(kind string, use []proxy.Endpoint, first []Rule) Chain {
		name := chainName(kind, sp)
		ch := Chain{Name: name, Rules: first}
		if sp.AffinityTimeout > 0 {
			for _, e := range use {
				ch.Rules = append(ch.Rules, Rule{Comment: comment, SaddrInSet: affinitySet(epChain[e.Addr]), Goto: epChain[e.Addr]})
			}
		}
		for i, e := range use {
			r := Rule{Comment: comment, Goto: epChain[e.Addr]}
			if left := len(use) - i; left > 1 {
				r.Random = left
			}
			ch.Rules = append(ch.Rules, r)
		}
		return ch
	}

	// Cluster traffic to the cluster IP.
	svcChain := ""
	if len(clusterEps) > 0 {
		var first []Rule
		if c.ClusterCIDR.IsValid() {
			first = append(first, Rule{Comment: comment + " cluster IP from outside the pod network", SaddrNotIn: c.ClusterCIDR, Mark: true})
		}
		ch := pick("service", clusterEps, first)
		svcChain = ch.Name
		f.Chains = append(f.Chains, ch)
		f.ServiceIPs[IPProtoPort{sp.ClusterIP, sp.Protocol, port}] = Verdict{Goto: svcChain}
	} else if len(allEps) > 0 { // internalTrafficPolicy Local without local endpoints
		f.NoEndpoints[IPProtoPort{sp.ClusterIP, sp.Protocol, port}] = Verdict{Drop: true}
	} else {
		f.NoEndpoints[IPProtoPort{sp.ClusterIP, sp.Protocol, port}] = reject
	}

	// External traffic: node ports, external IPs, load-balancer IPs.
	hasExternal := sp.NodePort != 0 || len(sp.ExternalIPs) > 0 || len(sp.LoadBalancerIPs) > 0
	if !hasExternal {
		return f
	}
	var extTarget Verdict
	switch {
	case len(allEps) == 0:
		extTarget = reject
	case sp.ExternalLocal && len(externalEps) == 0:
		extTarget = Verdict{Drop: true} // kube-proxy drops: no local endpoint for Local policy
	case sp.ExternalLocal:
		ch := pick("local", externalEps, nil) // client source IP kept: no masquerade
		f.Chains = append(f.Chains, ch)
		extTarget = Verdict{Goto: ch.Name}
	default:
		name := chainName("external", sp)
		target := svcChain
		if target == "" { // internal Local policy left no cluster chain: pick from all
			ch := pick("service", allEps, nil)
			f.Chains = append(f.Chains, ch)
			target = ch.Name
		}
		f.Chains = append(f.Chains, Chain{Name: name, Rules: []Rule{
			{Comment: comment + " external traffic is masqueraded", Mark: true},
			{Comment: comment, Goto: target}}})
		extTarget = Verdict{Goto: name}
	}
	add := func(ip netip.Addr, v Verdict) {
		k := IPProtoPort{ip, sp.Protocol, port}
		if v.Goto == ChainReject {
			f.NoEndpoints[k] = v
		} else if v.Drop {
			f.NoEndpoints[k] = v
		} else {
			f.ServiceIPs[k] = v
		}
	}
	for _, ip := range sp.ExternalIPs {
		add(ip, extTarget)
	}
	lbTarget := extTarget
	if len(sp.SourceRanges) > 0 && !extTarget.Drop && extTarget.Goto != ChainReject {
		name := chainName("firewall", sp)
		ch := Chain{Name: name}
		for _, r := range sp.SourceRanges {
			ch.Rules = append(ch.Rules, Rule{Comment: comment + " loadBalancerSourceRanges", SaddrIn: r, Goto: extTarget.Goto})
		}
		ch.Rules = append(ch.Rules, Rule{Comment: comment + " source not in loadBalancerSourceRanges", Drop: true})
		f.Chains = append(f.Chains, ch)
		lbTarget = Verdict{Goto: name}
	}
	for _, ip := range sp.LoadBalancerIPs {
		add(ip, lbTarget)
	}
	if sp.NodePort != 0 {
		k := ProtoPort{sp.Protocol, uint16(sp.NodePort)}
		if extTarget.Drop || extTarget.Goto == ChainReject {
			f.NoEndpointNodePorts[k] = extTarget
		} else {
			f.NodePorts[k] = extTarget
		}
	}
	return f
}

func affinitySet(epChain string) string {
	return "affinity-" + strings.TrimPrefix(epChain, "endpoint-")
}

// ComputeAll returns the fragments of every service port in the state.
func ComputeAll(c Config, st *proxy.State) map[proxy.Key]*Fragment {
	out := make(map[proxy.Key]*Fragment, len(st.Services))
	for k, sp := range st.Services {
		out[k] = Compute(c, sp, st.Endpoints[k])
	}
	return out
}

// sortedKeys returns a map's keys in the order less gives.
func sortedKeys[K comparable](m map[K]Verdict, less func(a, b K) bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

func lessIPP(a, b IPProtoPort) bool {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c < 0
	}
	if a.Proto != b.Proto {
		return a.Proto < b.Proto
	}
	return a.Port < b.Port
}

func lessPP(a, b ProtoPort) bool {
	if a.Proto != b.Proto {
		return a.Proto < b.Proto
	}
	return a.Port < b.Port
}
