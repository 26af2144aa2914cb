package dns

import (
	"context"
	"net/netip"
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// Autopath cuts the ndots:5 search-path amplification of pods. A pod in namespace
// ns resolving "web.other" first asks "web.other.<ns>.svc.<zone>": when that name
// does not exist, the server walks the rest of the pod's search path itself
// (<name>.svc.<zone>, <name>.<zone>, then <name> upstream) and answers the first
// hit with a CNAME from the asked name, saving the pod up to three round trips.
// It needs to know each pod's namespace by IP (PodIPs).

// PodIPs maps pod IPs to namespaces.
type PodIPs struct {
	mu   sync.RWMutex
	byIP map[netip.Addr]string
	keys map[string]netip.Addr // pod key -> IP, to remove stale entries
}

// Set records that pod key (ns/name) has ip.
func (p *PodIPs) Set(key, ns string, ip netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byIP == nil {
		p.byIP, p.keys = map[netip.Addr]string{}, map[string]netip.Addr{}
	}
	if old, ok := p.keys[key]; ok && old != ip {
		delete(p.byIP, old)
	}
	p.byIP[ip], p.keys[key] = ns, ip
}

// Delete forgets pod key.
func (p *PodIPs) Delete(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ip, ok := p.keys[key]; ok {
		delete(p.byIP, ip)
		delete(p.keys, key)
	}
}

// Namespace returns the namespace of the pod with ip.
func (p *PodIPs) Namespace(ip netip.Addr) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ns, ok := p.byIP[ip]
	return ns, ok
}

// autopath answers req for a client pod in namespace ns, or returns nil when the
// question is not the first search-path expansion or nothing in the path exists.
func (s *Server) autopath(ctx context.Context, req *mdns.Msg, ns string, tcp bool) *mdns.Msg {
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	first := "." + ns + ".svc." + s.Index.Zone()
	base, ok := strings.CutSuffix(name, first)
	if !ok || base == "" {
		return nil
	}
	for _, cand := range []string{base + ".svc." + s.Index.Zone(), base + "." + s.Index.Zone(), base + "."} {
		sub := new(mdns.Msg)
		sub.SetQuestion(cand, q.Qtype)
		sub.RecursionDesired = true
		var m *mdns.Msg
		if res := s.Index.Answer(sub, s.Pods); res.Ours {
			m = res.Msg
		} else if s.Forwarder != nil {
			up, err := s.Forwarder.Forward(ctx, sub, tcp)
			if err != nil {
				continue
			}
			m = up
		}
		if m == nil || m.Rcode == mdns.RcodeNameError || m.Rcode == mdns.RcodeServerFailure {
			continue
		}
		out := new(mdns.Msg)
		out.SetReply(req)
		out.RecursionAvailable = true
		out.Rcode = m.Rcode
		out.Answer = append([]mdns.RR{&mdns.CNAME{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeCNAME,
			Class: mdns.ClassINET, Ttl: s.Index.ttl}, Target: cand}}, m.Answer...)
		out.Ns, out.Extra = m.Ns, m.Extra
		return out
	}
	return nil
}
