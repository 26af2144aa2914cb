package ingress

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// reqState is what one request's proxying carries from the handler to the
// transport and back (through the request context).
type reqState struct {
	route    *Route
	backend  *Backend
	upstream string // the endpoint that answered, for the access log
}

type stateKey struct{}

var errNoEndpoints = errors.New("no endpoint available")

// serve answers r by the route: 404 without one, a redirect, a backend's
// problem status, or the proxied response.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, st *reqState, isTLS bool) {
	rt := st.route
	switch {
	case rt == nil:
		http.Error(w, "404 page not found (no ingress rule matches)", http.StatusNotFound)
		return
	case rt.Redirect != nil:
		http.Redirect(w, r, redirectURL(r, rt, isTLS), cmpOr(rt.Redirect.Code, http.StatusFound))
		return
	}
	b := pickBackend(rt.Backends)
	switch {
	case b == nil:
		http.Error(w, "500 no backend", http.StatusInternalServerError)
		return
	case b.Problem != "":
		http.Error(w, strconv.Itoa(b.Status)+" "+b.Problem, cmpOr(b.Status, http.StatusInternalServerError))
		return
	case len(b.Endpoints) == 0:
		http.Error(w, "503 Service Temporarily Unavailable (no ready endpoints)", http.StatusServiceUnavailable)
		return
	}
	st.backend = b
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	if rt.Timeout > 0 && !isUpgrade(r) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.Timeout)
		defer cancel()
	}
	s.proxy.ServeHTTP(w, r.WithContext(ctx))
}

func cmpOr(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func isUpgrade(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

// pickBackend chooses a backend by weight (nil when none has weight).
func pickBackend(bs []*Backend) *Backend {
	if len(bs) == 1 && bs[0].Weight > 0 {
		return bs[0]
	}
	var total int64
	for _, b := range bs {
		total += int64(max(b.Weight, 0))
	}
	if total == 0 {
		return nil
	}
	n := rand.Int64N(total)
	for _, b := range bs {
		if n -= int64(max(b.Weight, 0)); n < 0 {
			return b
		}
	}
	return nil
}

// redirectURL is where a Redirect sends r.
func redirectURL(r *http.Request, rt *Route, isTLS bool) string {
	rd := rt.Redirect
	scheme := "http"
	if isTLS {
		scheme = "https"
	}
	port := 0
	host := r.Host
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host = h
		port, _ = strconv.Atoi(p)
	}
	if rd.Scheme != "" && rd.Scheme != scheme {
		scheme, port = rd.Scheme, 0
	}
	if rd.Host != "" {
		host = rd.Host
	}
	if rd.Port != 0 {
		port = rd.Port
	}
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		port = 0
	}
	if port != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := r.URL.Path
	if rd.Path != nil {
		path = rewritePath(path, rt, rd.Path)
	}
	u := scheme + "://" + host + path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// rewritePath applies a full-path or matched-prefix replacement.
func rewritePath(path string, rt *Route, rw *Rewrite) string {
	switch {
	case rw.FullPath != nil:
		return *rw.FullPath
	case rw.PrefixPath != nil && rt.Path == PathPrefix:
		rest := path[len(strings.TrimRight(rt.Value, "/")):]
		repl := strings.TrimRight(*rw.PrefixPath, "/")
		if rest == "" && repl == "" {
			return "/"
		}
		if repl == "" && !strings.HasPrefix(rest, "/") {
			rest = "/" + rest
		}
		return repl + rest
	}
	return path
}

// newReverseProxy is the proxy every request goes through; the route and
// backend travel in the request context.
func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := pr.In.Context().Value(stateKey{}).(*reqState)
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "upstream" // the endpoint is set per attempt
			pr.Out.Host = pr.In.Host                                // as nginx's proxy_set_header Host $host
			pr.SetXForwarded()
			if rw := st.route.Rewrite; rw != nil {
				if rw.Host != "" {
					pr.Out.Host = rw.Host
				}
				if p := rewritePath(pr.In.URL.Path, st.route, rw); p != pr.In.URL.Path {
					pr.Out.URL.Path, pr.Out.URL.RawPath = p, ""
				}
			}
			applyHeaders(pr.Out.Header, st.route.RequestHeaders)
		},
		Transport:     &upstream{s: s},
		FlushInterval: flushInterval,
		BufferPool:    newBufferPool(),
		ModifyResponse: func(resp *http.Response) error {
			st := resp.Request.Context().Value(stateKey{}).(*reqState)
			applyHeaders(resp.Header, st.route.ResponseHeaders)
			return nil
		},
		ErrorHandler: s.proxyError,
		ErrorLog:     nil,
	}
}

// proxyError answers as nginx does: 504 when the endpoint timed out, 503 when
// none was available, 502 otherwise.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadGateway
	var ne net.Error
	switch {
	case errors.Is(err, errNoEndpoints):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		code = http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		code = 499 // the client went away (nginx's code; nobody reads it)
	}
	s.o.Log.Debug("ingress: upstream failed", "host", r.Host, "uri", r.RequestURI, "code", code, "err", err)
	w.WriteHeader(code)
	_, _ = io.WriteString(w, strconv.Itoa(code)+" "+http.StatusText(code)+"\n")
}

// bufferPool reuses the body copy buffers (without one, ReverseProxy
// allocates 32 KiB per response, most of the garbage of a small request).
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

// applyHeaders runs a header filter on h.
func applyHeaders(h http.Header, f *HeaderFilter) {
	if f == nil {
		return
	}
	for _, kv := range f.Set {
		h.Set(kv.Name, kv.Value)
	}
	for _, kv := range f.Add {
		h.Add(kv.Name, kv.Value)
	}
	for _, n := range f.Remove {
		h.Del(n)
	}
}

// upstream sends a request to an endpoint of its backend, trying another
// endpoint when connecting fails (any request: nothing was sent) or when an
// idempotent request without a body lost its connection before an answer.
type upstream struct{ s *Server }

func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	st := req.Context().Value(stateKey{}).(*reqState)
	body := &onceBody{rc: req.Body}
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = body
	}
	var tried []netip.AddrPort
	err := errNoEndpoints
	for range MaxAttempts {
		ep, ok := u.s.health.pick(st.backend.Endpoints, tried)
		if !ok {
			break
		}
		tried = append(tried, ep)
		out := *req
		u2 := *req.URL
		u2.Host = ep.String()
		out.URL = &u2
		var resp *http.Response
		if lean(&out) {
			resp, err = u.s.h1.roundTrip(&out, ep)
		} else {
			resp, err = u.s.transport.RoundTrip(&out)
		}
		if err == nil {
			st.upstream = ep.String()
			return resp, nil
		}
		dial := isDialError(err)
		if dial {
			u.s.health.eject(ep)
		}
		u.s.o.Metrics.upstreamError(st.route.Source, errorReason(err, dial))
		if req.Context().Err() != nil || body.read || !(dial || idempotent(req)) {
			break
		}
	}
	return nil, err
}

// idempotent requests are retried after a lost connection.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func errorReason(err error, dial bool) string {
	var ne net.Error
	switch {
	case dial:
		return "connect"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "connection"
	}
}

// onceBody notes whether the request body was read; its Close is left to the
// server so a retry can still send an unread body.
type onceBody struct {
	rc   io.ReadCloser
	read bool
}

func (b *onceBody) Read(p []byte) (int, error) { b.read = true; return b.rc.Read(p) }
func (b *onceBody) Close() error               { return nil }

// health remembers endpoints that refused connections (passive health).
type health struct {
	now func() time.Time
	mu  sync.Mutex
	out map[netip.AddrPort]time.Time // ejected until
}

func newHealth(now func() time.Time) *health {
	return &health{now: now, out: map[netip.AddrPort]time.Time{}}
}

func (h *health) eject(ep netip.AddrPort) {
	h.mu.Lock()
	h.out[ep] = h.now().Add(EjectFor)
	h.mu.Unlock()
}

// pick chooses an endpoint at random among those not tried, preferring ones
// not ejected; false when all were tried.
func (h *health) pick(eps []netip.AddrPort, tried []netip.AddrPort) (netip.AddrPort, bool) {
	n := len(eps)
	if n == 0 {
		return netip.AddrPort{}, false
	}
	start := rand.IntN(n)
	now := h.now()
	var fallback netip.AddrPort
	found := false
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range n {
		ep := eps[(start+i)%n]
		if contains(tried, ep) {
			continue
		}
		until, ejected := h.out[ep]
		if ejected && now.After(until) {
			delete(h.out, ep)
			ejected = false
		}
		if !ejected {
			return ep, true
		}
		if !found {
			fallback, found = ep, true
		}
	}
	return fallback, found
}

func contains(s []netip.AddrPort, ep netip.AddrPort) bool {
	for _, e := range s {
		if e == ep {
			return true
		}
	}
	return false
}
