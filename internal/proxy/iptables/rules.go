// Package iptables is the service proxy backend that writes kube-proxy's
// iptables rule layout (KUBE-SERVICES -> KUBE-SVC-<hash> -> KUBE-SEP-<hash> ->
// DNAT), so the walkthroughs that teach Services through `iptables-save` read
// the same on svcnet. The rules are computed from proxy.State without I/O
// (Compute, Build), the difference to what was written last is a pure plan
// (Plan: the `iptables-restore --noflush` input of only the changed chains),
// and the backend only runs the Debian iptables tools. Trace follows a packet
// through an iptables-save dump, the kernel's or the computed one.
package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/conntrack"
)

// Chains every sync owns, as kube-proxy names them.
const (
	ChainServices         = "KUBE-SERVICES"
	ChainExternalServices = "KUBE-EXTERNAL-SERVICES"
	ChainNodePorts        = "KUBE-NODEPORTS"
	ChainPostrouting      = "KUBE-POSTROUTING"
	ChainMarkMasq         = "KUBE-MARK-MASQ"
	ChainForward          = "KUBE-FORWARD"
	ChainProxyFirewall    = "KUBE-PROXY-FIREWALL"
)

// MasqMark is the packet mark that asks KUBE-POSTROUTING to masquerade (kube-proxy's 0x4000).
const MasqMark = "0x4000"

// Config is what the rules need besides the state.
type Config struct {
	ClusterCIDR netip.Prefix // pod network: traffic from elsewhere to a cluster IP is masqueraded
}

// portProtoHash is kube-proxy's chain suffix: base32 of sha256(name + protocol), 16 characters.
func portProtoHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}

func proto(sp *proxy.ServicePort) string { return strings.ToLower(string(sp.Protocol)) }

// ServiceChain is KUBE-SVC-<hash>: the endpoints for Cluster traffic policy.
func ServiceChain(sp *proxy.ServicePort) string {
	return "KUBE-SVC-" + portProtoHash(sp.Key.String()+proto(sp))
}

// LocalChain is KUBE-SVL-<hash>: the endpoints for Local traffic policy.
func LocalChain(sp *proxy.ServicePort) string {
	return "KUBE-SVL-" + portProtoHash(sp.Key.String()+proto(sp))
}

// ExternalChain is KUBE-EXT-<hash>: node ports, external and load-balancer IPs.
func ExternalChain(sp *proxy.ServicePort) string {
	return "KUBE-EXT-" + portProtoHash(sp.Key.String()+proto(sp))
}

// FirewallChain is KUBE-FW-<hash>: loadBalancerSourceRanges.
func FirewallChain(sp *proxy.ServicePort) string {
	return "KUBE-FW-" + portProtoHash(sp.Key.String()+proto(sp))
}

// EndpointChain is KUBE-SEP-<hash>: one endpoint of one service port.
func EndpointChain(sp *proxy.ServicePort, ep netip.AddrPort) string {
	return "KUBE-SEP-" + portProtoHash(sp.Key.String()+proto(sp)+ep.String())
}

// IsServiceChain says whether a chain is one of a service port's own.
func IsServiceChain(name string) bool {
	for _, p := range []string{"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Rule is one iptables rule; its text is printed in iptables-save's order
// (addresses, protocol, then the matches as given, then the target).
type Rule struct {
	NotSrc  bool
	Src     string // "10.244.0.0/16"
	NotDst  bool
	Dst     string
	Proto   string // tcp, udp, sctp
	Comment string
	Prob    int    // -m statistic --mode random, probability 1/Prob (0: none)
	Matches string // further matches, as iptables-save prints them ("-m tcp --dport 80")
	Jump    string // target and its arguments ("KUBE-SVC-X", "DNAT --to-destination 10.244.0.2:80")
}

// Fragment is everything one service port puts into the tables: its rules in
// the shared chains and its own chains.
type Fragment struct {
	Key    proxy.Key
	Filter map[string][]Rule // rules in the filter table's shared chains
	NAT    map[string][]Rule // rules in KUBE-SERVICES and KUBE-NODEPORTS, and its own chains
	Own    []string          // its own NAT chains, in the order written
	UDP    *conntrack.UDP    // what the UDP conntrack cleanup needs (nil: not UDP)
}

func (f *Fragment) add(nat bool, chain string, r Rule) {
	m := f.Filter
	if nat {
		m = f.NAT
	}
	if nat && IsServiceChain(chain) {
		if _, ok := m[chain]; !ok {
			f.Own = append(f.Own, chain)
		}
	}
	m[chain] = append(m[chain], r)
}

func (f *Fragment) chain(name string) {
	if _, ok := f.NAT[name]; !ok {
		f.NAT[name] = []Rule{}
		f.Own = append(f.Own, name)
	}
}

func host(a netip.Addr) string { return a.String() + "/32" }

// Compute returns the fragment of one service port with its endpoints, as
// kube-proxy's iptables mode lays them out.
func Compute(c Config, sp *proxy.ServicePort, eps []proxy.Endpoint) *Fragment {
	f := &Fragment{Key: sp.Key, Filter: map[string][]Rule{}, NAT: map[string][]Rule{}, UDP: conntrack.Of(sp, eps)}
	if sp.Port == 0 || !sp.ClusterIP.IsValid() {
		return f // another proxy's Service: nothing here
	}
	name, p, port := sp.Key.String(), proto(sp), strconv.Itoa(int(sp.Port))
	dport := "-m " + p + " --dport " + port
	all := proxy.Usable(eps, false)
	local := proxy.Usable(eps, true)
	hasEndpoints := len(all) > 0
	svc, svl, ext, fw := ServiceChain(sp), LocalChain(sp), ExternalChain(sp), FirewallChain(sp)
	internalChain, hasInternal := svc, hasEndpoints
	if sp.InternalLocal {
		internalChain, hasInternal = svl, len(local) > 0
	}
	externalPolicy, hasExternal := svc, hasEndpoints
	if sp.ExternalLocal {
		externalPolicy, hasExternal = svl, len(local) > 0
	}
	external := sp.NodePort != 0 || len(sp.ExternalIPs) > 0 || len(sp.LoadBalancerIPs) > 0
	usesExt := hasEndpoints && external
	usesFW := hasEndpoints && len(sp.LoadBalancerIPs) > 0 && len(sp.SourceRanges) > 0
	lbChain := ext
	if usesFW {
		lbChain = fw
	}
	intTarget, intComment, extTarget, extComment := "", "", "", ""
	if !hasEndpoints {
		intTarget, extTarget = "REJECT --reject-with icmp-port-unreachable", "REJECT --reject-with icmp-port-unreachable"
		intComment = name + " has no endpoints"
		extComment = intComment
	} else {
		if !hasInternal {
			intTarget, intComment = "DROP", name+" has no local endpoints"
		}
		if !hasExternal {
			extTarget, extComment = "DROP", name+" has no local endpoints"
		}
	}

	if !sp.NodeLocal { // a listener of this node answers the cluster IP itself
		if hasInternal {
			f.add(true, ChainServices, Rule{Dst: host(sp.ClusterIP), Proto: p, Comment: name + " cluster IP", Matches: dport, Jump: internalChain})
		} else {
			f.add(false, ChainServices, Rule{Dst: host(sp.ClusterIP), Proto: p, Comment: intComment, Matches: dport, Jump: intTarget})
		}
	}
	for _, ip := range sp.ExternalIPs {
		if hasEndpoints {
			f.add(true, ChainServices, Rule{Dst: host(ip), Proto: p, Comment: name + " external IP", Matches: dport, Jump: ext})
		}
		if !hasExternal {
			f.add(false, ChainExternalServices, Rule{Dst: host(ip), Proto: p, Comment: extComment, Matches: dport, Jump: extTarget})
		}
	}
	for _, ip := range sp.LoadBalancerIPs {
		if hasEndpoints {
			f.add(true, ChainServices, Rule{Dst: host(ip), Proto: p, Comment: name + " loadbalancer IP", Matches: dport, Jump: lbChain})
		}
		if usesFW {
			f.add(false, ChainProxyFirewall, Rule{Dst: host(ip), Proto: p, Comment: name + " traffic not accepted by " + fw, Matches: dport, Jump: "DROP"})
		}
	}
	if !hasExternal {
		for _, ip := range sp.LoadBalancerIPs {
			f.add(false, ChainExternalServices, Rule{Dst: host(ip), Proto: p, Comment: extComment, Matches: dport, Jump: extTarget})
		}
	}
	if sp.NodePort != 0 {
		np := "-m " + p + " --dport " + strconv.Itoa(int(sp.NodePort))
		if hasEndpoints {
			f.add(true, ChainNodePorts, Rule{Proto: p, Comment: name, Matches: np, Jump: ext})
		}
		if !hasExternal {
			f.add(false, ChainExternalServices, Rule{Proto: p, Comment: extComment, Matches: "-m addrtype --dst-type LOCAL " + np, Jump: extTarget})
		}
	}
	if sp.HealthCheckPort != 0 {
		f.add(false, ChainNodePorts, Rule{Proto: "tcp", Comment: name + " health check node port",
			Matches: "-m tcp --dport " + strconv.Itoa(int(sp.HealthCheckPort)), Jump: "ACCEPT"})
	}

	// The service port's own chains.
	if hasInternal && c.ClusterCIDR.IsValid() {
		f.add(true, internalChain, Rule{NotSrc: true, Src: c.ClusterCIDR.String(), Dst: host(sp.ClusterIP), Proto: p,
			Comment: name + " cluster IP", Matches: dport, Jump: ChainMarkMasq})
	}
	if usesExt {
		f.chain(ext)
		if !sp.ExternalLocal {
			f.add(true, ext, Rule{Comment: "masquerade traffic for " + name + " external destinations", Jump: ChainMarkMasq})
		} else {
			if c.ClusterCIDR.IsValid() {
				f.add(true, ext, Rule{Src: c.ClusterCIDR.String(), Comment: "pod traffic for " + name + " external destinations", Jump: svc})
			}
			f.add(true, ext, Rule{Comment: "masquerade LOCAL traffic for " + name + " external destinations", Matches: "-m addrtype --src-type LOCAL", Jump: ChainMarkMasq})
			f.add(true, ext, Rule{Comment: "route LOCAL traffic for " + name + " external destinations", Matches: "-m addrtype --src-type LOCAL", Jump: svc})
		}
		if hasExternal {
			f.add(true, ext, Rule{Jump: externalPolicy})
		}
	}
	if usesFW {
		f.chain(fw)
		for _, r := range sp.SourceRanges {
			f.add(true, fw, Rule{Src: r.String(), Comment: name + " loadbalancer IP", Jump: ext})
		}
		f.add(true, fw, Rule{Comment: "other traffic to " + name + " will be dropped by KUBE-PROXY-FIREWALL"})
	}
	// As kube-proxy: the cluster chain also serves the short-circuit of
	// pod and node traffic to external destinations under policy Local.
	usesCluster := len(all) > 0 && (!sp.InternalLocal || external)
	usesLocal := len(local) > 0 && (sp.InternalLocal || sp.ExternalLocal)
	if usesCluster {
		f.chain(svc)
		f.endpointRules(sp, svc, all)
	}
	if usesLocal {
		f.chain(svl)
		f.endpointRules(sp, svl, local)
	}
	var reach []proxy.Endpoint
	seen := map[netip.AddrPort]bool{}
	var lists [][]proxy.Endpoint
	if usesCluster {
		lists = append(lists, all)
	}
	if usesLocal {
		lists = append(lists, local)
	}
	for _, list := range lists {
		for _, e := range list {
			if !seen[e.Addr] {
				seen[e.Addr] = true
				reach = append(reach, e)
			}
		}
	}
	sort.Slice(reach, func(i, j int) bool { return reach[i].Addr.Compare(reach[j].Addr) < 0 })
	for _, e := range reach {
		sep := EndpointChain(sp, e.Addr)
		f.chain(sep)
		f.add(true, sep, Rule{Src: host(e.Addr.Addr()), Comment: name, Jump: ChainMarkMasq})
		m := "-m " + p
		if sp.AffinityTimeout > 0 {
			m = "-m recent --set --name " + sep + " --mask 255.255.255.255 --rsource " + m
		}
		f.add(true, sep, Rule{Proto: p, Comment: name, Matches: m, Jump: "DNAT --to-destination " + e.Addr.String()})
	}
	return f
}

// endpointRules fills a SVC or SVL chain: affinity checks, then one rule per
// endpoint, the first with probability 1/N, the next 1/(N-1) ... the last always.
func (f *Fragment) endpointRules(sp *proxy.ServicePort, chain string, eps []proxy.Endpoint) {
	name := sp.Key.String()
	if sp.AffinityTimeout > 0 {
		for _, e := range eps {
			sep := EndpointChain(sp, e.Addr)
			f.add(true, chain, Rule{Comment: name + " -> " + e.Addr.String(),
				Matches: fmt.Sprintf("-m recent --rcheck --seconds %d --reap --name %s --mask 255.255.255.255 --rsource", sp.AffinityTimeout, sep), Jump: sep})
		}
	}
	for i, e := range eps {
		r := Rule{Comment: name + " -> " + e.Addr.String(), Jump: EndpointChain(sp, e.Addr)}
		if left := len(eps) - i; left > 1 {
			r.Prob = left
		}
		f.add(true, chain, r)
	}
}

// ComputeAll returns the fragments of every service port in the state.
func ComputeAll(c Config, st *proxy.State) map[proxy.Key]*Fragment {
	out := make(map[proxy.Key]*Fragment, len(st.Services))
	for k, sp := range st.Services {
		out[k] = Compute(c, sp, st.Endpoints[k])
	}
	return out
}

// sortedKeys orders fragments by key, so shared chains list services stably.
func sortedKeys(frags map[proxy.Key]*Fragment) []proxy.Key {
	keys := make([]proxy.Key, 0, len(frags))
	for k := range frags {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}
