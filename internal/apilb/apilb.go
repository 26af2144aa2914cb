// Package apilb lets a node agent use several API servers (a control plane
// of three `svcnet server`s): a loopback TCP proxy the agent's client talks
// to, which sends each new connection to the server that answered last and
// moves on to the next one when that server does not answer, as k3s's agent
// load balancer does. TLS passes through untouched: the client still checks
// the server's certificate (every svcnet server's names 127.0.0.1) and
// authenticates with its own.
package apilb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"
)

// Balancer is a running failover proxy.
type Balancer struct {
	servers []string // host:port
	ln      net.Listener
	log     *slog.Logger
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	mu  sync.Mutex
	cur int // index of the server that answered last
}

// Addresses turns API server URLs (https://host:port) into host:port, naming
// the flag in its error.
func Addresses(flag string, urls []string) ([]string, error) {
	var out []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%s: %q is not an https://host:port URL", flag, s)
		}
		out = append(out, u.Host)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no API server", flag)
	}
	return out, nil
}

// Start listens on a free loopback port and proxies to servers (host:port)
// until ctx ends.
func Start(ctx context.Context, servers []string, log *slog.Logger) (*Balancer, error) {
	if len(servers) == 0 {
		return nil, errors.New("apilb: no API server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	b := &Balancer{servers: servers, ln: ln, log: log, dial: d.DialContext}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go b.serve(ctx)
	return b, nil
}

// URL is the https URL clients use instead of the servers'.
func (b *Balancer) URL() string { return "https://" + b.ln.Addr().String() }

func (b *Balancer) serve(ctx context.Context) {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return // closed: ctx ended
		}
		go b.handle(ctx, c)
	}
}

// handle connects c to the first server that answers, starting with the one
// that answered last, and copies both ways until either side closes.
func (b *Balancer) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	up, err := b.connect(ctx)
	if err != nil {
		b.log.Warn("no API server answers", "servers", b.servers, "err", err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // one side ended: the other ends when its peer closes (or now, below)
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(30 * time.Second): // a half-closed peer that never finishes
	}
}

// connect dials the servers in turn from the current one; the first that
// answers becomes current.
func (b *Balancer) connect(ctx context.Context) (net.Conn, error) {
	b.mu.Lock()
	start := b.cur
	b.mu.Unlock()
	var errs []error
	for i := range b.servers {
		n := (start + i) % len(b.servers)
		conn, err := b.dial(ctx, "tcp", b.servers[n])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n != start {
			b.mu.Lock()
			b.cur = n
			b.mu.Unlock()
			b.log.Info("API server failover", "from", b.servers[start], "to", b.servers[n])
		}
		return conn, nil
	}
	return nil, errors.Join(errs...)
}
