package iptables

import (
	"fmt"
	"sort"
	"strings"

	"github.com/svcnet/svcnet/internal/proxy"
)

// Jump is a rule in a built-in chain that leads to one of ours (kube-proxy's
// iptablesJumpChains); it is inserted first in its chain when missing.
type Jump struct {
	Table, From string
	Rule        Rule
}

// Jumps are the hooks into our chains.
var Jumps = []Jump{
	{"filter", "INPUT", Rule{Comment: "kubernetes externally-visible service portals", Matches: "-m conntrack --ctstate NEW", Jump: ChainExternalServices}},
	{"filter", "FORWARD", Rule{Comment: "kubernetes externally-visible service portals", Matches: "-m conntrack --ctstate NEW", Jump: ChainExternalServices}},
	{"filter", "INPUT", Rule{Comment: "kubernetes health check service ports", Jump: ChainNodePorts}},
	{"filter", "FORWARD", Rule{Comment: "kubernetes service portals", Matches: "-m conntrack --ctstate NEW", Jump: ChainServices}},
	{"filter", "OUTPUT", Rule{Comment: "kubernetes service portals", Matches: "-m conntrack --ctstate NEW", Jump: ChainServices}},
	{"filter", "FORWARD", Rule{Comment: "kubernetes forwarding rules", Jump: ChainForward}},
	{"filter", "INPUT", Rule{Comment: "kubernetes load balancer firewall", Matches: "-m conntrack --ctstate NEW", Jump: ChainProxyFirewall}},
	{"filter", "OUTPUT", Rule{Comment: "kubernetes load balancer firewall", Matches: "-m conntrack --ctstate NEW", Jump: ChainProxyFirewall}},
	{"filter", "FORWARD", Rule{Comment: "kubernetes load balancer firewall", Matches: "-m conntrack --ctstate NEW", Jump: ChainProxyFirewall}},
	{"nat", "OUTPUT", Rule{Comment: "kubernetes service portals", Jump: ChainServices}},
	{"nat", "PREROUTING", Rule{Comment: "kubernetes service portals", Jump: ChainServices}},
	{"nat", "POSTROUTING", Rule{Comment: "kubernetes postrouting rules", Jump: ChainPostrouting}},
}

// Tables are the tables we write, in the order written.
var Tables = []string{"filter", "nat"}

// baseChains are the shared chains of each table, rewritten whenever their rules change.
var baseChains = map[string][]string{
	"filter": {ChainServices, ChainExternalServices, ChainForward, ChainNodePorts, ChainProxyFirewall},
	"nat":    {ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq},
}

// Ruleset is every chain we own, per table, with its rules in order.
type Ruleset map[string]map[string][]Rule

// Build assembles the shared chains from the fragments (in key order) and
// adds each fragment's own chains.
func Build(c Config, frags map[proxy.Key]*Fragment) Ruleset {
	rs := Ruleset{"filter": {}, "nat": {}}
	for t, chains := range baseChains {
		for _, ch := range chains {
			rs[t][ch] = nil
		}
	}
	nat, filter := rs["nat"], rs["filter"]
	nat[ChainPostrouting] = []Rule{
		{Matches: "-m mark ! --mark " + MasqMark + "/" + MasqMark, Jump: "RETURN"},
		{Jump: "MARK --xor-mark " + MasqMark},
		{Comment: "kubernetes service traffic requiring SNAT", Jump: "MASQUERADE --random-fully"},
	}
	nat[ChainMarkMasq] = []Rule{{Jump: "MARK --or-mark " + MasqMark}}
	for _, k := range sortedKeys(frags) {
		f := frags[k]
		for ch, rules := range f.Filter {
			filter[ch] = append(filter[ch], rules...)
		}
		for _, ch := range []string{ChainServices, ChainNodePorts} {
			nat[ch] = append(nat[ch], f.NAT[ch]...)
		}
		for _, ch := range f.Own {
			nat[ch] = f.NAT[ch]
		}
	}
	nat[ChainServices] = append(nat[ChainServices], Rule{NotDst: true, Dst: "127.0.0.0/8",
		Comment: "kubernetes service nodeports; NOTE: this must be the last rule in this chain", Matches: "-m addrtype --dst-type LOCAL", Jump: ChainNodePorts})
	// The guard that makes route_localnet on the pod bridge safe (kube-proxy's
	// and the kubelet's KUBE-FIREWALL rule): only DNATed connections reach
	// 127.0.0.0/8 from elsewhere.
	filter[ChainProxyFirewall] = append(filter[ChainProxyFirewall], Rule{NotSrc: true, Src: "127.0.0.0/8", Dst: "127.0.0.0/8",
		Comment: "block incoming localnet connections", Matches: "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT", Jump: "DROP"})
	filter[ChainForward] = []Rule{
		{Matches: "-m conntrack --ctstate INVALID", Jump: "DROP"},
		{Comment: "kubernetes forwarding rules", Matches: "-m mark --mark " + MasqMark + "/" + MasqMark, Jump: "ACCEPT"},
		{Comment: "kubernetes forwarding conntrack rule", Matches: "-m conntrack --ctstate RELATED,ESTABLISHED", Jump: "ACCEPT"},
	}
	return rs
}

// quote prints a comment as iptables-save does: bare when it is only
// letters, digits, '_' and '-', else in double quotes.
func quote(s string) string {
	if s != "" && strings.Trim(s, "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ProbabilityKubeProxy is the probability text kube-proxy writes for 1/n.
func ProbabilityKubeProxy(n int) string { return fmt.Sprintf("%0.10f", 1.0/float64(n)) }

// ProbabilitySaved is how iptables-save prints it: the kernel keeps
// round(p * 2^31) and the tool prints that over 2^31 with 11 digits.
func ProbabilitySaved(n int) string {
	var p float64
	fmt.Sscanf(ProbabilityKubeProxy(n), "%g", &p)
	v := uint32(p*0x80000000 + 0.5)
	return fmt.Sprintf("%.11f", float64(v)/0x80000000)
}

// text prints a rule in chain; saved picks iptables-save's probability and
// target spelling, else what kube-proxy writes into iptables-restore.
func (r Rule) text(chain string, saved bool) string {
	var b strings.Builder
	b.WriteString("-A " + chain)
	if r.Src != "" {
		if r.NotSrc {
			b.WriteString(" !")
		}
		b.WriteString(" -s " + r.Src)
	}
	if r.Dst != "" {
		if r.NotDst {
			b.WriteString(" !")
		}
		b.WriteString(" -d " + r.Dst)
	}
	if r.Proto != "" {
		b.WriteString(" -p " + r.Proto)
	}
	if r.Comment != "" {
		b.WriteString(" -m comment --comment " + quote(r.Comment))
	}
	if r.Prob > 0 {
		p := ProbabilityKubeProxy(r.Prob)
		if saved {
			p = ProbabilitySaved(r.Prob)
		}
		b.WriteString(" -m statistic --mode random --probability " + p)
	}
	if r.Matches != "" {
		b.WriteString(" " + r.Matches)
	}
	if r.Jump != "" {
		j := r.Jump
		if saved {
			j = savedTarget(j)
		}
		b.WriteString(" -j " + j)
	}
	return b.String()
}

// savedTarget spells MARK targets as iptables-save does.
func savedTarget(j string) string {
	switch {
	case strings.HasPrefix(j, "MARK --or-mark "):
		m := strings.TrimPrefix(j, "MARK --or-mark ")
		return "MARK --set-xmark " + m + "/" + m
	case strings.HasPrefix(j, "MARK --xor-mark "):
		return "MARK --set-xmark " + strings.TrimPrefix(j, "MARK --xor-mark ") + "/0x0"
	}
	return j
}

// Save prints the ruleset as iptables-save prints it (chains sorted, the
// built-in chains with only our jumps): the golden files, and what Trace reads.
func (rs Ruleset) Save() string {
	var b strings.Builder
	for _, t := range Tables {
		fmt.Fprintf(&b, "*%s\n", t)
		builtin := map[string][]string{}
		var order []string
		for i := len(Jumps) - 1; i >= 0; i-- { // each inserted first: the last listed ends up first
			j := Jumps[i]
			if j.Table != t {
				continue
			}
			if _, ok := builtin[j.From]; !ok {
				order = append(order, j.From)
			}
			builtin[j.From] = append(builtin[j.From], j.Rule.text(j.From, true))
		}
		sort.Strings(order)
		for _, ch := range order {
			fmt.Fprintf(&b, ":%s ACCEPT [0:0]\n", ch)
		}
		names := rs.chains(t)
		for _, ch := range names {
			fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
		}
		for _, ch := range order {
			for _, l := range builtin[ch] {
				b.WriteString(l + "\n")
			}
		}
		for _, ch := range names {
			for _, r := range rs[t][ch] {
				b.WriteString(r.text(ch, true) + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

func (rs Ruleset) chains(t string) []string {
	names := make([]string, 0, len(rs[t]))
	for ch := range rs[t] {
		names = append(names, ch)
	}
	sort.Strings(names)
	return names
}
