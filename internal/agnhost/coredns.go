package agnhost

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// The agnhost image ships CoreDNS as /coredns; Kubernetes' DNS e2e tests run it
// as a test DNS server with a Corefile of one server block that holds a hosts
// plugin (and log). HostsServer is that much of CoreDNS: the hosts entries
// answer A, AAAA and (their reverse names) PTR; every other name is NXDOMAIN,
// as CoreDNS's hosts plugin without fallthrough answers for its zone ".".

// hostsTTL is the TTL of hosts answers (CoreDNS hosts' default).
const hostsTTL = 3600

// Hosts is the parsed hosts block: names -> addresses and reverse names -> names.
type Hosts struct {
	addrs map[string][]netip.Addr
	names map[string][]string
}

// ParseCorefile reads the hosts entries ("IP NAME..." lines inside `hosts { }`)
// of a Corefile; other plugins are ignored.
func ParseCorefile(r io.Reader) (*Hosts, error) {
	h := &Hosts{addrs: map[string][]netip.Addr{}, names: map[string][]string{}}
	sc := bufio.NewScanner(r)
	in, line := false, 0
	for sc.Scan() {
		line++
		f := strings.Fields(strings.SplitN(sc.Text(), "#", 2)[0])
		switch {
		case len(f) == 0:
		case !in && f[0] == "hosts" && f[len(f)-1] == "{":
			in = true
		case in && f[0] == "}":
			in = false
		case in && len(f) >= 2:
			ip, err := netip.ParseAddr(f[0])
			if err != nil {
				return nil, fmt.Errorf("line %d of the Corefile: %q is not an IP address", line, f[0])
			}
			for _, n := range f[1:] {
				name := strings.ToLower(mdns.Fqdn(n))
				h.addrs[name] = append(h.addrs[name], ip)
				rev, _ := mdns.ReverseAddr(ip.String())
				h.names[rev] = append(h.names[rev], name)
			}
		case in:
			return nil, fmt.Errorf("line %d of the Corefile: want IP and names in hosts, got %q", line, sc.Text())
		}
	}
	return h, sc.Err()
}

// Answer answers req from the hosts entries.
func (h *Hosts) Answer(req *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = mdns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	hdr := func(t uint16) mdns.RR_Header {
		return mdns.RR_Header{Name: q.Name, Rrtype: t, Class: mdns.ClassINET, Ttl: hostsTTL}
	}
	addrs, names := h.addrs[name], h.names[name]
	if len(addrs) == 0 && len(names) == 0 {
		m.Rcode = mdns.RcodeNameError
		return m
	}
	for _, a := range addrs {
		switch {
		case a.Is4() && q.Qtype == mdns.TypeA:
			m.Answer = append(m.Answer, &mdns.A{Hdr: hdr(mdns.TypeA), A: net.IP(a.AsSlice())})
		case a.Is6() && q.Qtype == mdns.TypeAAAA:
			m.Answer = append(m.Answer, &mdns.AAAA{Hdr: hdr(mdns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
		}
	}
	if q.Qtype == mdns.TypePTR {
		for _, n := range names {
			m.Answer = append(m.Answer, &mdns.PTR{Hdr: hdr(mdns.TypePTR), Ptr: n})
		}
	}
	return m
}

// ServeHosts answers DNS on addr (UDP and TCP) from h until ctx ends, logging
// each query to log when it is not nil (the Corefile's log plugin).
func ServeHosts(ctx context.Context, addr string, h *Hosts, log io.Writer) error {
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := h.Answer(r)
		if log != nil && len(r.Question) == 1 {
			fmt.Fprintf(log, "[INFO] %s - %s %s %s\n", w.RemoteAddr(), mdns.TypeToString[r.Question[0].Qtype], r.Question[0].Name, mdns.RcodeToString[m.Rcode])
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return err
	}
	udp, tcp := &mdns.Server{PacketConn: pc, Handler: handler}, &mdns.Server{Listener: l, Handler: handler}
	errs := make(chan error, 2)
	go func() { errs <- udp.ActivateAndServe() }()
	go func() { errs <- tcp.ActivateAndServe() }()
	fmt.Printf(".:%s\nCoreDNS-compatible hosts server (svcnet agnhost)\n", portOf(addr))
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errs:
	}
	_ = udp.Shutdown()
	_ = tcp.Shutdown()
	return err
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
