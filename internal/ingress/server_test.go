package ingress

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func backendServer(t *testing.T, name string) netip.AddrPort {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			w.Header().Set("Upgrade", "echo")
			w.Header().Set("Connection", "Upgrade")
			w.WriteHeader(http.StatusSwitchingProtocols)
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = io.Copy(conn, brw)
			return
		}
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintf(w, "%s %s xff=%s proto=%s host=%s", name, r.URL.Path, r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Proto"), r.Host)
	}))
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String())
}

func startServer(t *testing.T, tab *Table) *Server {
	s := NewServer(ServerOptions{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	s.Swap(tab)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-s.started
	return s
}

func get(t *testing.T, c *http.Client, url, host string) (int, string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (%s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerProxies(t *testing.T) {
	a, b := backendServer(t, "a"), backendServer(t, "b")
	// An endpoint that refuses connections: requests go to the other one.
	dead := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freePort(t)))
	port := freePort(t)
	route := func(src, path string, eps ...netip.AddrPort) *Route {
		return &Route{Source: src, Path: PathPrefix, Value: path, Backends: []*Backend{{Weight: 1, Endpoints: eps}}}
	}
	tab := &Table{Ports: map[int]*Port{port: {Hosts: map[string]*Host{
		"a.test": {Routes: []*Route{route("a", "/", a, dead)}},
		"b.test": {Routes: []*Route{
			{Source: "slow", Path: PathExact, Value: "/slow", Timeout: 100 * time.Millisecond, Backends: []*Backend{{Weight: 1, Endpoints: []netip.AddrPort{b}}}},
			route("none", "/none"),
			{Source: "redir", Path: PathPrefix, Value: "/r", Redirect: &Redirect{Scheme: "https", Port: 443, Code: 308}},
			route("b", "/", b),
		}},
	}}}}
	s := startServer(t, tab)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range 10 {
		if code, body := get(t, c, base+"/x", "a.test"); code != 200 || !strings.HasPrefix(body, "a /x xff=127.0.0.1 proto=http host=a.test") {
			t.Fatalf("a.test: %d %q", code, body)
		}
	}
	for _, tt := range []struct {
		path, host string
		code       int
		body       string
	}{
		{"/y", "B.TEST:80", 200, "b /y"},
		{"/none/x", "b.test", 503, "503"},
		{"/slow", "b.test", 504, "504"},
		{"/", "c.test", 404, "404"},
	} {
		if code, body := get(t, c, base+tt.path, tt.host); code != tt.code || !strings.HasPrefix(body, tt.body) {
			t.Errorf("%s%s: %d %q, want %d %q", tt.host, tt.path, code, body, tt.code, tt.body)
		}
	}
	req, _ := http.NewRequest("GET", base+"/r/x?q=1", nil)
	req.Host = "b.test"
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 308 || resp.Header.Get("Location") != "https://b.test/r/x?q=1" {
		t.Errorf("redirect: %v %v", resp, err)
	}

	// An upgraded connection keeps working across swaps, even one that
	// removes its route.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for i := range 20 {
		s.Swap(&Table{Ports: map[int]*Port{port: {Hosts: map[string]*Host{"b.test": tab.Ports[port].Hosts["b.test"]}}}})
		fmt.Fprintf(conn, "ping %d\n", i)
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("ping %d\n", i) {
			t.Fatalf("echo %d after a swap: %q %v", i, line, err)
		}
	}
	if code, _ := get(t, c, base+"/x", "a.test"); code != 404 {
		t.Errorf("a.test after its route went: %d, want 404", code)
	}

	// h2c with prior knowledge.
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	req, _ = http.NewRequest("GET", base+"/h2", nil)
	req.Host = "b.test"
	resp, err = h2c.Do(req)
	if err != nil || resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Errorf("h2c: %v %v", resp, err)
	}
}

func TestServerTLSRotation(t *testing.T) {
	b := backendServer(t, "b")
	port := freePort(t)
	table := func(c *tls.Certificate) *Table {
		return &Table{Ports: map[int]*Port{port: {TLS: true, Certs: []Cert{{Hosts: []string{"s.test"}, Cert: c}},
			Hosts: map[string]*Host{"s.test": {Routes: []*Route{{Source: "s", Path: PathPrefix, Value: "/", Backends: []*Backend{{Weight: 1, Endpoints: []netip.AddrPort{b}}}}}}}}}}
	}
	first, second := rsaCert(t, "s.test"), rsaCert(t, "s.test")
	s := startServer(t, table(first))
	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "s.test"}}}
	}
	serial := func() string {
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
		req.Host = "s.test"
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Errorf("TLS: %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), "proto=https") {
			t.Errorf("X-Forwarded-Proto: %q", body)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("first certificate not served")
	}
	s.Swap(table(second))
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Second, true, func(context.Context) (bool, error) {
		return serial() == second.Leaf.SerialNumber.String(), nil
	})
	if err != nil {
		t.Errorf("rotated certificate not served: %v", err)
	}
}
