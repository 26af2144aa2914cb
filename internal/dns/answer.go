package dns

import (
	"net"
	"strings"

	mdns "github.com/miekg/dns"
)

// PodMode says whether <a-b-c-d>.<ns>.pod.<zone> names are answered.
type PodMode int

// Pod record modes, as CoreDNS's `pods` option.
const (
	PodsDisabled PodMode = iota
	PodsInsecure         // any dashed IP in an existing namespace answers with that IP
)

// Result is the index's answer to one question.
type Result struct {
	Msg *mdns.Msg
	// Ours is false when the name is outside what the index answers (forward it).
	Ours bool
	// Chase is an out-of-zone CNAME target whose A/AAAA records should be
	// appended (ExternalName Services), with the question type.
	Chase string
}

// withName returns rr owned by name (copied only when the case differs).
func withName(rr mdns.RR, name string) mdns.RR {
	if rr.Header().Name == name {
		return rr
	}
	c := mdns.Copy(rr)
	c.Header().Name = name
	return c
}

func isReverse(name string) bool {
	return strings.HasSuffix(name, ".in-addr.arpa.") || strings.HasSuffix(name, ".ip6.arpa.")
}

// Answer answers req from the index. It does no I/O.
func (ix *Index) Answer(req *mdns.Msg, pods PodMode) Result {
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	inZone := name == ix.zone || strings.HasSuffix(name, "."+ix.zone)
	if !inZone && !isReverse(name) {
		return Result{}
	}
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	if !inZone {
		// Reverse names: answer only what the index knows, forward the rest.
		ix.mu.RLock()
		n := ix.names[name]
		var rrs []mdns.RR
		if n != nil {
			rrs = n.of(mdns.TypePTR)
		}
		ix.mu.RUnlock()
		if len(rrs) == 0 || (q.Qtype != mdns.TypePTR && q.Qtype != mdns.TypeANY) {
			return Result{}
		}
		for _, rr := range rrs {
			m.Answer = append(m.Answer, withName(rr, q.Name))
		}
		return Result{Msg: m, Ours: true}
	}
	if !ix.synced.Load() {
		m.Rcode = mdns.RcodeServerFailure
		return Result{Msg: m, Ours: true}
	}
	if q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR {
		m.Rcode = mdns.RcodeRefused
		return Result{Msg: m, Ours: true}
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	nxdomain := func() Result {
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{ix.soa()}
		return Result{Msg: m, Ours: true}
	}
	labels := mdns.SplitDomainName(strings.TrimSuffix(name, "."+ix.zone))
	// Names inside a namespace exist only while the namespace does.
	if name != ix.zone && len(labels) >= 2 {
		kind, ns := labels[len(labels)-1], labels[len(labels)-2]
		if (kind == "svc" || kind == "pod") && !ix.namespaces[ns] {
			return nxdomain()
		}
		if kind == "pod" && len(labels) == 3 {
			return ix.podAnswer(m, q, labels[0], pods)
		}
	}
	n := ix.names[name]
	if n == nil {
		return nxdomain()
	}
	var res Result
	res.Ours, res.Msg = true, m
	switch {
	case q.Qtype == mdns.TypeSOA && name == ix.zone:
		m.Answer = []mdns.RR{withName(ix.soa(), q.Name)}
		return res
	case len(n.of(mdns.TypeCNAME)) > 0 && q.Qtype != mdns.TypeCNAME:
		cname := n.of(mdns.TypeCNAME)[0].(*mdns.CNAME)
		m.Answer = []mdns.RR{withName(cname, q.Name)}
		if t := cname.Target; t != ix.zone && !strings.HasSuffix(t, "."+ix.zone) {
			res.Chase = t
		} else if tn := ix.names[t]; tn != nil {
			m.Answer = append(m.Answer, tn.of(q.Qtype)...)
		}
		return res
	}
	var rrs []mdns.RR
	if q.Qtype == mdns.TypeANY {
		for _, t := range []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeSRV, mdns.TypeTXT, mdns.TypeNS} {
			rrs = append(rrs, n.of(t)...)
		}
	} else {
		rrs = n.of(q.Qtype)
	}
	if len(rrs) == 0 {
		m.Ns = []mdns.RR{ix.soa()} // NODATA: the name exists, not with this type
		return res
	}
	for _, rr := range rrs {
		m.Answer = append(m.Answer, withName(rr, q.Name))
		if srv, ok := rr.(*mdns.SRV); ok {
			if tn := ix.names[srv.Target]; tn != nil {
				m.Extra = append(m.Extra, tn.of(mdns.TypeA)...)
				m.Extra = append(m.Extra, tn.of(mdns.TypeAAAA)...)
			}
		}
	}
	return res
}

// podAnswer serves <a-b-c-d>.<ns>.pod.<zone> in insecure mode.
func (ix *Index) podAnswer(m *mdns.Msg, q mdns.Question, label string, mode PodMode) Result {
	var ip net.IP
	if mode == PodsInsecure {
		if strings.Count(label, "-") == 3 {
			ip = net.ParseIP(strings.ReplaceAll(label, "-", ".")).To4()
		} else {
			ip = net.ParseIP(strings.ReplaceAll(label, "-", ":"))
		}
	}
	if ip == nil {
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{ix.soa()}
		return Result{Msg: m, Ours: true}
	}
	rr := ix.addressRR(q.Name, ip.String())
	if rr.Header().Rrtype == q.Qtype || q.Qtype == mdns.TypeANY {
		m.Answer = []mdns.RR{rr}
	} else {
		m.Ns = []mdns.RR{ix.soa()}
	}
	return Result{Msg: m, Ours: true}
}
