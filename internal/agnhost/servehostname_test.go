package agnhost

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestRunServeHostnameRaw(t *testing.T) {
	port := freePort(t)
	p, _ := strconv.Atoi(port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunServeHostname(ctx, "raw-1", ServeHostnameConfig{Port: p, TCP: true, UDP: true}) }()
	var got []byte
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		got, _ = io.ReadAll(c)
		return true
	})
	if string(got) != "raw-1" {
		t.Errorf("TCP: %q", got)
	}
	if got := askUDP(t, "127.0.0.1:"+port, "x"); got != "raw-1" {
		t.Errorf("UDP: %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunServeHostname: %v", err)
	}
	err := RunServeHostname(context.Background(), "h", ServeHostnameConfig{Port: p, TCP: true, HTTP: true})
	if err == nil {
		t.Error("--tcp with --http should be refused, as upstream")
	}
}

func TestTestWebserver(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "index.txt"), []byte("Hello"), 0o644)
	srv := httptest.NewServer(TestWebserver(dir))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/index.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "Hello" || res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Cache-Control") != "private" {
		t.Errorf("%q %v", b, res.Header)
	}
	if c, _ := get(t, srv.URL+"/missing"); c != 404 {
		t.Errorf("missing file: %d", c)
	}
}
