package netpol

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// Rules are what one node enforces, as set elements: the isolated local pods
// per direction and, for each, the peers (address ranges) and ports it may
// talk to. Elements of one set never overlap (the kernel refuses overlapping
// intervals in a concatenated set).
type Rules struct {
	IngressIsolated, EgressIsolated []netip.Addr
	Ingress, Egress                 []Elem
}

// Elem allows traffic between local pod Local and the addresses Peer, on
// protocol Proto and ports Ports (Proto 0: every protocol and port).
type Elem struct {
	Local netip.Addr
	Peer  Range
	Proto uint8
	Ports PortRange
}

// Range is an inclusive IPv4 address range.
type Range struct{ From, To netip.Addr }

// PortRange is an inclusive port range.
type PortRange struct{ From, To uint16 }

// span is a Range as numbers, for arithmetic.
type span struct{ lo, hi uint32 }

func u(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func prefixSpan(p netip.Prefix) span {
	lo := u(p.Masked().Addr())
	return span{lo, lo | (^uint32(0) >> p.Bits())}
}

// merge sorts spans and joins overlapping ones. Adjacent ones stay apart:
// single addresses (pods) go to hash sets, cheaper to change than ranges.
func merge(in []span) []span {
	slices.SortFunc(in, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	var out []span
	for _, s := range in {
		if n := len(out); n > 0 && s.lo <= out[n-1].hi {
			out[n-1].hi = max(out[n-1].hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// spans is the block as disjoint address ranges (CIDR minus except).
func (b *Block) spans() []span {
	if !b.CIDR.Addr().Is4() {
		return nil
	}
	out := []span{prefixSpan(b.CIDR)}
	for _, e := range b.Except {
		if !e.Addr().Is4() {
			continue
		}
		x := prefixSpan(e)
		var next []span
		for _, s := range out {
			if x.hi < s.lo || x.lo > s.hi {
				next = append(next, s)
				continue
			}
			if x.lo > s.lo {
				next = append(next, span{s.lo, x.lo - 1})
			}
			if x.hi < s.hi {
				next = append(next, span{x.hi + 1, s.hi})
			}
		}
		out = next
	}
	return out
}

func protoNum(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolUDP:
		return unix.IPPROTO_UDP
	case corev1.ProtocolSCTP:
		return unix.IPPROTO_SCTP
	}
	return unix.IPPROTO_TCP
}

// rect is peers x ports of one protocol, before they are made disjoint.
type rect struct {
	peer  span
	ports PortRange
}

// side collects one local pod's allowances in one direction.
type side struct {
	any   []span
	ports map[uint8][]rect
}

// Compile computes the rules of node: only its pods are checked there
// (egress on the source's node, ingress on the destination's).
func Compile(s *State, node string) Rules {
	var r Rules
	peers := map[ruleKey][]peer{} // a rule's peers are the same for every pod it applies to
	for _, pod := range s.Pods {
		if pod.Node != node {
			continue
		}
		for _, ingress := range []bool{true, false} {
			pols := s.selecting(pod, ingress)
			if len(pols) == 0 {
				continue
			}
			ip := u(pod.IP)
			sd := side{ports: map[uint8][]rect{}, any: []span{{ip, ip}}} // the pod itself, through a Service (hairpin)
			for _, p := range pols {
				rules := p.EgressRules
				if ingress {
					rules = p.IngressRules
				}
				for i := range rules {
					key := ruleKey{p, ingress, i}
					if _, ok := peers[key]; !ok {
						peers[key] = s.rulePeers(p, rules[i])
					}
					s.addRule(&sd, rules[i], peers[key], pod, ingress)
				}
			}
			if ingress {
				r.IngressIsolated = append(r.IngressIsolated, pod.IP)
				r.Ingress = append(r.Ingress, sd.elems(pod.IP)...)
			} else {
				r.EgressIsolated = append(r.EgressIsolated, pod.IP)
				r.Egress = append(r.Egress, sd.elems(pod.IP)...)
			}
		}
	}
	return r
}

type ruleKey struct {
	p       *Policy
	ingress bool
	i       int
}

// peer is an address range a rule names, with the pod behind a /32 (nil
// for ipBlocks and "everyone").
type peer struct {
	span span
	pod  *Pod
}

// rulePeers lists the peers one rule of p names.
func (s *State) rulePeers(p *Policy, rule Rule) []peer {
	var peers []peer
	if len(rule.Peers) == 0 {
		peers = append(peers, peer{span: span{0, ^uint32(0)}})
	}
	for _, pe := range rule.Peers {
		if pe.Block != nil {
			for _, sp := range pe.Block.spans() {
				peers = append(peers, peer{span: sp})
			}
			continue
		}
		for _, other := range s.Pods {
			if s.peerPod(pe, p.Namespace, other) {
				peers = append(peers, peer{span{u(other.IP), u(other.IP)}, other})
			}
		}
	}
	return peers
}

// addRule adds what one rule allows pod (the policy's subject).
func (s *State) addRule(sd *side, rule Rule, peers []peer, pod *Pod, ingress bool) {
	if len(rule.Ports) == 0 {
		for _, pe := range peers {
			sd.any = append(sd.any, pe.span)
		}
		return
	}
	for _, ps := range rule.Ports {
		proto := protoNum(ps.Protocol)
		if ps.Name == "" || ingress {
			from, to, ok := ps.resolve(pod) // ingress: named ports are the local pod's
			if !ok {
				continue
			}
			for _, pe := range peers {
				sd.ports[proto] = append(sd.ports[proto], rect{pe.span, PortRange{from, to}})
			}
			continue
		}
		// Egress to a named port: only destination pods that have it, each on its own number.
		for _, pe := range peers {
			for _, other := range s.podsIn(pe.span, pe.pod) {
				if n := other.port(ps.Name, ps.Protocol); n != 0 {
					ip := u(other.IP)
					sd.ports[proto] = append(sd.ports[proto], rect{span{ip, ip}, PortRange{n, n}})
				}
			}
		}
	}
}

// podsIn is the pod behind a peer, or the pods whose IPs fall in sp.
func (s *State) podsIn(sp span, pod *Pod) []*Pod {
	if pod != nil {
		return []*Pod{pod}
	}
	var out []*Pod
	for _, p := range s.Pods {
		if ip := u(p.IP); ip >= sp.lo && ip <= sp.hi {
			out = append(out, p)
		}
	}
	return out
}

// elems makes the side's allowances disjoint set elements: the port axis is
// cut at every range boundary, the peers of each piece merged, and pieces
// next to each other with the same peers joined again.
func (sd *side) elems(local netip.Addr) []Elem {
	var out []Elem
	for _, sp := range merge(sd.any) {
		out = append(out, Elem{Local: local, Peer: Range{addr(sp.lo), addr(sp.hi)}})
	}
	protos := make([]uint8, 0, len(sd.ports))
	for p := range sd.ports {
		protos = append(protos, p)
	}
	slices.Sort(protos)
	for _, proto := range protos {
		rects := sd.ports[proto]
		var cuts []uint32 // piece starts
		for _, r := range rects {
			cuts = append(cuts, uint32(r.ports.From), uint32(r.ports.To)+1)
		}
		slices.Sort(cuts)
		cuts = slices.Compact(cuts)
		type piece struct {
			ports PortRange
			peers []span
		}
		var pieces []piece
		for i := 0; i+1 < len(cuts); i++ {
			lo, hi := cuts[i], cuts[i+1]-1
			var peers []span
			for _, r := range rects {
				if uint32(r.ports.From) <= lo && uint32(r.ports.To) >= hi {
					peers = append(peers, r.peer)
				}
			}
			if len(peers) == 0 {
				continue
			}
			peers = merge(peers)
			if n := len(pieces); n > 0 && uint32(pieces[n-1].ports.To)+1 == lo && slices.Equal(pieces[n-1].peers, peers) {
				pieces[n-1].ports.To = uint16(hi)
				continue
			}
			pieces = append(pieces, piece{PortRange{uint16(lo), uint16(hi)}, peers})
		}
		for _, pc := range pieces {
			for _, sp := range pc.peers {
				out = append(out, Elem{Local: local, Peer: Range{addr(sp.lo), addr(sp.hi)}, Proto: proto, Ports: pc.ports})
			}
		}
	}
	return out
}
