package nftables

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// Netlink expressions of the rules. Concatenated keys live in consecutive
// 32-bit registers starting at register 1, as nft puts them.

// icmpPortUnreach is ICMP destination unreachable code 3: a TCP client sees
// "connection refused" at once.
const icmpPortUnreach = 3

// ipsDstNAT is conntrack's IPS_DST_NAT status bit: the destination was translated.
const ipsDstNAT = 1 << 5

const (
	reg1  = 1  // NFT_REG_1 (= 32-bit registers 8..11)
	reg32 = 9  // NFT_REG32_01: the second 4 bytes of a concatenation
	reg33 = 10 // NFT_REG32_02: the third
	reg34 = 11 // NFT_REG32_03: the fourth
)

func protoNum(p corev1.Protocol) byte {
	if p == corev1.ProtocolUDP {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// pad4 pads one component of a concatenated key to register size.
func pad4(b []byte) []byte {
	out := make([]byte, (len(b)+3)/4*4)
	copy(out, b)
	return out
}

func ipProtoPortKey(k IPProtoPort) []byte {
	ip := k.IP.As4()
	key := append([]byte{}, ip[:]...)
	key = append(key, pad4([]byte{protoNum(k.Proto)})...)
	return append(key, pad4(be16(k.Port))...)
}

func protoPortKey(k ProtoPort) []byte {
	return append(pad4([]byte{protoNum(k.Proto)}), pad4(be16(k.Port))...)
}

func loadSaddr() expr.Any {
	return &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

func loadDaddr() expr.Any {
	return &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

// prefixMatch matches the address in reg1 against p (eq or neq).
func prefixMatch(p netip.Prefix, op expr.CmpOp) []expr.Any {
	var out []expr.Any
	if p.Bits() < 32 {
		m := make([]byte, 4)
		binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-p.Bits()))
		out = append(out, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: m, Xor: make([]byte, 4)})
	}
	a := p.Masked().Addr().As4()
	return append(out, &expr.Cmp{Op: op, Register: reg1, Data: a[:]})
}

func markMasq() []expr.Any {
	mask := u32(^uint32(MasqMark))
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: u32(MasqMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

// lookupVmap looks up the key in reg1.. in a verdict map.
func lookupVmap(set *nftables.Set) expr.Any {
	return &expr.Lookup{SourceRegister: reg1, SetName: set.Name, SetID: set.ID, IsDestRegSet: true, DestRegister: 0}
}

// daddrProtoPort loads ip daddr . meta l4proto . th dport.
func daddrProtoPort() []expr.Any {
	return []expr.Any{loadDaddr(),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32},
		&expr.Payload{DestRegister: reg33, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
}

// saddrProtoSport loads ip saddr . meta l4proto . th sport.
func saddrProtoSport() []expr.Any {
	return []expr.Any{loadSaddr(),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32},
		&expr.Payload{DestRegister: reg33, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}}
}

// protoPort loads meta l4proto . th dport.
func protoPort() []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Payload{DestRegister: reg32, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
}

// localNodePort matches a local, non-loopback destination and loads proto . port.
func localNodePort() []expr.Any {
	out := []expr.Any{loadDaddr()}
	out = append(out, prefixMatch(netip.MustParsePrefix("127.0.0.0/8"), expr.CmpOpNeq)...)
	out = append(out,
		&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(unix.RTN_LOCAL)})
	return append(out, protoPort()...)
}

// ctDNAT matches connections whose destination was translated.
func ctDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(ipsDstNAT), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: u32(0)},
	}
}

// localnetGuard drops what arrives from another interface than lo for a
// loopback address, unless its connection was DNATed there (the kubelet's
// rule for CVE-2020-8558). With route_localnet on the pod bridge, pods then
// reach a Service's loopback endpoint and nothing else on 127.0.0.0/8.
func localnetGuard() []expr.Any {
	lo := make([]byte, unix.IFNAMSIZ)
	copy(lo, "lo")
	out := []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: lo}, loadDaddr()}
	out = append(out, prefixMatch(netip.MustParsePrefix("127.0.0.0/8"), expr.CmpOpEq)...)
	return append(out,
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(ipsDstNAT), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(0)},
		&expr.Verdict{Kind: expr.VerdictDrop})
}

func ctNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(expr.CtStateBitNEW), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: u32(0)},
	}
}

func comment(s string) []byte {
	if s == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, s)
}

// ruleExprs turns one rule of a Service chain into netlink expressions.
func ruleExprs(r Rule, sets map[string]*nftables.Set) []expr.Any {
	var out []expr.Any
	if r.SaddrIn.IsValid() {
		out = append(out, loadSaddr())
		out = append(out, prefixMatch(r.SaddrIn, expr.CmpOpEq)...)
	}
	if r.SaddrInSet != "" {
		out = append(out, loadSaddr(), lookup(sets[r.SaddrInSet]))
	}
	if r.Update != "" {
		s := sets[r.Update]
		out = append(out, loadSaddr(), &expr.Dynset{SrcRegKey: reg1, SetName: r.Update, SetID: setID(s), Operation: unix.NFT_DYNSET_OP_UPDATE})
	}
	switch {
	case r.Goto != "":
		if r.Random > 1 {
			out = append(out, numgen(reg1, r.Random, r.RoundRobin), &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(0)})
		}
		out = append(out, &expr.Verdict{Kind: expr.VerdictGoto, Chain: r.Goto})
	case r.Return:
		out = append(out, &expr.Verdict{Kind: expr.VerdictReturn})
	case r.DNAT.IsValid():
		a := r.DNAT.Addr().As4()
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{protoNum(r.Proto)}},
			&expr.Immediate{Register: reg1, Data: a[:]},
			&expr.Immediate{Register: 2, Data: be16(r.DNAT.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: 2, Specified: true})
	case r.Drop:
		out = append(out, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	return out
}

func numgen(reg uint32, mod int, roundRobin bool) expr.Any {
	t := uint32(unix.NFT_NG_RANDOM)
	if roundRobin {
		t = unix.NFT_NG_INCREMENTAL
	}
	return &expr.Numgen{Register: reg, Modulus: uint32(mod), Type: t}
}

func setID(s *nftables.Set) uint32 {
	if s == nil {
		return 0
	}
	return s.ID
}

// lookup matches the key in reg1.. against a set.
func lookup(s *nftables.Set) expr.Any {
	return &expr.Lookup{SourceRegister: reg1, SetName: s.Name, SetID: s.ID}
}

// slotRule picks one of n slots of a slot map and DNATs to what it holds:
// dnat ip to ip daddr . meta l4proto . th dport . numgen random mod n map @ip-endpoints-n
// (node ports: meta l4proto . th dport . numgen ...).
func slotRule(ip bool, n int, roundRobin bool, s *nftables.Set) []expr.Any {
	out, slot := daddrProtoPort(), uint32(reg34)
	if !ip {
		out, slot = protoPort(), reg33
	}
	return append(out, numgen(slot, n, roundRobin),
		&expr.Lookup{SourceRegister: reg1, SetName: s.Name, SetID: s.ID, IsDestRegSet: true, DestRegister: reg1},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegAddrMax: reg1,
			RegProtoMin: reg32, RegProtoMax: reg32, Specified: true})
}

// baseRules are the rules of the fixed chains (the slot rules come with their maps).
func baseRules(c Config, sets map[string]*nftables.Set) map[string][][]expr.Any {
	jump := func(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }
	gotoReject := &expr.Verdict{Kind: expr.VerdictGoto, Chain: ChainReject}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	cat := func(parts ...[]expr.Any) []expr.Any {
		var out []expr.Any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(e ...expr.Any) []expr.Any { return e }
	var services [][]expr.Any
	if c.ClusterCIDR.IsValid() {
		services = append(services, cat(one(loadSaddr()), prefixMatch(c.ClusterCIDR, expr.CmpOpNeq),
			daddrProtoPort(), one(lookup(sets[SetMasqFromOutside])), markMasq()))
	}
	services = append(services,
		cat(daddrProtoPort(), one(lookup(sets[SetMasqIPs])), markMasq()),
		append(daddrProtoPort(), lookupVmap(sets[MapServiceIPs])),
		one(jump("service-picks")),
		append(localNodePort(), jump("nodeports")))
	checks := [][]expr.Any{
		cat(daddrProtoPort(), one(lookup(sets[SetRejectIPs]), gotoReject)),
		cat(daddrProtoPort(), one(lookup(sets[SetDropIPs]), drop)),
		cat(localNodePort(), one(lookup(sets[SetRejectNodePorts]), gotoReject)),
		cat(localNodePort(), one(lookup(sets[SetDropNodePorts]), drop)),
	}
	if c.ServiceCIDR.IsValid() {
		checks = append(checks, cat(one(loadDaddr()), prefixMatch(c.ServiceCIDR, expr.CmpOpEq),
			one(loadDaddr(), &expr.Lookup{SourceRegister: reg1, SetName: SetClusterIPs, SetID: setID(sets[SetClusterIPs]), Invert: true}, gotoReject)))
	}
	rules := map[string][][]expr.Any{
		"nat-prerouting":    {{jump("services")}},
		"nat-output":        {{jump("services")}},
		"nat-postrouting":   {{jump("masquerading")}},
		"filter-prerouting": {localnetGuard(), append(ctNew(), jump("service-checks"))},
		"filter-output":     {append(ctNew(), jump("service-checks"))},
		"services":          services,
		"nodeports": {
			cat(protoPort(), one(lookup(sets[SetMasqNodePorts])), markMasq()),
			append(protoPort(), lookupVmap(sets[MapServiceNodePorts])),
			one(jump("nodeport-picks")),
		},
		"service-checks": checks,
		"masquerading": {
			cat(ctDNAT(), one(loadSaddr(), &expr.Payload{DestRegister: reg32, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				lookup(sets[SetHairpin]), &expr.Masq{})),
			{&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
				&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(MasqMark), Xor: u32(0)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(0)},
				&expr.Verdict{Kind: expr.VerdictReturn}},
			{&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
				&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(^uint32(0)), Xor: u32(MasqMark)},
				&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1}},
			// Not fully-random: the kernel keeps the client's source port when it
			// is free. Random ports land on ports the pod still holds in TIME_WAIT
			// from other flows, and such a SYN is lost (bench/datapath measured
			// 1 s stalls after a few thousand short connections from the node).
			{&expr.Masq{}},
		},
		ChainReject: { // TCP gets a reset (also where ICMP errors would not reach a local client), others ICMP port unreachable
			{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1}, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}},
			{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreach}},
		},
	}
	if len(c.Local) > 0 { // before conntrack: the node's listeners are neither NATed nor checked
		notrack := &expr.Notrack{}
		toLocal := append(daddrProtoPort(), lookup(sets[SetLocal]), notrack)
		rules["raw-prerouting"] = [][]expr.Any{toLocal}
		rules["raw-output"] = [][]expr.Any{toLocal, append(saddrProtoSport(), lookup(sets[SetLocal]), notrack)}
	}
	return rules
}

// baseChains are the chains hooked into netfilter and the fixed chains they
// jump to, in creation order (the raw chains only with local listeners).
func baseChains(c Config, t *nftables.Table) []*nftables.Chain {
	accept := nftables.ChainPolicyAccept
	prio := func(p int32) *nftables.ChainPriority { v := nftables.ChainPriority(p); return &v }
	chains := []*nftables.Chain{
		{Name: "services", Table: t}, {Name: "service-picks", Table: t}, {Name: "nodeports", Table: t}, {Name: "nodeport-picks", Table: t},
		{Name: "service-checks", Table: t}, {Name: "masquerading", Table: t}, {Name: ChainReject, Table: t},
		{Name: "nat-prerouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		{Name: "nat-output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: prio(-100), Policy: &accept},
		{Name: "nat-postrouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
		{Name: "filter-prerouting", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: prio(-90), Policy: &accept},
		{Name: "filter-output", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookOutput, Priority: prio(-90), Policy: &accept},
	}
	if len(c.Local) > 0 {
		chains = append(chains,
			&nftables.Chain{Name: "raw-prerouting", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &accept},
			&nftables.Chain{Name: "raw-output", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityRaw, Policy: &accept})
	}
	return chains
}
