package ingress

import (
	"crypto/tls"
	"net"
	"net/http"
	"regexp"
	"strings"
)

// Match returns the route of port that serves r, or nil (404). The host is
// looked up exactly, then as the one-label wildcard "*.rest", then as "" (any
// host); within each, the first matching route wins (routes are already in
// precedence order). A host whose routes all miss falls through to the next
// pattern, as an Ingress' defaultBackend catches what its rules do not.
func (p *Port) Match(r *http.Request) *Route {
	rt, _ := p.MatchHost(r)
	return rt
}

// MatchHost is Match that also returns the host pattern that matched ("" for
// none or the any-host routes), a bounded label for metrics.
func (p *Port) MatchHost(r *http.Request) (*Route, string) {
	if p == nil {
		return nil, ""
	}
	host := NormalizeHost(r.Host)
	for _, pattern := range hostPatterns(host) {
		h := p.Hosts[pattern]
		if h == nil || !h.AnyDepth && !HostMatches(pattern, host) {
			continue // a deeper wildcard serves only Gateway API hosts (AnyDepth)
		}
		for _, rt := range h.Routes {
			if rt.Matches(r) {
				return rt, pattern
			}
		}
	}
	return nil, ""
}

// hostPatterns lists the Hosts keys that can serve host, most specific first:
// the host, the wildcards of its suffixes (longest first; beyond one label only
// AnyDepth hosts match), "".
func hostPatterns(host string) []string {
	out := make([]string, 0, 4)
	if host != "" {
		out = append(out, host)
		for i := strings.IndexByte(host, '.'); i > 0 && i < len(host)-1; {
			out = append(out, "*"+host[i:])
			j := strings.IndexByte(host[i+1:], '.')
			if j < 0 {
				break
			}
			i += j + 1
		}
	}
	return append(out, "")
}

// NormalizeHost lower-cases a Host header or SNI name and strips its port and
// a trailing dot.
func NormalizeHost(h string) string {
	if hp, _, err := net.SplitHostPort(h); err == nil {
		h = hp
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// HostMatches reports whether pattern (exact, "*.suffix" or "" for any)
// covers host; a wildcard covers exactly one more label.
func HostMatches(pattern, host string) bool {
	host = NormalizeHost(host)
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		i := strings.IndexByte(host, '.')
		return i > 0 && host[i:] == strings.ToLower(pattern[1:])
	default:
		return strings.EqualFold(pattern, host)
	}
}

// Matches reports whether r satisfies the route's path, method, headers and query.
func (rt *Route) Matches(r *http.Request) bool {
	if !PathMatches(rt.Path, rt.Value, r.URL.Path, rt.Regexp) {
		return false
	}
	if rt.Method != "" && rt.Method != r.Method {
		return false
	}
	for _, h := range rt.Headers {
		if !headerHas(r.Header, h) {
			return false
		}
	}
	if len(rt.Query) > 0 {
		q := r.URL.Query()
		for _, kv := range rt.Query {
			if vs, ok := q[kv.Name]; !ok || vs[0] != kv.Value {
				return false
			}
		}
	}
	return true
}

func headerHas(h http.Header, kv KV) bool {
	vs := h.Values(kv.Name)
	if len(vs) == 0 {
		return false
	}
	return vs[0] == kv.Value
}

// PathMatches reports whether path satisfies a match of type t with value v.
// Prefix is element-wise ("/foo" matches "/foo", "/foo/" and "/foo/bar", not
// "/foobar"; a trailing slash of v is ignored); Exact compares bytes;
// RegularExpression matches the whole path with re (compiled from v when nil).
func PathMatches(t PathType, v, path string, re *regexp.Regexp) bool {
	if path == "" {
		path = "/"
	}
	switch t {
	case PathExact:
		return path == v
	case PathRegex:
		if re == nil {
			var err error
			if re, err = regexp.Compile("^(?:" + v + ")$"); err != nil {
				return false
			}
		}
		return re.MatchString(path)
	default:
		v = strings.TrimRight(v, "/")
		if v == "" {
			return true
		}
		return path == v || strings.HasPrefix(path, v+"/")
	}
}

// Certificate picks the certificate for an SNI name: a certificate naming the
// host exactly, else one whose wildcard covers it, else the first with no
// Hosts, else the first one (a client without SNI gets that too).
func (p *Port) Certificate(sni string) *tls.Certificate {
	if p == nil || len(p.Certs) == 0 {
		return nil
	}
	host := NormalizeHost(sni)
	if host != "" {
		for _, c := range p.Certs {
			for _, h := range c.Hosts {
				if !strings.HasPrefix(h, "*.") && strings.EqualFold(h, host) {
					return c.Cert
				}
			}
		}
		for _, c := range p.Certs {
			for _, h := range c.Hosts {
				if strings.HasPrefix(h, "*.") && HostMatches(h, host) {
					return c.Cert
				}
			}
		}
	}
	for _, c := range p.Certs {
		if len(c.Hosts) == 0 {
			return c.Cert
		}
	}
	return p.Certs[0].Cert
}
