package agnhost

import (
	"bytes"
	"context"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newNetExecServer serves a ready netexec for host on loopback; /exit and
// /shutdown arrive on the channel.
func newNetExecServer(t *testing.T, host string) (*httptest.Server, chan exitRequest) {
	t.Helper()
	exits := make(chan exitRequest, 4)
	n := NewNetExec(NetExecOptions{Host: host, UploadDir: t.TempDir(),
		Exit: func(code int, grace time.Duration) { exits <- exitRequest{code, grace} }})
	n.SetReady(true)
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return srv, exits
}

// splitURL returns the host and port of u.
func splitURL(t *testing.T, u string) (string, string) {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Hostname(), p.Port()
}

func TestNetExecEndpoints(t *testing.T) {
	srv, _ := newNetExecServer(t, "web-2")
	_, port := splitURL(t, srv.URL)
	for _, tc := range []struct {
		path   string
		code   int
		want   string
		prefix bool
	}{
		{"/", 200, "NOW: ", true},
		{"/anything/else", 200, "NOW: ", true},
		{"/hostname", 200, "web-2", false},
		{"/hostName", 200, "web-2", false},
		{"/clientip", 200, "127.0.0.1:", true},
		{"/serverport", 200, port, false},
		{"/echo?msg=hi%20there", 200, "hi there", false},
		{"/echo?msg=gone&code=410", 410, "gone", false},
		{"/echo?msg=x&code=abc", 200, "argument 'code' must be an integer or empty, got \"abc\"\n", false},
		{"/header?key=X-Test", 200, "yes", false},
		{"/healthz", 200, "", false},
		{"/readyz", 200, "ok", false},
		{"/shell?cmd=echo%20hi", 200, `{"output":"hi\n"}`, false},
		{"/shell?shellCommand=echo%20out%3Bexit%203", 200, `{"error":"exit status 3","output":"out\n"}`, false},
		{"/shell?cmd=true", 200, `{}`, false},
		{"/bytes?n=5", 200, "\x00\x00\x00\x00\x00", false},
		{"/bytes?n=x", 400, "n: a byte count", true},
		{"/upload", 200, `{"error":"Unable to upload file."}`, false},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		req.Header.Set("X-Test", "yes")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		got := b.String()
		ok := got == tc.want || tc.prefix && strings.HasPrefix(got, tc.want)
		if res.StatusCode != tc.code || !ok {
			t.Errorf("%s: %d %q, want %d %q", tc.path, res.StatusCode, got, tc.code, tc.want)
		}
	}
	if got := body(t, srv.URL+"/header"); !strings.Contains(got, `"Accept-Encoding":["gzip"]`) {
		t.Errorf("/header: %s", got)
	}
}

func TestNetExecRedirect(t *testing.T) {
	srv, _ := newNetExecServer(t, "web")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		query string
		code  int
	}{{"location=/echo%3Fmsg%3Dfoobar", 302}, {"location=/echo%3Fmsg%3Dfoobar&code=307", 307}} {
		res, err := c.Get(srv.URL + "/redirect?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.code || res.Header.Get("Location") != "/echo?msg=foobar" {
			t.Errorf("%s: %d %q", tc.query, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if got := body(t, srv.URL+"/redirect?location=/echo%3Fmsg%3Dfoobar"); got != "foobar" {
		t.Errorf("followed redirect: %q", got)
	}
}

func TestNetExecUpload(t *testing.T) {
	exits := make(chan exitRequest, 1)
	dir := t.TempDir()
	n := NewNetExec(NetExecOptions{Host: "h", UploadDir: dir, Exit: func(c int, g time.Duration) { exits <- exitRequest{c, g} }})
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", "x.sh")
	_, _ = fw.Write([]byte("#!/bin/sh\necho up\n"))
	mw.Close()
	res, err := http.Post(srv.URL+"/upload", mw.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(res.Body)
	files, _ := filepath.Glob(filepath.Join(dir, "upload*"))
	if res.StatusCode != http.StatusCreated || len(files) != 1 || out.String() != `{"output":"`+files[0]+`"}` {
		t.Fatalf("/upload: %d %s, files %v", res.StatusCode, out.String(), files)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("uploaded file: %v %v", st.Mode(), err)
	}
}

func TestNetExecReadiness(t *testing.T) {
	n := NewNetExec(NetExecOptions{Host: "h"})
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	check := func(stage string, healthz, readyz int) {
		t.Helper()
		if c, _ := get(t, srv.URL+"/healthz"); c != healthz {
			t.Errorf("%s: /healthz %d, want %d", stage, c, healthz)
		}
		if c, _ := get(t, srv.URL+"/readyz"); c != readyz {
			t.Errorf("%s: /readyz %d, want %d", stage, c, readyz)
		}
	}
	check("no UDP server", 412, 412)
	n.SetReady(true)
	check("UDP server up", 200, 200)
	n.Terminate()
	check("SIGTERM", 200, 503)
	if _, b := get(t, srv.URL+"/readyz"); b != "shutting down" {
		t.Errorf("/readyz after SIGTERM: %q", b)
	}
}

func TestNetExecExit(t *testing.T) {
	srv, exits := newNetExecServer(t, "h")
	for _, tc := range []struct {
		query string
		want  *exitRequest
		body  string
	}{
		{"", &exitRequest{0, 0}, ""},
		{"code=3&timeout=2s", &exitRequest{3, 2 * time.Second}, ""},
		{"code=x", nil, "argument 'code' must be an integer [0-127] or empty, got \"x\"\n"},
		{"timeout=x", nil, "argument 'timeout' must be a valid golang duration or empty, got \"x\"\n"},
		{"wait=x", nil, "argument 'wait' must be a valid golang duration or empty, got \"x\"\n"},
	} {
		if got := body(t, srv.URL+"/exit?"+tc.query); got != tc.body {
			t.Errorf("/exit?%s: %q, want %q", tc.query, got, tc.body)
		}
		select {
		case r := <-exits:
			if tc.want == nil || r != *tc.want {
				t.Errorf("/exit?%s: exit %+v, want %+v", tc.query, r, tc.want)
			}
		default:
			if tc.want != nil {
				t.Errorf("/exit?%s: no exit", tc.query)
			}
		}
	}
	if got := body(t, srv.URL+"/shutdown"); got != "shutting down" {
		t.Errorf("/shutdown: %q", got)
	}
	select {
	case r := <-exits:
		if r.code != 0 || r.grace <= 0 {
			t.Errorf("/shutdown: exit %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Error("/shutdown did not exit")
	}
}

func TestOverride(t *testing.T) {
	o := httptest.NewServer(Override(NewNetExec(NetExecOptions{Host: "h"}).Handler(), "/echo?msg=fixed"))
	defer o.Close()
	if got := body(t, o.URL+"/hostname?x=1"); got != "fixed" {
		t.Errorf("override: %q", got)
	}
}

func TestRunNetExec(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan net.Addr, 1)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := RunNetExec(ctx, "run-1", NetExecConfig{HTTPPort: 0, UDPPort: -1, Started: func(a net.Addr) { started <- a }})
		done <- result{code, err}
	}()
	var base string
	select {
	case a := <-started:
		base = "http://" + a.String()
	case r := <-done:
		t.Fatalf("RunNetExec: %+v", r)
	}
	if got := body(t, base+"/hostname"); got != "run-1" {
		t.Errorf("/hostname: %q", got)
	}
	if c, _ := get(t, base+"/healthz"); c != 412 { // no UDP server: upstream's health fails too
		t.Errorf("/healthz without UDP: %d", c)
	}
	go func() { _, _ = http.Get(base + "/exit?code=7&timeout=1s") }()
	select {
	case r := <-done:
		if r.code != 7 || r.err != nil {
			t.Errorf("after /exit?code=7: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("/exit did not stop RunNetExec")
	}
}

func TestRunNetExecSIGTERM(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan net.Addr, 1)
	done := make(chan int, 1)
	pc := listenUDP(t)
	_, udpPort := splitURL(t, "http://"+pc.LocalAddr().String())
	pc.Close() // a free UDP port for netexec
	port, _ := strconv.Atoi(udpPort)
	go func() {
		code, _ := RunNetExec(ctx, "run-2", NetExecConfig{UDPPort: port, UDPAddresses: []string{"127.0.0.1", "127.0.0.1"}, // twice, as a hostNetwork pod's
			DelayShutdown: time.Hour, Started: func(a net.Addr) { started <- a }})
		done <- code
	}()
	var base string
	select {
	case a := <-started:
		base = "http://" + a.String()
	case code := <-done:
		t.Fatalf("RunNetExec exited %d", code)
	}
	if c, b := get(t, base+"/readyz"); c != 200 || b != "ok" {
		t.Errorf("/readyz: %d %q", c, b)
	}
	if got := askUDP(t, "127.0.0.1:"+udpPort, "hostname"); got != "run-2" {
		t.Errorf("UDP hostname: %q", got)
	}
	cancel() // SIGTERM: still serving (for --delay-shutdown), not ready
	waitFor(t, func() bool { c, _ := get(t, base+"/readyz"); return c == 503 })
	if c, _ := get(t, base+"/healthz"); c != 200 {
		t.Errorf("/healthz while terminating: %d", c)
	}
	go func() { _, _ = http.Get(base + "/shutdown") }()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after /shutdown", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("/shutdown during the shutdown delay did not stop RunNetExec")
	}
}
