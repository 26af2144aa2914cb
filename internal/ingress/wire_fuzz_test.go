package ingress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// The ingress data plane parses two kinds of untrusted bytes: clients' request
// lines and headers (net/http's server, then the Table's matching and the
// proxy's rewriting) and endpoints' answers on the lean h1 path. Both are fuzzed
// here entirely in memory: endpoints are reached over net.Pipe, never dialed.

// pipeListener hands net.Pipe connections to an http.Server.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// feedConn is a server's side of a connection whose client sent r and holds
// its end of the stream until hold closes.
type feedConn struct {
	net.Conn
	r    io.Reader
	hold <-chan struct{}
}

func (c *feedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		<-c.hold
	}
	return n, err
}

// dial connects to the listener's server.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	c1, c2 := net.Pipe()
	select {
	case l.conns <- c2:
		return c1, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serveInMemory serves h on an in-memory listener until the test ends.
func serveInMemory(tb testing.TB, h http.Handler) *pipeListener {
	l := newPipeListener()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0)}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { close(l.done); _ = srv.Close() })
	return l
}

// FuzzRequestHead sends raw request bytes to an ingress port whose routes lead
// to in-memory endpoints that echo what reached them. No handler panics, every
// answer parses, and a proxied request reaches an endpoint of the route the
// request matches, with the Host it was matched by.
func FuzzRequestHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET /api/v1?x=1 HTTP/1.1\r\nHost: B.TEST:80\r\nConnection: close\r\n\r\n",
		"GET /api/../admin HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"GET //a/%2e%2e/%2F HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"HEAD /exact HTTP/1.1\r\nHost: b.test\r\nX-Env: canary\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"GET http://a.test/abs HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"POST /api HTTP/1.1\r\nHost: b.test\r\nContent-Length: 5\r\n\r\nhello",
		"POST /api HTTP/1.1\r\nHost: b.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /api HTTP/1.1\r\nHost: b.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET /second HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET /r/old HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"GET /re/123 HTTP/1.1\r\nHost: x.wild.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test.\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=evil\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\n Folded: yes\r\n\r\n",
		"\r\n\r\n", "GET", "GET / HTTP/9.9\r\n\r\n", "",
	} {
		f.Add(seed)
	}
	var upstreams = map[string]string{"192.0.2.1:80": "a", "192.0.2.2:80": "b", "192.0.2.3:80": "exact", "192.0.2.4:80": "re"}
	echo := func(ep string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "ep=%s host=%s path=%s body=%d", ep, r.Host, r.URL.Path, n)
		})
	}
	dials := map[string]*pipeListener{}
	for ep, name := range upstreams {
		dials[ep] = serveInMemory(f, echo(name))
	}
	s := NewServer(ServerOptions{Log: slog.New(slog.DiscardHandler)})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		l := dials[addr]
		if l == nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("not an endpoint")}
		}
		return l.dial(ctx, network, addr)
	}
	s.h1.dial, s.transport.DialContext = dial, dial
	backend := func(ep string) []*Backend {
		return []*Backend{{Weight: 1, Endpoints: []netip.AddrPort{netip.MustParseAddrPort(ep)}}}
	}
	prefix := "/new"
	tab := &Table{Ports: map[int]*Port{80: {Hosts: map[string]*Host{
		"a.test": {Routes: []*Route{{Source: "a", Path: PathPrefix, Value: "/", Backends: backend("192.0.2.1:80"),
			RequestHeaders: &HeaderFilter{Set: []KV{{"X-Route", "a"}}, Remove: []string{"Cookie"}}}}},
		"b.test": {Routes: []*Route{
			{Source: "exact", Path: PathExact, Value: "/exact", Headers: []KV{{"X-Env", "canary"}}, Backends: backend("192.0.2.3:80")},
			{Source: "redirect", Path: PathPrefix, Value: "/r", Redirect: &Redirect{Scheme: "https", Path: &Rewrite{PrefixPath: &prefix}, Code: 301}},
			{Source: "none", Path: PathPrefix, Value: "/none", Backends: []*Backend{{Weight: 1}}},
			{Source: "b", Path: PathPrefix, Value: "/", Method: "", Backends: backend("192.0.2.2:80")},
		}},
		"*.wild.test": {AnyDepth: true, Routes: []*Route{{Source: "re", Path: PathRegex, Value: `^/re/[0-9]+$`, Backends: backend("192.0.2.4:80"),
			Rewrite: &Rewrite{PrefixPath: &prefix}}}},
	}}}}
	s.Swap(tab)
	panics := make(chan string, 1)
	handler := s.handler(80, false)
	front := serveInMemory(f, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					select {
					case panics <- fmt.Sprintf("%v\n%s", p, debug.Stack()):
					default:
					}
				}
				panic(p)
			}
		}()
		handler.ServeHTTP(w, r)
	}))

	f.Fuzz(func(t *testing.T, raw string) {
		// The first request as a server reads it: what the answer must be about.
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		complete := err == nil
		if complete {
			_, err := io.Copy(io.Discard, want.Body)
			complete = err == nil
		}
		// The client's bytes end after raw; a complete first request sees that
		// end only once its answer is read (an early end cancels its proxying).
		client, server := net.Pipe()
		defer client.Close()
		hold := make(chan struct{})
		if !complete {
			close(hold)
		}
		front.conns <- &feedConn{Conn: server, r: strings.NewReader(raw), hold: hold}
		_ = client.SetDeadline(time.Now().Add(10 * time.Second))
		resp, rerr := http.ReadResponse(bufio.NewReader(client), want)
		if complete {
			close(hold)
		}
		select {
		case p := <-panics:
			t.Fatalf("handler panic on %q: %s", raw, p)
		default:
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Fatalf("answer to %q does not parse: %v", raw, rerr)
			}
			return
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		// The endpoints always answer a complete request: no 500, 502 or 504 (503
		// is a route without endpoints; net/http itself answers 501 and 505 to
		// what it cannot read). A body cut short is a 502, and so is an Upgrade
		// token that is not printable ASCII (ReverseProxy's answers; 400 would fit).
		switch resp.StatusCode {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			if complete && printable(want.Header.Get("Upgrade")) {
				t.Fatalf("%q answered %d %s", raw, resp.StatusCode, body)
			}
		}
		// net/http answers OPTIONS * itself.
		if resp.StatusCode != http.StatusOK || !complete || want.Method == http.MethodHead || want.RequestURI == "*" {
			return
		}
		rt, _ := tab.Ports[80].MatchHost(want)
		if rt == nil {
			t.Fatalf("%q matches no route but was answered 200: %s", raw, body)
		}
		ep := upstreams[rt.Backends[0].Endpoints[0].String()]
		if !strings.HasPrefix(string(body), "ep="+ep+" host="+want.Host+" ") {
			t.Fatalf("%q (route %s, host %q) reached %s", raw, rt.Source, want.Host, body)
		}
	})
}

// fuzzEndpoint answers the first request it ever gets with first (raw bytes) and
// every later one well: "HTTP/1.1 200 OK" with body "second". A connection with
// no request for idle is closed (an answer without framing ends there).
func fuzzEndpoint(first string, idle time.Duration) func(context.Context, string, string) (net.Conn, error) {
	answered := make(chan struct{}, 1)
	answered <- struct{}{}
	return func(context.Context, string, string) (net.Conn, error) {
		c, ep := net.Pipe()
		go func() {
			defer ep.Close()
			br := bufio.NewReader(ep)
			for {
				_ = ep.SetReadDeadline(time.Now().Add(idle))
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_ = req.Body.Close()
				_ = ep.SetWriteDeadline(time.Now().Add(idle))
				select {
				case <-answered:
					_, err = io.WriteString(ep, first)
				default:
					_, err = io.WriteString(ep, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
				}
				if err != nil {
					return
				}
			}
		}()
		return c, nil
	}
}

// FuzzH1Answer gives the lean h1 path arbitrary answers from an endpoint. No
// panic, and whatever the first answer was, the next request on the pool gets
// its own answer (no bytes of the first leak into it).
func FuzzH1Answer(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nTrailer: x\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nraw",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
		"HTTP/1.0 200 OK\r\n\r\nold",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n", "garbage\r\n\r\n", "",
	} {
		f.Add(seed, false)
	}
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true) // HEAD: the length describes no body
	ep := netip.MustParseAddrPort("192.0.2.1:80")
	f.Fuzz(func(t *testing.T, answer string, head bool) {
		p := newH1Pool(fuzzEndpoint(answer, 20*time.Millisecond), 4, time.Minute, time.Now)
		defer p.closeAll()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+ep.String()+"/one", nil)
		if resp, err := p.roundTrip(req, ep); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep.String()+"/two", nil)
		resp, err := p.roundTrip(req, ep)
		if err != nil {
			t.Fatalf("after the answer %q, the next request failed: %v", answer, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "second" {
			t.Fatalf("after the answer %q, the next request got %d %q (%v), want 200 \"second\"", answer, resp.StatusCode, body, err)
		}
	})
}

func printable(s string) bool {
	for _, r := range s {
		if r < ' ' || r > '~' {
			return false
		}
	}
	return true
}
