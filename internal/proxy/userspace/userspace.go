// Package userspace is the service proxy backend that needs no kernel rules:
// one Go listener per service port (TCP and UDP) on the cluster IP (made a
// local address when root) and on node ports. A TCP connection goes to an
// endpoint chosen at random (or the client's pinned one with ClientIP
// affinity); when the dial fails the next endpoint is tried, so a dead pod
// costs no failed connection. Bytes move with io.Copy between *net.TCPConn,
// which splices on Linux (no copies through user space).
package userspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

// Options configure the backend.
type Options struct {
	// MakeLocal makes a cluster IP an address of this node and returns its undo
	// (nil: cluster IPs are not served, as without root).
	MakeLocal func(netip.Addr) (func(), error)
	// NodePortAddresses are where node ports listen (default: all addresses).
	NodePortAddresses []netip.Addr
	RoundRobin        bool // endpoints in turn instead of at random
	DialTimeout       time.Duration
	UDPIdleTimeout    time.Duration
	Log               *slog.Logger
}

// Backend is the userspace proxy.
type Backend struct {
	o     Options
	mu    sync.Mutex
	ports map[proxy.Key]*servicePort
	ips   map[netip.Addr]func() // cluster IPs made local, with their undo
}

var _ proxy.Backend = (*Backend)(nil)

// New builds the backend.
func New(o Options) *Backend {
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	if o.UDPIdleTimeout == 0 {
		o.UDPIdleTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Backend{o: o, ports: map[proxy.Key]*servicePort{}, ips: map[netip.Addr]func(){}}
}

// Name is the --proxy-mode value of this backend.
func (b *Backend) Name() string { return "userspace" }

// servicePort is the listeners and endpoints of one service port.
type servicePort struct {
	sp        *proxy.ServicePort
	mu        sync.Mutex
	endpoints []netip.AddrPort // where new connections go
	// draining are terminating endpoints no new connection goes to: a UDP
	// session already on one stays there until the endpoint is gone, as a
	// TCP connection does.
	draining  map[netip.AddrPort]bool
	affinity  map[netip.Addr]affinityEntry
	remembers int // affinity entries written: expired ones are swept every 1024
	next      int // round-robin position
	closers   []io.Closer
	log       *slog.Logger
	o         *Options
}

type affinityEntry struct {
	ep   netip.AddrPort
	last time.Time
}

// Sync opens, updates and closes listeners to match the state.
func (b *Backend) Sync(st *proxy.State, changed []proxy.Key, full bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if full {
		changed = nil
		for k := range st.Services {
			changed = append(changed, k)
		}
		for k := range b.ports {
			if _, ok := st.Services[k]; !ok {
				changed = append(changed, k)
			}
		}
	}
	var errs []error
	for _, k := range changed {
		sp, ok := st.Services[k]
		cur := b.ports[k]
		if !ok || sp.Port == 0 || sp.NodeLocal { // another proxy's, or a listener of this node answers
			if cur != nil {
				cur.close()
				delete(b.ports, k)
			}
			continue
		}
		var eps []netip.AddrPort
		for _, e := range proxy.Usable(st.Endpoints[k], sp.InternalLocal) {
			eps = append(eps, e.Addr)
		}
		draining := drainingEndpoints(st.Endpoints[k], sp.InternalLocal)
		if cur != nil && sameListen(cur.sp, sp) {
			cur.set(sp, eps, draining)
			continue
		}
		if cur != nil {
			cur.close()
			delete(b.ports, k)
		}
		p := &servicePort{sp: sp, affinity: map[netip.Addr]affinityEntry{}, log: b.o.Log.With("service", k.String()), o: &b.o}
		p.set(sp, eps, draining)
		if err := b.open(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		b.ports[k] = p
	}
	b.releaseIPs(st)
	return errors.Join(errs...)
}

// sameListen reports whether a port's listeners can stay as they are.
func sameListen(a, b *proxy.ServicePort) bool {
	return a.ClusterIP == b.ClusterIP && a.Port == b.Port && a.NodePort == b.NodePort && a.Protocol == b.Protocol &&
		fmt.Sprint(a.ExternalIPs, a.LoadBalancerIPs) == fmt.Sprint(b.ExternalIPs, b.LoadBalancerIPs) && a.AffinityTimeout == b.AffinityTimeout
}

// open starts the listeners of a port: cluster, external and LB IPs, node port.
func (b *Backend) open(p *servicePort) error {
	var addrs []netip.AddrPort
	if b.o.MakeLocal != nil {
		for _, ip := range append(append([]netip.Addr{p.sp.ClusterIP}, p.sp.ExternalIPs...), p.sp.LoadBalancerIPs...) {
			if _, ok := b.ips[ip]; !ok {
				undo, err := b.o.MakeLocal(ip)
				if err != nil {
					return err
				}
				b.ips[ip] = undo
			}
			addrs = append(addrs, netip.AddrPortFrom(ip, uint16(p.sp.Port)))
		}
	}
	if p.sp.NodePort != 0 {
		nodeAddrs := b.o.NodePortAddresses
		if len(nodeAddrs) == 0 {
			nodeAddrs = []netip.Addr{netip.IPv4Unspecified()}
		}
		for _, a := range nodeAddrs {
			addrs = append(addrs, netip.AddrPortFrom(a, uint16(p.sp.NodePort)))
		}
	}
	for _, a := range addrs {
		if err := p.listen(a); err != nil {
			return err
		}
	}
	return nil
}

// releaseIPs removes local cluster IPs no service port uses any more.
func (b *Backend) releaseIPs(st *proxy.State) {
	used := map[netip.Addr]bool{}
	for _, p := range b.ports {
		used[p.sp.ClusterIP] = true
		for _, ip := range append(append([]netip.Addr{}, p.sp.ExternalIPs...), p.sp.LoadBalancerIPs...) {
			used[ip] = true
		}
	}
	for ip, undo := range b.ips {
		if !used[ip] {
			undo()
			delete(b.ips, ip)
		}
	}
}

// Cleanup closes every listener and removes the addresses it added.
func (b *Backend) Cleanup() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, p := range b.ports {
		p.close()
		delete(b.ports, k)
	}
	for ip, undo := range b.ips {
		undo()
		delete(b.ips, ip)
	}
	return nil
}

// drainingEndpoints are the terminating endpoints of a service port (on this
// node only, with local), which established sessions may keep using.
func drainingEndpoints(eps []proxy.Endpoint, local bool) map[netip.AddrPort]bool {
	var out map[netip.AddrPort]bool
	for _, e := range eps {
		if e.Terminating && (!local || e.Local) {
			if out == nil {
				out = map[netip.AddrPort]bool{}
			}
			out[e.Addr] = true
		}
	}
	return out
}

// set takes a new version of the service port (its listeners unchanged) and
// its endpoints; under the lock, as connections read them.
func (p *servicePort) set(sp *proxy.ServicePort, eps []netip.AddrPort, draining map[netip.AddrPort]bool) {
	p.mu.Lock()
	p.sp, p.endpoints, p.draining = sp, eps, draining
	p.mu.Unlock()
}

func (p *servicePort) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.closers {
		c.Close()
	}
	p.closers = nil
}

// candidates is the order endpoints are tried for a client: its pinned one
// first (affinity), then from a random start.
func (p *servicePort) candidates(client netip.Addr) []netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.endpoints)
	if n == 0 {
		return nil
	}
	out := make([]netip.AddrPort, 0, n)
	start := rand.IntN(n)
	if p.o.RoundRobin {
		start = p.next % n
		p.next++
	}
	if p.sp.AffinityTimeout > 0 {
		if a, ok := p.affinity[client]; ok && time.Since(a.last) < time.Duration(p.sp.AffinityTimeout)*time.Second {
			for i, e := range p.endpoints {
				if e == a.ep {
					start = i
				}
			}
		}
	}
	for i := 0; i < n; i++ {
		out = append(out, p.endpoints[(start+i)%n])
	}
	return out
}

func (p *servicePort) remember(client netip.Addr, ep netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sp.AffinityTimeout == 0 {
		return
	}
	now := time.Now()
	p.affinity[client] = affinityEntry{ep: ep, last: now}
	if p.remembers++; p.remembers%1024 == 0 {
		for c, a := range p.affinity {
			if now.Sub(a.last) >= time.Duration(p.sp.AffinityTimeout)*time.Second {
				delete(p.affinity, c)
			}
		}
	}
}

func (p *servicePort) listen(a netip.AddrPort) error {
	var c io.Closer
	if p.sp.Protocol == corev1.ProtocolUDP {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		if err != nil {
			return err
		}
		c = pc
		go p.serveUDP(pc)
	} else {
		ln, err := net.Listen("tcp", a.String())
		if err != nil {
			return err
		}
		c = ln
		go p.serveTCP(ln)
	}
	p.mu.Lock()
	p.closers = append(p.closers, c)
	p.mu.Unlock()
	return nil
}

func (p *servicePort) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c.(*net.TCPConn))
	}
}

// firstWait is how long forward waits for the client's first bytes before
// connecting anyway (protocols where the server speaks first).
const firstWait = 50 * time.Millisecond

// forward connects a client to the first endpoint that accepts, then copies
// both ways (splice between the two sockets on Linux). The client's first
// bytes (the request, usually) are held until an endpoint answers: an
// endpoint that accepts and then closes without a byte of reply (a process
// dying or just restarting) is replaced by the next one, request and all.
func (p *servicePort) forward(client *net.TCPConn) {
	defer client.Close()
	from := client.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	first := make([]byte, 64*1024)
	_ = client.SetReadDeadline(time.Now().Add(firstWait))
	n, err := client.Read(first)
	_ = client.SetReadDeadline(time.Time{})
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return // the client went away before saying anything
	}
	first = first[:n]
	var up *net.TCPConn
	var reply []byte
	for _, ep := range p.candidates(from) {
		d := net.Dialer{Timeout: p.o.DialTimeout}
		c, err := d.Dial("tcp", ep.String())
		if err != nil {
			p.log.Debug("endpoint refused a connection; trying the next", "endpoint", ep, "err", err)
			continue
		}
		conn := c.(*net.TCPConn)
		if len(first) == 0 {
			up = conn
			p.remember(from, ep)
			break
		}
		if _, err := conn.Write(first); err != nil {
			conn.Close()
			continue
		}
		buf := make([]byte, 32*1024)
		m, err := conn.Read(buf) // the first byte of the reply proves the endpoint alive
		if m == 0 && err != nil {
			p.log.Debug("endpoint closed before replying; trying the next", "endpoint", ep, "err", err)
			conn.Close()
			continue
		}
		up, reply = conn, buf[:m]
		p.remember(from, ep)
		break
	}
	if up == nil {
		_ = client.SetLinger(0) // no endpoint: reset, like the kernel path's reject
		return
	}
	defer up.Close()
	if len(reply) > 0 {
		if _, err := client.Write(reply); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, client)
		_ = up.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(client, up)
	_ = client.CloseWrite()
	<-done
}

// serveUDP relays datagrams: one upstream socket per client address, closed
// after UDPIdleTimeout without traffic.
func (p *servicePort) serveUDP(pc *net.UDPConn) {
	type session struct {
		up   *net.UDPConn
		last time.Time
	}
	var mu sync.Mutex
	sessions := map[netip.AddrPort]*session{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // reap idle sessions
		t := time.NewTicker(p.o.UDPIdleTimeout / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			for k, s := range sessions {
				if time.Since(s.last) > p.o.UDPIdleTimeout {
					s.up.Close()
					delete(sessions, k)
				}
			}
			mu.Unlock()
		}
	}()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			mu.Lock()
			for _, s := range sessions {
				s.up.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		s := sessions[from]
		if s != nil && !p.has(s.up.RemoteAddr().(*net.UDPAddr).AddrPort()) { // its endpoint is gone (or not ready)
			s.up.Close()
			delete(sessions, from)
			s = nil
		}
		if s == nil {
			for _, ep := range p.candidates(from.Addr().Unmap()) {
				up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ep))
				if err != nil {
					continue
				}
				p.remember(from.Addr().Unmap(), ep)
				s = &session{up: up}
				sessions[from] = s
				go func(client netip.AddrPort, up *net.UDPConn) {
					rb := make([]byte, 65535)
					for {
						n, err := up.Read(rb)
						if err != nil {
							return
						}
						_, _ = pc.WriteToUDPAddrPort(rb[:n], client)
					}
				}(from, up)
				break
			}
		}
		if s != nil {
			s.last = time.Now()
			_, _ = s.up.Write(buf[:n])
		}
		mu.Unlock()
	}
}

// has reports whether an established session may stay on ep: new ones go to
// it, or it is terminating (still there).
func (p *servicePort) has(ep netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining[ep] {
		return true
	}
	for _, e := range p.endpoints {
		if e == ep {
			return true
		}
	}
	return false
}
