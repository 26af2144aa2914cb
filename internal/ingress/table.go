// Package ingress is svcnet's HTTP(S) edge: Ingress objects and Gateway API
// routes are translated (pure functions, translate_*.go) into one immutable
// routing Table; the Server answers on the node's ports by matching each request
// against the current Table and proxying it to a ready endpoint. A change of
// routes, endpoints or certificates builds a new Table and swaps it atomically:
// nothing reloads, established connections and in-flight requests continue.
package ingress

import (
	"crypto/tls"
	"net/netip"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Table is everything the edge serves at one moment. It is never mutated after
// it is built; build a new one instead.
type Table struct {
	// Ports maps a listening port to what is served there.
	Ports map[int]*Port
}

// Port is one listening port: plain HTTP (h1 and h2c) or TLS (h1 and h2, SNI).
type Port struct {
	TLS bool
	// Certs are the certificates offered by SNI, most specific host first; a
	// wildcard certificate ("*.example.com") covers one label. The first one with
	// no Hosts is the fallback.
	Certs []Cert
	// Hosts holds the routes by request host: exact names, then "*.suffix"
	// wildcards (one label, most specific first), then "" (any host).
	Hosts map[string]*Host
}

// Cert is a certificate and the hosts it serves.
type Cert struct {
	Hosts  []string
	Cert   *tls.Certificate
	Source string // "secret NS/NAME", for logs
}

// Host is the routes of one host pattern, already in precedence order: the
// first route that matches a request wins.
type Host struct {
	Routes []*Route
	// AnyDepth makes a "*.suffix" pattern match hosts with any number of labels
	// before the suffix ("*.example.com" matches "a.b.example.com"), as Gateway
	// API hostnames do; Ingress wildcards (AnyDepth false) cover one label. The
	// most specific pattern wins: exact, then the longest matching suffix.
	AnyDepth bool
}

// PathType is how a route matches the request path.
type PathType string

// Path match types: Ingress' Exact and Prefix (element-wise), Gateway API's
// RegularExpression.
const (
	PathExact  PathType = "Exact"
	PathPrefix PathType = "Prefix"
	PathRegex  PathType = "RegularExpression"
)

// Route is one match and what to do with the requests it matches.
type Route struct {
	// Source names the object and rule the route comes from ("ingress default/web
	// rule 0 path 1", "httproute default/web rule 2"), for logs and metrics.
	Source string
	Path   PathType
	Value  string // the path, "/" matches everything with PathPrefix
	// Regexp is Value compiled, for PathRegex (nil: compiled on every match).
	Regexp *regexp.Regexp
	// Method, Headers and Query narrow the match (Gateway API); all must match.
	Method  string
	Headers []KV // exact header value matches (names case-insensitive)
	Query   []KV // exact query parameter matches
	// RequestHeaders and ResponseHeaders are header filters applied in order.
	RequestHeaders  *HeaderFilter
	ResponseHeaders *HeaderFilter
	// Redirect answers with a redirect instead of proxying (RequestRedirect, or
	// the Ingress HTTP->HTTPS annotation).
	Redirect *Redirect
	// Rewrite changes the host or path before proxying (URLRewrite).
	Rewrite *Rewrite
	// Backends share the matched requests by weight. None (or all with weight 0)
	// answers 500 (Gateway API) or 503 (no endpoints).
	Backends []*Backend
	// Timeout bounds a whole request (0: the server's default).
	Timeout time.Duration
}

// KV is a name and value to match.
type KV struct{ Name, Value string }

// HeaderFilter modifies headers: Set replaces, Add appends, Remove deletes.
type HeaderFilter struct {
	Set, Add []KV
	Remove   []string
}

// Redirect describes a redirect response; empty fields keep the request's value.
type Redirect struct {
	Scheme, Host string
	Port         int      // 0: the scheme's well-known port (omitted from Location)
	Path         *Rewrite // full path or prefix replacement
	Code         int      // 301 or 302 (308 for the Ingress HTTPS redirect, as ingress-nginx)
}

// Rewrite replaces the host and/or the path (all of it, or the matched prefix).
type Rewrite struct {
	Host       string
	FullPath   *string
	PrefixPath *string
}

// Backend is a Service port and its endpoints as the route sends to them.
type Backend struct {
	Service types.NamespacedName
	Port    string // the Service port's name or number, as the route named it
	Weight  int32
	// Endpoints are the ready ones; when there are none, the serving
	// terminating ones (as kube-proxy falls back).
	Endpoints []netip.AddrPort
	// Problem, when set, answers every request for this backend with Status
	// (e.g. 500 for a missing Service, as Gateway API requires) instead.
	Problem string
	Status  int
}
