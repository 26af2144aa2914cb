package agnhost

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestHTTP(t *testing.T) {
	sh := httptest.NewServer(ServeHostname("web-1"))
	defer sh.Close()
	if got := get(t, sh.URL+"/anything"); got != "web-1" {
		t.Fatalf("serve-hostname: %q", got)
	}
	stopped := make(chan struct{})
	ne := httptest.NewServer(NetExec("web-2", func() { close(stopped) }))
	defer ne.Close()
	if got := get(t, ne.URL+"/hostname"); got != "web-2" {
		t.Fatalf("/hostname: %q", got)
	}
	if got := get(t, ne.URL+"/echo?msg=hi%20there"); got != "hi there" {
		t.Fatalf("/echo: %q", got)
	}
	if got := get(t, ne.URL+"/clientip"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("/clientip: %q", got)
	}
	if got := get(t, ne.URL+"/shutdown"); got != "shutting down" {
		t.Fatalf("/shutdown: %q", got)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("/shutdown did not call shutdown")
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ServeUDP(pc, "web-3") }()
	defer pc.Close()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(q string) string {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(q)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1024)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	for q, want := range map[string]string{"hostname": "web-3", "echo hello": "hello", "clientip": c.LocalAddr().String(), "bogus": "unknown command: bogus"} {
		if got := ask(q); got != want {
			t.Errorf("%q -> %q, want %q", q, got, want)
		}
	}
}
