package ingress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// h1Pool is a lean HTTP/1.1 client for the common upstream request (GET,
// HEAD or OPTIONS without a body, not an upgrade): it writes the request and
// reads the answer on the calling goroutine over a kept-alive connection per
// endpoint. http.Transport runs a read and a write goroutine per connection,
// two goroutine hand-offs per request, which bench/ingress measured as the
// largest cost of a small keep-alive request after the syscalls. Every other
// request (bodies, upgrades) goes through http.Transport. 1xx answers are
// skipped (not forwarded).
type h1Pool struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle int           // idle connections kept per endpoint
	idleFor time.Duration // idle connections older than this are closed
	now     func() time.Time

	mu   sync.Mutex
	idle map[netip.AddrPort][]*h1Conn
}

type h1Conn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it went idle
}

func newH1Pool(dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, idleFor time.Duration, now func() time.Time) *h1Pool {
	return &h1Pool{dial: dial, maxIdle: maxIdle, idleFor: idleFor, now: now, idle: map[netip.AddrPort][]*h1Conn{}}
}

// lean reports whether req can take the lean path.
func lean(req *http.Request) bool {
	return (req.Body == nil || req.Body == http.NoBody) && idempotent(req) && req.Header.Get("Upgrade") == ""
}

// get takes an idle connection to ep (most recently used first), or nil.
func (p *h1Pool) get(ep netip.AddrPort) *h1Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.idle[ep]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	cs[len(cs)-1] = nil
	p.idle[ep] = cs[:len(cs)-1]
	return c
}

// put keeps c for the next request to ep (closing it when enough are kept).
func (p *h1Pool) put(ep netip.AddrPort, c *h1Conn) {
	c.used = p.now()
	p.mu.Lock()
	if len(p.idle[ep]) < p.maxIdle {
		p.idle[ep] = append(p.idle[ep], c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// closeAll closes every idle connection.
func (p *h1Pool) closeAll() { p.closeIdle(time.Time{}) }

// closeIdle closes the idle connections unused since before (the zero time: all).
func (p *h1Pool) closeIdle(before time.Time) {
	var closing []*h1Conn
	p.mu.Lock()
	for ep, cs := range p.idle {
		keep := cs[:0]
		for _, c := range cs {
			if before.IsZero() || c.used.Before(before) {
				closing = append(closing, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(cs[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, ep)
		} else {
			p.idle[ep] = keep
		}
	}
	p.mu.Unlock()
	for _, c := range closing {
		c.nc.Close()
	}
}

// sweep closes connections idle for longer than idleFor until ctx ends.
func (p *h1Pool) sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.closeIdle(p.now().Add(-p.idleFor))
		}
	}
}

// errNothingRead marks a failure on a reused connection before any answer
// byte: the endpoint closed it while idle, so a new connection is tried.
var errNothingRead = errors.New("connection closed before an answer")

// roundTrip sends req (lean(req) holds) to ep.
func (p *h1Pool) roundTrip(req *http.Request, ep netip.AddrPort) (*http.Response, error) {
	ctx := req.Context()
	if c := p.get(ep); c != nil {
		resp, err := p.exchange(ctx, req, ep, c, true)
		if !errors.Is(err, errNothingRead) {
			return resp, err
		}
	}
	nc, err := p.dial(ctx, "tcp", ep.String())
	if err != nil {
		return nil, err
	}
	c := &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096)}
	resp, err := p.exchange(ctx, req, ep, c, false)
	if errors.Is(err, errNothingRead) {
		err = io.ErrUnexpectedEOF
	}
	return resp, err
}

// exchange writes req on c and reads the answer's header; the body returns c
// to the pool once read to its end.
func (p *h1Pool) exchange(ctx context.Context, req *http.Request, ep netip.AddrPort, c *h1Conn, reused bool) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	_ = c.nc.SetReadDeadline(p.now().Add(ResponseHeaderTimeout))
	if err := req.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		if reused {
			err = errors.Join(errNothingRead, err)
		}
		return fail(err)
	}
	for {
		if _, err := c.br.Peek(1); err != nil {
			if reused {
				err = errors.Join(errNothingRead, err)
			}
			return fail(err)
		}
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // informational: the final answer follows
		}
		_ = c.nc.SetReadDeadline(time.Time{})
		resp.Body = &h1Body{rc: resp.Body, empty: resp.Body == http.NoBody || resp.ContentLength == 0,
			keep: !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols, p: p, ep: ep, c: c, stop: stop}
		return resp, nil
	}
}

// h1Body is an answer's body; read to its end it gives the connection back.
type h1Body struct {
	rc    io.ReadCloser
	empty bool // nothing to read: reusable at Close
	keep  bool // the endpoint keeps the connection open
	p     *h1Pool
	ep    netip.AddrPort
	c     *h1Conn
	stop  func() bool
	done  bool
}

func (b *h1Body) Read(buf []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(buf)
	if err == io.EOF {
		b.release(true)
	} else if err != nil {
		b.release(false)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		b.release(b.empty)
	}
	return nil
}

// release returns the connection to the pool when the whole answer was read
// and no cancellation touched it, else closes it. Bytes already read past the
// answer (a body on a HEAD or 204 answer, a second answer) mean the endpoint
// and the pool disagree on framing: the next request would read them as its
// answer, so the connection is closed.
func (b *h1Body) release(complete bool) {
	b.done = true
	if b.stop() && complete && b.keep && b.c.br.Buffered() == 0 {
		b.p.put(b.ep, b.c)
		return
	}
	b.c.nc.Close()
}
