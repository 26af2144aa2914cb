package netpol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// TableName is the nftables table (family ip) policies live in, apart from
// the service proxy's `ip svcnet`.
const TableName = "svcnet-policy"

// Set names: the isolated local pods per direction, and what each may reach.
// `-pairs` (every protocol and port) and `-flows` (one protocol and port) hold
// single peers in hash sets, O(1) to change; `-any` and `-ports` hold address
// and port ranges (ipBlocks, endPort, every port) in interval sets, whose
// kernel form (pipapo) is rebuilt on every change: kept for what needs ranges.
const (
	SetIngressIsolated = "ingress-isolated"
	SetEgressIsolated  = "egress-isolated"
	SetIngressPairs    = "ingress-pairs"
	SetIngressFlows    = "ingress-flows"
	SetIngressAny      = "ingress-any"
	SetIngressPorts    = "ingress-ports"
	SetEgressPairs     = "egress-pairs"
	SetEgressFlows     = "egress-flows"
	SetEgressAny       = "egress-any"
	SetEgressPorts     = "egress-ports"
)

// intervalSets are the sets with ranges.
var intervalSets = map[string]bool{SetIngressAny: true, SetIngressPorts: true, SetEgressAny: true, SetEgressPorts: true}

// field is one component of a set lookup key.
type field int

const (
	saddr field = iota
	daddr
	l4proto
	dport
)

var fieldText = map[field]string{saddr: "ip saddr", daddr: "ip daddr", l4proto: "meta l4proto", dport: "th dport"}

// rule is one rule of the fixed ruleset, described once: Render prints it,
// exprs builds its netlink form, and the tests' tracer evaluates it.
type rule struct {
	chain       string
	established bool    // ct state established,related
	key         []field // looked up in set (none: always matches)
	set         string
	verdict     string // accept, drop, return, or "jump CHAIN"
}

// The hooks: forward only, so it sees pod-to-pod traffic on the node (bridged
// packets pass the IPv4 hooks with bridge-nf-call-iptables) and across nodes,
// after the proxy's DNAT in prerouting: a Service's traffic is checked
// against its endpoint pod. The node's own traffic (output/input) is not
// policed, as Kubernetes lets a node reach its pods.
var ruleset = []rule{
	{chain: "forward", established: true, verdict: "accept"},
	{chain: "forward", key: []field{saddr}, set: SetEgressIsolated, verdict: "jump egress"},
	{chain: "forward", key: []field{daddr}, set: SetIngressIsolated, verdict: "jump ingress"},
	{chain: "egress", key: []field{saddr, daddr}, set: SetEgressPairs, verdict: "return"},
	{chain: "egress", key: []field{saddr, daddr, l4proto, dport}, set: SetEgressFlows, verdict: "return"},
	{chain: "egress", key: []field{saddr, daddr}, set: SetEgressAny, verdict: "return"},
	{chain: "egress", key: []field{saddr, daddr, l4proto, dport}, set: SetEgressPorts, verdict: "return"},
	{chain: "egress", verdict: "drop"},
	{chain: "ingress", key: []field{daddr, saddr}, set: SetIngressPairs, verdict: "accept"},
	{chain: "ingress", key: []field{daddr, saddr, l4proto, dport}, set: SetIngressFlows, verdict: "accept"},
	{chain: "ingress", key: []field{daddr, saddr}, set: SetIngressAny, verdict: "accept"},
	{chain: "ingress", key: []field{daddr, saddr, l4proto, dport}, set: SetIngressPorts, verdict: "accept"},
	{chain: "ingress", verdict: "drop"},
}

var chains = []string{"forward", "egress", "ingress"}

// setKeys are the key components of each set, in order.
var setKeys = map[string][]field{
	SetIngressIsolated: {daddr}, SetEgressIsolated: {saddr},
	SetIngressPairs: {daddr, saddr}, SetEgressPairs: {saddr, daddr},
	SetIngressFlows: {daddr, saddr, l4proto, dport}, SetEgressFlows: {saddr, daddr, l4proto, dport},
	SetIngressAny: {daddr, saddr}, SetEgressAny: {saddr, daddr},
	SetIngressPorts: {daddr, saddr, l4proto, dport}, SetEgressPorts: {saddr, daddr, l4proto, dport},
}

var setOrder = []string{SetIngressIsolated, SetEgressIsolated, SetIngressPairs, SetIngressFlows, SetIngressAny, SetIngressPorts,
	SetEgressPairs, SetEgressFlows, SetEgressAny, SetEgressPorts}

func (r rule) text() string {
	var parts []string
	if r.established {
		parts = append(parts, "ct state established,related")
	}
	if len(r.key) > 0 {
		var k []string
		for _, f := range r.key {
			k = append(k, fieldText[f])
		}
		parts = append(parts, strings.Join(k, " . ")+" @"+r.set)
	}
	if r.verdict == "drop" {
		parts = append(parts, "counter")
	}
	return strings.Join(append(parts, r.verdict), " ")
}

// element is one set element in the kernel's key form (End: the interval's last key).
type element struct {
	set      string
	key, end string // bytes, as strings so elements compare and hash
}

// elements lists the set elements of r.
func elements(r Rules) []element {
	var out []element
	for _, ip := range r.IngressIsolated {
		out = append(out, element{set: SetIngressIsolated, key: string(ip4(ip))})
	}
	for _, ip := range r.EgressIsolated {
		out = append(out, element{set: SetEgressIsolated, key: string(ip4(ip))})
	}
	// sets: pairs, flows, any, ports
	add := func(sets [4]string, es []Elem) {
		for _, e := range es {
			k := append(ip4(e.Local), ip4(e.Peer.From)...)
			end := append(ip4(e.Local), ip4(e.Peer.To)...)
			set, single := sets[0], e.Peer.From == e.Peer.To
			if e.Proto != 0 {
				set, single = sets[1], single && e.Ports.From == e.Ports.To
				k = append(append(k, e.Proto, 0, 0, 0), byte(e.Ports.From>>8), byte(e.Ports.From), 0, 0)
				end = append(append(end, e.Proto, 0, 0, 0), byte(e.Ports.To>>8), byte(e.Ports.To), 0, 0)
			}
			if single {
				out = append(out, element{set: set, key: string(k)})
				continue
			}
			if e.Proto == 0 {
				set = sets[2]
			} else {
				set = sets[3]
			}
			out = append(out, element{set: set, key: string(k), end: string(end)})
		}
	}
	add([4]string{SetIngressPairs, SetIngressFlows, SetIngressAny, SetIngressPorts}, r.Ingress)
	add([4]string{SetEgressPairs, SetEgressFlows, SetEgressAny, SetEgressPorts}, r.Egress)
	return out
}

func ip4(a netip.Addr) []byte { b := a.As4(); return b[:] }

// text prints an element in nft syntax (a component range as lo-hi).
func (e element) text() string {
	end := e.end
	if end == "" {
		end = e.key
	}
	var parts []string
	for i, f := range setKeys[e.set] {
		lo, hi := e.key[i*4:i*4+4], end[i*4:i*4+4]
		one := func(c string) string {
			switch f {
			case l4proto:
				return map[byte]string{6: "tcp", 17: "udp", 132: "sctp"}[c[0]]
			case dport:
				return fmt.Sprint(binary.BigEndian.Uint16([]byte(c[:2])))
			}
			return netip.AddrFrom4([4]byte([]byte(c))).String()
		}
		if lo == hi {
			parts = append(parts, one(lo))
		} else {
			parts = append(parts, one(lo)+"-"+one(hi))
		}
	}
	return strings.Join(parts, " . ")
}

// Render prints the table with r's elements as `nft list table` would (the
// golden file's form).
func Render(r Rules) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", TableName)
	byset := map[string][]string{}
	for _, e := range elements(r) {
		byset[e.set] = append(byset[e.set], e.text())
	}
	types := map[field]string{saddr: "ipv4_addr", daddr: "ipv4_addr", l4proto: "inet_proto", dport: "inet_service"}
	for _, s := range setOrder {
		var t []string
		for _, f := range setKeys[s] {
			t = append(t, types[f])
		}
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n", s, strings.Join(t, " . "))
		if intervalSets[s] {
			b.WriteString("\t\tflags interval\n")
		}
		if els := byset[s]; len(els) > 0 {
			slices.Sort(els)
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(els, ",\n\t\t\t     "))
		}
		b.WriteString("\t}\n")
	}
	for _, c := range chains {
		fmt.Fprintf(&b, "\n\tchain %s {\n", c)
		if c == "forward" {
			b.WriteString("\t\ttype filter hook forward priority filter; policy accept;\n")
		}
		for _, r := range ruleset {
			if r.chain == c {
				fmt.Fprintf(&b, "\t\t%s\n", r.text())
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// registers a concatenated key is loaded into, as nft uses them.
var registers = []uint32{1, 9, 10, 11}

func (f field) load(reg uint32) expr.Any {
	switch f {
	case saddr:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
	case daddr:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	case l4proto:
		return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// exprs is the rule's netlink form; sets maps names to the sets it looks up.
func (r rule) exprs(sets map[string]*nftables.Set) []expr.Any {
	var out []expr.Any
	if r.established {
		mask := make([]byte, 4)
		binary.NativeEndian.PutUint32(mask, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
		out = append(out, &expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	for i, f := range r.key {
		out = append(out, f.load(registers[i]))
	}
	if len(r.key) > 0 {
		s := sets[r.set]
		out = append(out, &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID})
	}
	switch v, chain, _ := strings.Cut(r.verdict, " "); v {
	case "accept":
		out = append(out, &expr.Verdict{Kind: expr.VerdictAccept})
	case "return":
		out = append(out, &expr.Verdict{Kind: expr.VerdictReturn})
	case "jump":
		out = append(out, &expr.Verdict{Kind: expr.VerdictJump, Chain: chain})
	default:
		out = append(out, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	return out
}

func setDef(t *nftables.Table, name string) *nftables.Set {
	types := map[field]nftables.SetDatatype{saddr: nftables.TypeIPAddr, daddr: nftables.TypeIPAddr,
		l4proto: nftables.TypeInetProto, dport: nftables.TypeInetService}
	keys := setKeys[name]
	s := &nftables.Set{Table: t, Name: name, KeyType: types[keys[0]]}
	if len(keys) > 1 {
		var ts []nftables.SetDatatype
		for _, f := range keys {
			ts = append(ts, types[f])
		}
		s.KeyType, s.Concatenation, s.Interval = nftables.MustConcatSetType(ts...), true, intervalSets[name]
	}
	return s
}
