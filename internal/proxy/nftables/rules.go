// Package nftables is the kernel backend of the service proxy: one nftables
// table, `ip svcnet`. A Service port is data, not rules: its keys (`ip daddr .
// meta l4proto . th dport` for cluster, external and load-balancer IPs,
// `meta l4proto . th dport` for node ports) map, with a slot number, to its
// endpoints in the map of its endpoint count N, and one fixed rule per N picks
// the slot: `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N
// map @ip-endpoints-N`. Masquerading, rejecting and dropping are set lookups.
// So lookups cost the same with 10 or 10,000 Services, and a change adds and
// deletes map elements only: a commit that adds rules, chains or jumps makes
// the kernel validate everything reachable from the hooks (~70 ms with a chain
// per Service at 10,000 Services); element changes are not validated. Only
// sessionAffinity ClientIP and loadBalancerSourceRanges need chains of their
// own. The rules are computed here from proxy.State without I/O (see
// README.md for the hooks); backend.go sends only what changed over netlink.
package nftables

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/conntrack"
)

// Table is the nftables table svcnet owns.
const Table = "svcnet"

// MasqMark is the packet mark that asks the postrouting chain to masquerade.
const MasqMark = 0x4000

// Config is what the rules need besides the state.
type Config struct {
	ClusterCIDR netip.Prefix // pod network: traffic from elsewhere to a cluster IP is masqueraded
	ServiceCIDR netip.Prefix // cluster IPs outside the set are rejected
	RoundRobin  bool         // numgen inc instead of numgen random
	// Local are this node's listeners (the cluster DNS): their packets are not
	// tracked (a raw-priority NOTRACK, as NodeLocal DNSCache), so no NAT and no
	// reject of this table or any other applies, whatever Service shares them.
	Local []proxy.Listener
}

// Masq says when traffic to a key is masqueraded.
type Masq int

const (
	MasqNone       Masq = iota // Local policies: the client's address is kept
	MasqOffCluster             // cluster IPs: when the source is outside the pod network
	MasqAlways                 // node ports, external and LB IPs with policy Cluster
)

// Target is what a key of a Service port leads to: endpoints chosen by slot
// (Pick, data only), a chain that picks (affinity), Reject or Drop. A chain
// with Pick checks loadBalancerSourceRanges and returns to the slot pick.
type Target struct {
	Pick   []netip.AddrPort
	Chain  string // jumped to
	Reject bool   // no endpoints: TCP reset / ICMP port unreachable
	Drop   bool   // a Local policy without a local endpoint
	Masq   Masq
}

// IPProtoPort is a key for cluster, external and load-balancer IPs.
type IPProtoPort struct {
	IP    netip.Addr
	Proto corev1.Protocol
	Port  uint16
}

// IPEntry is one IP key of a fragment and where it leads.
type IPEntry struct {
	Key IPProtoPort
	Target
}

// NodePortEntry is a node port key of a fragment and where it leads.
type NodePortEntry struct {
	Key ProtoPort
	Target
}

// setIP makes k lead to t (a later entry for the same key replaces the
// earlier one: a load-balancer IP that is also an external IP).
func (f *Fragment) setIP(k IPProtoPort, t Target) {
	for i := range f.IPs {
		if f.IPs[i].Key == k {
			f.IPs[i].Target = t
			return
		}
	}
	f.IPs = append(f.IPs, IPEntry{k, t})
}

// IPTarget is where k leads in f.
func (f *Fragment) IPTarget(k IPProtoPort) (Target, bool) {
	for _, e := range f.IPs {
		if e.Key == k {
			return e.Target, true
		}
	}
	return Target{}, false
}

// NodePortTarget is where node port k leads in f.
func (f *Fragment) NodePortTarget(k ProtoPort) (Target, bool) {
	for _, e := range f.NodePorts {
		if e.Key == k {
			return e.Target, true
		}
	}
	return Target{}, false
}

// ProtoPort is a node port key.
type ProtoPort struct {
	Proto corev1.Protocol
	Port  uint16
}

// Rule is one rule of a Service's own chain: its matches all hold, then its
// statements run in order.
type Rule struct {
	Comment    string
	SaddrIn    netip.Prefix // ip saddr <prefix>
	SaddrInSet string       // ip saddr @set
	Update     string       // update @set { ip saddr }
	// One terminal statement (or none):
	Goto       string
	Random     int  // with Goto: only when numgen random mod Random == 0 (0: always)
	RoundRobin bool // with Random: numgen inc
	Return     bool
	DNAT       netip.AddrPort // meta l4proto <proto> dnat ip to <addr:port>
	Proto      corev1.Protocol
	Drop       bool
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
	Key      proxy.Key
	Protocol corev1.Protocol
	// IPs and NodePorts are where its cluster, external and load-balancer
	// IPs and its node port lead, one entry per key (slices: a map per
	// fragment costs a whole map group, ~1 KB, per Service).
	IPs        []IPEntry
	NodePorts  []NodePortEntry
	ClusterIPs []netip.Addr
	Hairpin    []netip.Addr // local endpoints: a pod reaching itself is masqueraded
	Chains     []Chain
	Affinity   []AffinitySet
	UDP        *conntrack.UDP // what the UDP conntrack cleanup needs (nil: not UDP)
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

func addrs(eps []proxy.Endpoint) []netip.AddrPort {
	out := make([]netip.AddrPort, len(eps))
	for i, e := range eps {
		out[i] = e.Addr
	}
	return out
}

// Compute returns the fragment of one service port with its endpoints.
func Compute(c Config, sp *proxy.ServicePort, eps []proxy.Endpoint) *Fragment {
	f := &Fragment{Key: sp.Key, Protocol: sp.Protocol}
	if sp.ClusterIP.IsValid() {
		f.ClusterIPs = []netip.Addr{sp.ClusterIP}
	}
	if sp.Port == 0 { // a Service another proxy implements: only its IP is known here
		return f
	}
	port := uint16(sp.Port)
	allEps := proxy.Usable(eps, false)
	clusterEps := allEps
	if sp.InternalLocal {
		clusterEps = proxy.Usable(eps, true)
	}
	externalEps := allEps
	if sp.ExternalLocal {
		externalEps = proxy.Usable(eps, true)
	}
	f.UDP = conntrack.Of(sp, eps)
	seen := map[netip.Addr]bool{}
	for _, e := range allEps {
		if ip := e.Addr.Addr(); e.Local && !seen[ip] {
			seen[ip] = true
			f.Hairpin = append(f.Hairpin, ip)
		}
	}
	// pick leads to use: slots of a map, or with affinity a chain of its own.
	pick := func(kind string, use []proxy.Endpoint, masq Masq) Target {
		switch {
		case len(allEps) == 0:
			return Target{Reject: true}
		case len(use) == 0:
			return Target{Drop: true} // kube-proxy drops: a Local policy and no local endpoint
		case sp.AffinityTimeout > 0:
			return Target{Chain: f.affinityChain(c, sp, kind, use), Masq: masq}
		}
		return Target{Pick: addrs(use), Masq: masq}
	}
	if !sp.NodeLocal { // a listener of this node answers there (Config.Local)
		f.setIP(IPProtoPort{sp.ClusterIP, sp.Protocol, port}, pick("service", clusterEps, MasqOffCluster))
	}

	// External traffic: node ports, external IPs, load-balancer IPs.
	if sp.NodePort == 0 && len(sp.ExternalIPs) == 0 && len(sp.LoadBalancerIPs) == 0 {
		return f
	}
	kind, masq := "external", MasqAlways
	if sp.ExternalLocal {
		kind, masq = "local", MasqNone
	}
	ext := pick(kind, externalEps, masq)
	for _, ip := range sp.ExternalIPs {
		f.setIP(IPProtoPort{ip, sp.Protocol, port}, ext)
	}
	lb := ext
	if len(sp.SourceRanges) > 0 && (ext.Pick != nil || ext.Chain != "") {
		lb = Target{Chain: f.firewallChain(sp, ext), Pick: ext.Pick, Masq: ext.Masq}
	}
	for _, ip := range sp.LoadBalancerIPs {
		f.setIP(IPProtoPort{ip, sp.Protocol, port}, lb)
	}
	if sp.NodePort != 0 {
		f.NodePorts = []NodePortEntry{{ProtoPort{sp.Protocol, uint16(sp.NodePort)}, ext}}
	}
	return f
}

// firewallChain admits loadBalancerSourceRanges: an allowed packet returns to
// the slot pick (or goes on to the affinity chain), the rest is dropped.
func (f *Fragment) firewallChain(sp *proxy.ServicePort, to Target) string {
	comment := sp.Key.String() + " loadBalancerSourceRanges"
	ch := Chain{Name: chainName("firewall", sp)}
	for _, r := range sp.SourceRanges {
		rule := Rule{Comment: comment, SaddrIn: r, Goto: to.Chain}
		if to.Chain == "" {
			rule.Return = true
		}
		ch.Rules = append(ch.Rules, rule)
	}
	ch.Rules = append(ch.Rules, Rule{Comment: sp.Key.String() + " source not in loadBalancerSourceRanges", Drop: true})
	f.Chains = append(f.Chains, ch)
	return ch.Name
}

// affinityChain builds a chain that sends a client back to the endpoint it
// had (sessionAffinity ClientIP, a dynamic set per endpoint with the
// Service's timeout) and otherwise picks one with per-rule numgen: the first
// of N with probability 1/N, the next 1/(N-1) of the rest ... (uniform).
func (f *Fragment) affinityChain(c Config, sp *proxy.ServicePort, kind string, use []proxy.Endpoint) string {
	comment := sp.Key.String()
	ch := Chain{Name: chainName(kind, sp)}
	var targets []string
	for _, e := range use {
		name := chainName("endpoint", sp) + "__" + e.Addr.String()
		set := "affinity-" + strings.TrimPrefix(name, "endpoint-")
		targets = append(targets, name)
		ch.Rules = append(ch.Rules, Rule{Comment: comment, SaddrInSet: set, Goto: name})
		if f.hasChain(name) {
			continue
		}
		f.Affinity = append(f.Affinity, AffinitySet{Name: set, Timeout: uint32(sp.AffinityTimeout)})
		f.Chains = append(f.Chains, Chain{Name: name, Rules: []Rule{{Comment: comment, Update: set, DNAT: e.Addr, Proto: sp.Protocol}}})
	}
	for i, name := range targets {
		r := Rule{Comment: comment, Goto: name}
		if left := len(targets) - i; left > 1 {
			r.Random, r.RoundRobin = left, c.RoundRobin
		}
		ch.Rules = append(ch.Rules, r)
	}
	f.Chains = append(f.Chains, ch)
	return ch.Name
}

func (f *Fragment) hasChain(name string) bool {
	for _, ch := range f.Chains {
		if ch.Name == name {
			return true
		}
	}
	return false
}

// ComputeAll returns the fragments of every service port in the state.
func ComputeAll(c Config, st *proxy.State) map[proxy.Key]*Fragment {
	out := make(map[proxy.Key]*Fragment, len(st.Services))
	for k, sp := range st.Services {
		out[k] = Compute(c, sp, st.Endpoints[k])
	}
	return out
}
