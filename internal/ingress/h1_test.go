package ingress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLean(t *testing.T) {
	tests := []struct {
		method, body, upgrade string
		want                  bool
	}{
		{"GET", "", "", true},
		{"HEAD", "", "", true},
		{"OPTIONS", "", "", true},
		{"POST", "", "", false},
		{"DELETE", "", "", false},
		{"GET", "x", "", false},
		{"GET", "", "websocket", false},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		req, _ := http.NewRequest(tt.method, "http://upstream/", body)
		if tt.upgrade != "" {
			req.Header.Set("Upgrade", tt.upgrade)
		}
		if got := lean(req); got != tt.want {
			t.Errorf("lean(%s body=%q upgrade=%q) = %v, want %v", tt.method, tt.body, tt.upgrade, got, tt.want)
		}
	}
}

// h1Backend serves h and counts the connections it accepted.
func h1Backend(t *testing.T, h http.HandlerFunc) (*httptest.Server, netip.AddrPort, *atomic.Int32) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, netip.MustParseAddrPort(srv.Listener.Addr().String()), &conns
}

func h1Get(t *testing.T, p *h1Pool, ctx context.Context, method, path string, ep netip.AddrPort, readAll bool) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+ep.String()+path, nil)
	resp, err := p.roundTrip(req, ep)
	if err != nil {
		return nil, "", err
	}
	var b []byte
	if readAll {
		b, err = io.ReadAll(resp.Body)
	}
	resp.Body.Close()
	return resp, string(b), err
}

func TestH1Pool(t *testing.T) {
	srv, ep, conns := h1Backend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
			return
		case "/chunked":
			_, _ = io.WriteString(w, "a")
			http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "b")
			return
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "ok "+r.Method+" "+r.Host)
	})
	p := newH1Pool((&net.Dialer{}).DialContext, 2, time.Minute, time.Now)
	ctx := context.Background()
	want := func(path, body string, conns0 int32, wantConns int32) {
		t.Helper()
		_, got, err := h1Get(t, p, ctx, "GET", path, ep, true)
		if err != nil || got != body {
			t.Fatalf("GET %s: %q, %v; want %q", path, got, err, body)
		}
		if n := conns.Load() - conns0; n != wantConns {
			t.Fatalf("GET %s opened %d connections, want %d", path, n, wantConns)
		}
	}
	want("/", "ok GET "+ep.String(), 0, 1)
	want("/", "ok GET "+ep.String(), 1, 0)                                 // kept alive
	want("/hints", "ok GET "+ep.String(), 1, 0)                            // 103 skipped
	want("/chunked", "ab", 1, 0)                                           // chunked, read to its end
	want("/empty", "", 1, 0)                                               // 204
	if _, _, err := h1Get(t, p, ctx, "HEAD", "/", ep, false); err != nil { // HEAD: closed unread, still reusable
		t.Fatal(err)
	}
	want("/", "ok GET "+ep.String(), 1, 0)

	// A body closed before its end costs the connection.
	if _, _, err := h1Get(t, p, ctx, "GET", "/big", ep, false); err != nil {
		t.Fatal(err)
	}
	want("/", "ok GET "+ep.String(), 1, 1)

	// The endpoint closed the idle connection: a new one is used, no error.
	srv.CloseClientConnections()
	want("/", "ok GET "+ep.String(), 2, 1)

	// A cancelled request ends with the context's error and its connection.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := h1Get(t, p, cctx, "GET", "/slow", ep, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow request: %v, want the context's deadline", err)
	}
	want("/", "ok GET "+ep.String(), conns.Load(), 1)

	// Idle connections are closed by the sweep; at most maxIdle are kept.
	p.closeAll()
	if n := len(p.idle); n != 0 {
		t.Fatalf("%d endpoints with idle connections after closeAll", n)
	}
	// A refused connection is a dial error (the caller ejects the endpoint).
	srv.Close()
	if _, _, err := h1Get(t, p, ctx, "GET", "/", ep, true); !isDialError(err) {
		t.Fatalf("closed endpoint: %v, want a dial error", err)
	}
}
