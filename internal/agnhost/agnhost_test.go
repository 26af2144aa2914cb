package agnhost

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// get GETs url and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// body GETs url and returns the body.
func body(t *testing.T, url string) string {
	t.Helper()
	_, b := get(t, url)
	return b
}

// listenUDP opens a UDP socket on loopback, closed when the test ends.
func listenUDP(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// askUDP sends q to addr and returns the answer.
func askUDP(t *testing.T, addr, q string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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

func TestServeHostnameHTTP(t *testing.T) {
	for _, closeConn := range []bool{false, true} {
		srv := httptest.NewServer(ServeHostname("web-1", closeConn, nil))
		res, err := http.Get(srv.URL + "/anything")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "web-1" || res.Close != closeConn {
			t.Errorf("close %v: %q, Connection: close %v", closeConn, b, res.Close)
		}
		srv.Close()
	}
}

func TestUDPReply(t *testing.T) {
	from := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 4242}
	for _, tc := range []struct {
		msg, want string
		ok        bool
	}{
		{"hostname", "web-3", true},
		{" HostName\n", "web-3", true},
		{"echo hello", "hello", true},
		{"echo Hello There", "hello there", true}, // upstream lower-cases the request
		{"clientip", "10.0.0.7:4242", true},
		{"bogus", "", false},
		{"", "", false},
	} {
		got, ok := UDPReply(tc.msg, "web-3", from)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q -> %q %v, want %q %v", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}

func TestServeUDP(t *testing.T) {
	pc := listenUDP(t)
	done := make(chan error)
	go func() { done <- ServeUDP(pc, "web-3", nil) }()
	addr := pc.LocalAddr().String()
	if got := askUDP(t, addr, "hostname"); got != "web-3" {
		t.Errorf("hostname: %q", got)
	}
	if got := askUDP(t, addr, "echo hi"); got != "hi" {
		t.Errorf("echo: %q", got)
	}
	pc.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeUDP after close: %v", err)
	}
}
