package apilb

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// server answers every connection with its name and closes it.
func server(t *testing.T, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

func ask(t *testing.T, b *Balancer) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(b.URL(), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _ := io.ReadAll(c)
	return string(out)
}

func TestFailover(t *testing.T) {
	a, b, c := server(t, "a"), server(t, "b"), server(t, "c")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lb, err := Start(ctx, []string{a.Addr().String(), b.Addr().String(), c.Addr().String()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		stop string // server to stop before asking
		want string
	}{
		{"", "a"},  // the first server while it answers
		{"", "a"},  // and it stays
		{"a", "b"}, // a gone: the next one
		{"", "b"},  // b stays current (no return to a)
		{"b", "c"},
		{"c", ""}, // none answers: the connection is closed
	}
	listeners := map[string]net.Listener{"a": a, "b": b, "c": c}
	for i, s := range steps {
		if s.stop != "" {
			listeners[s.stop].Close()
		}
		if got := ask(t, lb); got != s.want {
			t.Fatalf("step %d (stop %q): answered by %q, want %q", i, s.stop, got, s.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // joined, or the error's text
	}{
		{[]string{"https://10.0.0.1:6443", "https://node2:6443/"}, "10.0.0.1:6443 node2:6443"},
		{[]string{"http://10.0.0.1:6443"}, `--server: "http://10.0.0.1:6443" is not an https://host:port URL`},
		{[]string{"https://10.0.0.1"}, `--server: "https://10.0.0.1" is not an https://host:port URL`},
		{[]string{"https://10.0.0.1:6443/api"}, `--server: "https://10.0.0.1:6443/api" is not an https://host:port URL`},
		{nil, "--server: no API server"},
	} {
		got, err := Addresses("--server", tc.in)
		s := strings.Join(got, " ")
		if err != nil {
			s = err.Error()
		}
		if s != tc.want {
			t.Errorf("Addresses(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}
