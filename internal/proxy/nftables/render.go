package nftables

import (
	"fmt"
	"sort"
	"strings"

	"github.com/svcnet/svcnet/internal/proxy"
)

// The base chains are fixed: hooks jump into the service lookups (see README.md).
func baseText(c Config, picks, nodePicks []string) string {
	var b strings.Builder
	if len(c.Local) > 0 {
		b.WriteString(`	chain raw-prerouting {
		type filter hook prerouting priority raw; policy accept;
		ip daddr . meta l4proto . th dport @local-listeners notrack
	}

	chain raw-output {
		type filter hook output priority raw; policy accept;
		ip daddr . meta l4proto . th dport @local-listeners notrack
		ip saddr . meta l4proto . th sport @local-listeners notrack
	}

`)
	}
	b.WriteString(`	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}

	chain filter-prerouting {
		type filter hook prerouting priority dstnat + 10; policy accept;
		iifname != "lo" ip daddr 127.0.0.0/8 ct status ! dnat drop
		ct state new jump service-checks
	}

	chain filter-output {
		type filter hook output priority -90; policy accept;
		ct state new jump service-checks
	}

	chain services {
`)
	if c.ClusterCIDR.IsValid() {
		fmt.Fprintf(&b, "\t\tip saddr != %s ip daddr . meta l4proto . th dport @masq-from-outside meta mark set meta mark | 0x00004000\n", c.ClusterCIDR)
	}
	b.WriteString(`		ip daddr . meta l4proto . th dport @masq-ips meta mark set meta mark | 0x00004000
		ip daddr . meta l4proto . th dport vmap @service-ips
		jump service-picks
		ip daddr != 127.0.0.0/8 fib daddr type local jump nodeports
	}

	chain service-picks {
`)
	for _, r := range picks {
		b.WriteString("\t\t" + r + "\n")
	}
	b.WriteString(`	}

	chain nodeports {
		meta l4proto . th dport @masq-nodeports meta mark set meta mark | 0x00004000
		meta l4proto . th dport vmap @service-nodeports
		jump nodeport-picks
	}

	chain nodeport-picks {
`)
	for _, r := range nodePicks {
		b.WriteString("\t\t" + r + "\n")
	}
	b.WriteString(`	}

	chain service-checks {
		ip daddr . meta l4proto . th dport @reject-ips goto reject-chain
		ip daddr . meta l4proto . th dport @drop-ips drop
		ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport @reject-nodeports goto reject-chain
		ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport @drop-nodeports drop
`)
	if c.ServiceCIDR.IsValid() {
		fmt.Fprintf(&b, "\t\tip daddr %s ip daddr != @cluster-ips goto reject-chain\n", c.ServiceCIDR)
	}
	b.WriteString(`	}

	chain masquerading {
		ct status dnat ip saddr . ip daddr @hairpin masquerade
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade
	}

	chain reject-chain {
		reject with tcp reset
		reject
	}
`)
	return b.String()
}

// setType is how nft prints a set's type line.
func setType(name string) string {
	s := setDef(nil, name)
	if s.IsMap {
		return "type " + s.KeyType.Name + " : " + s.DataType.Name
	}
	return "type " + s.KeyType.Name
}

// SlotRuleText is the rule that picks from a slot map.
func SlotRuleText(c Config, name string) string {
	ip, n, _ := slotsOf(name)
	gen := "random"
	if c.RoundRobin {
		gen = "inc"
	}
	key := "meta l4proto . th dport"
	if ip {
		key = "ip daddr . " + key
	}
	return fmt.Sprintf("dnat ip to %s . numgen %s mod %d map @%s", key, gen, n, name)
}

// Render prints the table as `nft list table ip svcnet` would (sorted, so two
// equal states give equal text): the golden files use it.
func Render(c Config, frags map[proxy.Key]*Fragment) string {
	keys := make([]proxy.Key, 0, len(frags))
	for k := range frags {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	bySet := map[string]map[string]bool{}
	for _, k := range keys {
		for _, e := range frags[k].elements() {
			if bySet[e.set] == nil {
				bySet[e.set] = map[string]bool{}
			}
			bySet[e.set][e.text()] = true
		}
	}
	var slots []string
	for name := range bySet {
		if _, _, ok := slotsOf(name); ok {
			slots = append(slots, name)
		}
	}
	sortSlots(slots)
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", Table)
	var picks, nodePicks []string
	bySet[SetLocal] = map[string]bool{}
	for _, e := range localElements(c) {
		bySet[SetLocal][e.text()] = true
	}
	names := append([]string{}, staticSets...)
	if len(c.Local) > 0 {
		names = append(names, SetLocal)
	}
	for _, name := range append(names, slots...) {
		kind := "set"
		if strings.Contains(setType(name), " : ") {
			kind = "map"
		}
		fmt.Fprintf(&b, "\t%s %s {\n\t\t%s\n", kind, name, setType(name))
		lines := make([]string, 0, len(bySet[name]))
		for text := range bySet[name] {
			lines = append(lines, text)
		}
		sort.Strings(lines)
		writeElems(&b, lines)
		b.WriteString("\t}\n\n")
		if ip, _, ok := slotsOf(name); ok && ip {
			picks = append(picks, SlotRuleText(c, name))
		} else if ok {
			nodePicks = append(nodePicks, SlotRuleText(c, name))
		}
	}
	for _, k := range keys {
		for _, s := range frags[k].Affinity {
			fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr\n\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout %s\n\t}\n\n", s.Name, nftDuration(s.Timeout))
		}
	}
	b.WriteString(baseText(c, picks, nodePicks))
	for _, k := range keys {
		for _, ch := range frags[k].Chains {
			fmt.Fprintf(&b, "\n\tchain %s {\n", ch.Name)
			for _, r := range ch.Rules {
				fmt.Fprintf(&b, "\t\t%s\n", RuleText(r))
			}
			b.WriteString("\t}\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// nftDuration prints seconds the way nft does: 3h, 1m40s, 1d.
func nftDuration(sec uint32) string {
	var b strings.Builder
	for _, u := range []struct {
		n    uint32
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if sec >= u.n {
			fmt.Fprintf(&b, "%d%s", sec/u.n, u.unit)
			sec %= u.n
		}
	}
	return b.String()
}

func writeElems(b *strings.Builder, lines []string) {
	if len(lines) == 0 {
		return
	}
	b.WriteString("\t\telements = { ")
	b.WriteString(strings.Join(lines, ",\n\t\t\t     "))
	b.WriteString(" }\n")
}

// RuleText prints one rule in nft syntax.
func RuleText(r Rule) string {
	var parts []string
	if r.SaddrIn.IsValid() {
		if r.SaddrIn.Bits() == 32 {
			parts = append(parts, "ip saddr "+r.SaddrIn.Addr().String())
		} else {
			parts = append(parts, "ip saddr "+r.SaddrIn.String())
		}
	}
	if r.SaddrInSet != "" {
		parts = append(parts, "ip saddr @"+r.SaddrInSet)
	}
	if r.Update != "" {
		parts = append(parts, "update @"+r.Update+" { ip saddr }")
	}
	switch {
	case r.Goto != "":
		if r.Random > 1 {
			gen := "random"
			if r.RoundRobin {
				gen = "inc"
			}
			parts = append(parts, fmt.Sprintf("numgen %s mod %d 0", gen, r.Random))
		}
		parts = append(parts, "goto "+r.Goto)
	case r.Return:
		parts = append(parts, "return")
	case r.DNAT.IsValid():
		parts = append(parts, fmt.Sprintf("meta l4proto %s dnat to %s", strings.ToLower(string(r.Proto)), r.DNAT))
	case r.Drop:
		parts = append(parts, "drop")
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}
