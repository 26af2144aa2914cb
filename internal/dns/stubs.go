package dns

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ConfigMapName is the ConfigMap in kube-system whose stubDomains and
// upstreamNameservers keys configure forwarding, as kube-dns reads them (and
// CoreDNS's migration from kube-dns carries them over).
const ConfigMapName = "kube-dns"

// maxUpstreamNameservers is kube-dns's limit on upstreamNameservers.
const maxUpstreamNameservers = 3

// Upstreams says where names outside the cluster zone go: names in a stub
// domain to its servers, the rest to Nameservers (none: the node's resolv.conf).
// Addresses are "ip:port".
type Upstreams struct {
	Stubs       map[string][]string // fully qualified, lower-case domain -> servers
	Nameservers []string
}

// ParseKubeDNSConfig reads the kube-dns ConfigMap's data: stubDomains is a JSON
// object of domain -> list of "ip" or "ip:port", upstreamNameservers a JSON list
// of at most three. Errors name the key.
func ParseKubeDNSConfig(data map[string]string) (Upstreams, error) {
	var u Upstreams
	if v := strings.TrimSpace(data["stubDomains"]); v != "" {
		var raw map[string][]string
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			return Upstreams{}, fmt.Errorf("stubDomains: %w", err)
		}
		u.Stubs = map[string][]string{}
		for domain, servers := range raw {
			d := strings.ToLower(strings.TrimSuffix(domain, "."))
			if errs := validation.IsDNS1123Subdomain(d); len(errs) > 0 {
				return Upstreams{}, fmt.Errorf("stubDomains: %q: %s", domain, strings.Join(errs, "; "))
			}
			if len(servers) == 0 {
				return Upstreams{}, fmt.Errorf("stubDomains: %q: no nameservers", domain)
			}
			for _, s := range servers {
				a, err := nameserverAddr(s)
				if err != nil {
					return Upstreams{}, fmt.Errorf("stubDomains: %q: %w", domain, err)
				}
				u.Stubs[mdns.Fqdn(d)] = append(u.Stubs[mdns.Fqdn(d)], a)
			}
		}
	}
	if v := strings.TrimSpace(data["upstreamNameservers"]); v != "" {
		var raw []string
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			return Upstreams{}, fmt.Errorf("upstreamNameservers: %w", err)
		}
		if len(raw) > maxUpstreamNameservers {
			return Upstreams{}, fmt.Errorf("upstreamNameservers: %d entries, at most %d", len(raw), maxUpstreamNameservers)
		}
		for _, s := range raw {
			a, err := nameserverAddr(s)
			if err != nil {
				return Upstreams{}, fmt.Errorf("upstreamNameservers: %w", err)
			}
			u.Nameservers = append(u.Nameservers, a)
		}
	}
	return u, nil
}

// nameserverAddr turns "ip" or "ip:port" into "ip:port" (port 53 by default).
func nameserverAddr(s string) (string, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return ap.String(), nil
	}
	return "", fmt.Errorf("%q is not an IP address with an optional port", s)
}

// routes is an Upstreams resolved to upstream entries.
type routes struct {
	stubs       map[string][]*upstream
	nameservers []*upstream
}

// SetUpstreams routes names outside the cluster by u from now on and empties
// the answer cache (answers from the servers before must not outlive them).
func (f *Forwarder) SetUpstreams(u Upstreams) {
	r := &routes{stubs: map[string][]*upstream{}}
	for d, servers := range u.Stubs {
		for _, s := range servers {
			r.stubs[d] = append(r.stubs[d], &upstream{addr: s})
		}
	}
	for _, s := range u.Nameservers {
		r.nameservers = append(r.nameservers, &upstream{addr: s})
	}
	f.routes.Store(r)
	if f.cache != nil {
		f.cache.clear()
	}
}

// upstreamsFor picks the servers for name: the longest stub domain holding it,
// else the configured nameservers, else the node's.
func (f *Forwarder) upstreamsFor(name string) []*upstream {
	r := f.routes.Load()
	if r == nil {
		return f.upstreams
	}
	name = strings.ToLower(mdns.Fqdn(name))
	best := ""
	for d := range r.stubs {
		if (name == d || strings.HasSuffix(name, "."+d)) && len(d) > len(best) {
			best = d
		}
	}
	if best != "" {
		return r.stubs[best]
	}
	if len(r.nameservers) > 0 {
		return r.nameservers
	}
	return f.upstreams
}

// all is every upstream in use (for probing).
func (f *Forwarder) all() []*upstream {
	out := slices.Clone(f.upstreams)
	if r := f.routes.Load(); r != nil {
		out = append(out, r.nameservers...)
		for _, s := range r.stubs {
			out = append(out, s...)
		}
	}
	return out
}

func (c *answerCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
