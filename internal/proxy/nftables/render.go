package nftables

import (
	"fmt"
	"sort"
	"strings"

	"github.com/svcnet/svcnet/internal/proxy"
)

// The base chains are fixed: hooks jump into the service lookups.
//
//	prerouting (dstnat) ─┐
//	                     ├─ services: ip daddr . proto . port vmap @service-ips
//	output (-100) ───────┘            local daddr: proto . port vmap @service-nodeports
//	prerouting/output filter (-90, new connections) ─ service-checks:
//	      no endpoints: vmap @no-endpoint-services / @no-endpoint-nodeports (reject | drop)
//	      unallocated cluster IP in the service CIDR: reject
//	postrouting (srcnat) ─ masquerading: packets marked 0x4000 are masqueraded
func baseText(c Config) string {
	var b strings.Builder
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
		type filter hook prerouting priority -90; policy accept;
		ct state new jump service-checks
	}

	chain filter-output {
		type filter hook output priority -90; policy accept;
		ct state new jump service-checks
	}

	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport vmap @service-nodeports
	}

	chain service-checks {
		ip daddr . meta l4proto . th dport vmap @no-endpoint-services
		ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports
`)
	if c.ServiceCIDR.IsValid() {
		fmt.Fprintf(&b, "\t\tip daddr %s ip daddr != @cluster-ips goto reject-chain comment \"unallocated cluster IP\"\n", c.ServiceCIDR)
	}
	b.WriteString(`	}

	chain masquerading {
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
	}

	chain reject-chain {
		meta l4proto tcp reject with tcp reset
		reject
	}
`)
	return b.String()
}

// Render prints the table as `nft list table ip svcnet` would (sorted, so two
// equal states give equal text): the golden files and `svcnet explain` use it.
func Render(c Config, frags map[proxy.Key]*Fragment) string {
	keys := make([]proxy.Key, 0, len(frags))
	for k := range frags {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", Table)
	ipMap := func(name string, get func(*Fragment) map[IPProtoPort]Verdict) {
		fmt.Fprintf(&b, "\tmap %s {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n", name)
		var lines []string
		for _, k := range keys {
			m := get(frags[k])
			for _, e := range sortedKeys(m, lessIPP) {
				lines = append(lines, fmt.Sprintf("%s . %s . %d : %s", e.IP, strings.ToLower(string(e.Proto)), e.Port, m[e]))
			}
		}
		writeElems(&b, lines)
		b.WriteString("\t}\n\n")
	}
	portMap := func(name string, get func(*Fragment) map[ProtoPort]Verdict) {
		fmt.Fprintf(&b, "\tmap %s {\n\t\ttype inet_proto . inet_service : verdict\n", name)
		var lines []string
		for _, k := range keys {
			m := get(frags[k])
			for _, e := range sortedKeys(m, lessPP) {
				lines = append(lines, fmt.Sprintf("%s . %d : %s", strings.ToLower(string(e.Proto)), e.Port, m[e]))
			}
		}
		writeElems(&b, lines)
		b.WriteString("\t}\n\n")
	}
	ipMap(MapServiceIPs, func(f *Fragment) map[IPProtoPort]Verdict { return f.ServiceIPs })
	portMap(MapServiceNodePorts, func(f *Fragment) map[ProtoPort]Verdict { return f.NodePorts })
	ipMap(MapNoEndpointServices, func(f *Fragment) map[IPProtoPort]Verdict { return f.NoEndpoints })
	portMap(MapNoEndpointNodePorts, func(f *Fragment) map[ProtoPort]Verdict { return f.NoEndpointNodePorts })
	var lines []string
	fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr\n", SetClusterIPs)
	for _, k := range keys {
		for _, ip := range frags[k].ClusterIPs {
			lines = append(lines, ip.String())
		}
	}
	sort.Strings(lines)
	writeElems(&b, lines)
	b.WriteString("\t}\n\n")
	for _, k := range keys {
		for _, s := range frags[k].Affinity {
			fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout %ds\n\t}\n\n", s.Name, s.Timeout)
		}
	}
	b.WriteString(baseText(c))
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
	if r.SaddrNotIn.IsValid() {
		parts = append(parts, "ip saddr != "+r.SaddrNotIn.String())
	}
	if r.SaddrInSet != "" {
		parts = append(parts, "ip saddr @"+r.SaddrInSet)
	}
	if r.Mark {
		parts = append(parts, "meta mark set meta mark | 0x00004000")
	}
	if r.Update != "" {
		parts = append(parts, "update @"+r.Update+" { ip saddr }")
	}
	switch {
	case r.Goto != "":
		if r.Random > 1 {
			parts = append(parts, fmt.Sprintf("numgen random mod %d 0", r.Random))
		}
		parts = append(parts, "goto "+r.Goto)
	case r.DNAT.IsValid():
		parts = append(parts, fmt.Sprintf("meta l4proto %s dnat ip to %s", strings.ToLower(string(r.Proto)), r.DNAT))
	case r.Drop:
		parts = append(parts, "drop")
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}
