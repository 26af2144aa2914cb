package explain

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/netpol"
	"github.com/svcnet/svcnet/internal/proxy"
)

// policy adds the NetworkPolicy verdict (internal/netpol's Decide, the rules
// the nodes program) for the flow to each endpoint, or to ip:port when the
// request is not translated. The source is the one trace used.
func (ex *Explanation) policy(in Input, sp *proxy.ServicePort, src, ip netip.Addr, port int) {
	if in.Policies == nil || !src.IsValid() {
		return
	}
	proto := corev1.ProtocolTCP
	if sp != nil {
		proto = sp.Protocol
	}
	decide := func(dst netip.Addr, dport int) netpol.Verdict {
		return netpol.Decide(in.Policies, netpol.Flow{Src: src, Dst: dst, Protocol: proto, Port: uint16(dport)})
	}
	dropped := 0
	for i, e := range ex.Endpoints {
		dst, dport := netip.Addr{}, port
		if ap, err := netip.ParseAddrPort(e.Address); err == nil {
			dst, dport = ap.Addr(), int(ap.Port())
		} else if a, err := netip.ParseAddr(e.Address); err == nil {
			dst = a
		}
		if !dst.IsValid() {
			continue
		}
		v := decide(dst, dport)
		ex.Endpoints[i].Policy = "policy: " + v.String()
		if !v.Allowed() {
			dropped++
		}
	}
	if len(ex.Endpoints) == 0 && ip.IsValid() && port != 0 {
		v := decide(ip, port)
		ex.Notes = append(ex.Notes, "policy: "+v.String())
		if !v.Allowed() {
			ex.Outcome = "dropped-by-policy"
		}
	}
	if dropped > 0 {
		ex.Notes = append(ex.Notes, "NetworkPolicy: the first packet to an endpoint marked dropped is discarded after DNAT (egress on the client's node, ingress on the endpoint's); the client sees a timeout")
		if dropped == len(ex.Endpoints) && strings.HasPrefix(ex.Outcome, "proxied") {
			ex.Outcome = "dropped-by-policy"
		}
	}
}
