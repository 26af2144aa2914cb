package proxy

import "net/netip"

// Reporter learns which pod IPs are ready endpoints in the rules a backend
// holds (internal/drain's Paths): all of them after a full sync, the change
// after a partial one.
type Reporter interface {
	Replace(path string, ready map[netip.Addr]int)
	Update(path string, delta map[netip.Addr]int)
}

// NewProgrammed wraps be so that, after each successful Sync, r learns the
// ready endpoints of the rules now written (under path), and a terminating
// pod's runtime can tell when this node sends it no new connection. A failed
// sync reports nothing: the last report stays until the full sync after it.
// A backend that can verify its rules (Verify) still can through the wrapper.
func NewProgrammed(be Backend, path string, r Reporter) Backend {
	p := &Programmed{Backend: be, Path: path, Report: r}
	if v, ok := be.(verifier); ok {
		return &programmedVerifier{p, v}
	}
	return p
}

// verifier is the proxier's Verifier, seen through the wrapper.
type verifier interface{ Verify() error }

type programmedVerifier struct {
	*Programmed
	v verifier
}

func (p *programmedVerifier) Verify() error { return p.v.Verify() }

// Programmed is a Backend that reports what it programmed (NewProgrammed).
type Programmed struct {
	Backend
	Path   string // the name reported under
	Report Reporter
	ready  map[Key][]netip.Addr // the ready endpoints' IPs per key, as last reported
}

// Sync syncs the backend, then reports what it programmed.
func (p *Programmed) Sync(st *State, changed []Key, full bool) error {
	if err := p.Backend.Sync(st, changed, full); err != nil {
		return err
	}
	if full || p.ready == nil {
		p.ready = make(map[Key][]netip.Addr, len(st.Services))
		counts := map[netip.Addr]int{}
		for k := range st.Services {
			if ips := readyIPs(st.Endpoints[k]); len(ips) > 0 {
				p.ready[k] = ips
				for _, ip := range ips {
					counts[ip]++
				}
			}
		}
		p.Report.Replace(p.Path, counts)
		return nil
	}
	delta := map[netip.Addr]int{}
	for _, k := range changed {
		for _, ip := range p.ready[k] {
			delta[ip]--
		}
		var ips []netip.Addr
		if _, ok := st.Services[k]; ok {
			ips = readyIPs(st.Endpoints[k])
		}
		for _, ip := range ips {
			delta[ip]++
		}
		if len(ips) > 0 {
			p.ready[k] = ips
		} else {
			delete(p.ready, k)
		}
	}
	for ip, d := range delta {
		if d == 0 {
			delete(delta, ip)
		}
	}
	p.Report.Update(p.Path, delta)
	return nil
}

// readyIPs are the addresses of the ready endpoints: those new connections go
// to whenever there is one (Usable); serving-terminating ones are used only
// when none is ready, and then nothing better exists.
func readyIPs(eps []Endpoint) []netip.Addr {
	var out []netip.Addr
	for _, e := range eps {
		if e.Ready {
			out = append(out, e.Addr.Addr())
		}
	}
	return out
}
