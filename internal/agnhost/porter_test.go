package agnhost

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
	"time"
)

func TestParsePorterEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    []PorterServer
	}{
		{"none", []string{"PATH=/bin", "HOME=/root"}, nil},
		{"http", []string{"SERVE_PORT_9001=foo"}, []PorterServer{{"tcp", "9001", "foo"}}},
		{"all kinds, in order", []string{"SERVE_TLS_PORT_443=tls", "SERVE_TCP_PORT_80=tcp", "SERVE_UDP_PORT_53=udp", "SERVE_SCTP_PORT_9=sctp"},
			[]PorterServer{{"tls", "443", "tls"}, {"tcp", "80", "tcp"}, {"udp", "53", "udp"}, {"sctp", "9", "sctp"}}},
		{"value with =", []string{"SERVE_PORT_160=a=b=c"}, []PorterServer{{"tcp", "160", "a=b=c"}}},
		{"empty value", []string{"SERVE_PORT_161="}, []PorterServer{{"tcp", "161", ""}}},
		{"prefix only in the value", []string{"X=SERVE_PORT_1=y"}, nil},
	} {
		if got := ParsePorterEnv(tc.environ); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestPorterHandler(t *testing.T) {
	for _, tc := range []struct {
		json        bool
		method      string
		want, ctype string
	}{
		{false, "GET", "foo", "text/plain; charset=utf-8"},
		{true, "POST", `{"Method":"POST","Body":"foo"}`, "application/json"},
	} {
		srv := httptest.NewServer(PorterHandler("foo", tc.json))
		req, _ := http.NewRequest(tc.method, srv.URL+"/any", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 100)
		n, _ := res.Body.Read(b)
		res.Body.Close()
		srv.Close()
		if string(b[:n]) != tc.want || res.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("json %v: %q %q", tc.json, b[:n], res.Header.Get("Content-Type"))
		}
	}
}

// freePort returns a TCP port free on loopback a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestRunPorter(t *testing.T) {
	httpPort, tlsPort := freePort(t), freePort(t)
	pc := listenUDP(t)
	udpPort := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
	pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunPorter(ctx, PorterConfig{Servers: []PorterServer{
			{"tcp", httpPort, "plain"}, {"tls", tlsPort, "secret"}, {"udp", udpPort, "datagram"}, {"sctp", "9", "ignored"},
		}, CertFile: "/nonexistent/localhost.crt", KeyFile: "/nonexistent/localhost.key"})
	}()
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	fetch := func(c *http.Client, url string) string {
		res, err := c.Get(url)
		if err != nil {
			return ""
		}
		defer res.Body.Close()
		b := make([]byte, 100)
		n, _ := res.Body.Read(b)
		return string(b[:n])
	}
	waitFor(t, func() bool { return fetch(http.DefaultClient, "http://127.0.0.1:"+httpPort+"/") == "plain" })
	waitFor(t, func() bool { return fetch(insecure, "https://127.0.0.1:"+tlsPort+"/x") == "secret" })
	if got := askUDP(t, "127.0.0.1:"+udpPort, "anything"); got != "datagram" {
		t.Errorf("UDP: %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunPorter: %v", err)
	}
}

func TestLoadCert(t *testing.T) {
	c, err := loadCert("/nonexistent/localhost.crt", "/nonexistent/localhost.key")
	if err != nil || len(c.Certificate) != 1 {
		t.Fatalf("generated localhost certificate: %v", err)
	}
	if _, err := loadCert("/nonexistent/other.crt", "/nonexistent/other.key"); err == nil {
		t.Error("a missing certificate of another name should be an error")
	}
}
