// Package drain orders a terminating pod's signals after its removal from the
// node's data paths. Kubernetes loses requests in a rolling update without a
// preStop sleep (k/k #43576): the kubelet sends SIGTERM while kube-proxy may
// still be sending the pod new connections. Here the pod runtime and the
// proxies live in one agent, so each data path (the service proxy, the
// ingress) reports the pod IPs that are a ready endpoint in what it has
// programmed, and the runtime waits (Wait) until none does before it signals
// the containers.
package drain

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// MaxWait bounds how long a terminating pod waits for the data paths; the
// wait never takes more than half the pod's grace period either (MaxWait).
const MaxWait = 10 * time.Second

// RemoteDelay is the extra wait for the proxies of other nodes, which this
// agent cannot observe: they see the same EndpointSlice update from the same
// watch, and program it within milliseconds as this node's proxy does.
const RemoteDelay = time.Second

// Limit is how long a pod with grace period grace may wait: MaxWait, at most
// half its grace period (the rest is its own to shut down in).
func Limit(grace time.Duration) time.Duration { return min(MaxWait, grace/2) }

// Begin runs wait for a deleted pod's ip in the background, bounded by
// Limit(grace), and closes done when it is over; at once when there is
// nothing to wait for (no wait, no ip: a pod without one or on the node's own).
func Begin(wait func(ctx context.Context, ip string), ip string, grace time.Duration, done chan<- struct{}) {
	limit := Limit(grace)
	if wait == nil || ip == "" || limit <= 0 {
		close(done)
		return
	}
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		wait(ctx, ip)
	}()
}

// Paths is what the node's data paths route new connections to. Each path
// reports, after each programming of its rules, the ready endpoints' IPs (a
// count per IP: an IP can be the endpoint of several service ports).
type Paths struct {
	mu       sync.Mutex
	expected map[string]bool                       // paths that must report before any IP counts as unrouted
	counts   map[string]map[netip.Addr]int         // path -> IP -> ready endpoints programmed
	waiters  map[netip.Addr]map[chan struct{}]bool // woken when an IP may be unrouted
}

// NewPaths returns an empty set of paths.
func NewPaths() *Paths {
	return &Paths{expected: map[string]bool{}, counts: map[string]map[netip.Addr]int{}, waiters: map[netip.Addr]map[chan struct{}]bool{}}
}

// Expect declares a path that will report: until it has (its first sync), no
// IP is unrouted, since the rules a previous agent left may still route it.
func (p *Paths) Expect(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.counts[path]; !ok {
		p.expected[path] = true
	}
}

// Replace sets everything path routes to (a full sync).
func (p *Paths) Replace(path string, ready map[netip.Addr]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := make(map[netip.Addr]int, len(ready))
	for ip, n := range ready {
		if n > 0 {
			cur[ip] = n
		}
	}
	p.counts[path] = cur
	delete(p.expected, path)
	for ip := range p.waiters { // few: only terminating pods wait
		p.wakeLocked(ip)
	}
}

// Update changes the counts of path by delta (a partial sync): +1 for each
// ready endpoint added, -1 for each one removed.
func (p *Paths) Update(path string, delta map[netip.Addr]int) {
	if len(delta) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.counts[path]
	if cur == nil {
		cur = map[netip.Addr]int{}
		p.counts[path] = cur
	}
	for ip, d := range delta {
		n := cur[ip] + d
		if n > 0 {
			cur[ip] = n
			continue
		}
		delete(cur, ip)
		if d < 0 {
			p.wakeLocked(ip)
		}
	}
}

// Forget drops a path that stopped (a proxy backend switched off): it routes nothing.
func (p *Paths) Forget(path string) {
	p.Replace(path, nil)
	p.mu.Lock()
	delete(p.counts, path)
	p.mu.Unlock()
}

// routedLocked reports whether a path still routes ip, or one has not reported yet.
func (p *Paths) routedLocked(ip netip.Addr) bool {
	if len(p.expected) > 0 {
		return true
	}
	for _, c := range p.counts {
		if c[ip] > 0 {
			return true
		}
	}
	return false
}

// Routed reports whether any path may still send ip new connections.
func (p *Paths) Routed(ip netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.routedLocked(ip)
}

func (p *Paths) wakeLocked(ip netip.Addr) {
	for ch := range p.waiters[ip] {
		close(ch)
	}
	delete(p.waiters, ip)
}

// Wait returns nil once no path routes new connections to ip, or ctx's error
// when it ends first.
func (p *Paths) Wait(ctx context.Context, ip netip.Addr) error {
	for {
		p.mu.Lock()
		if !p.routedLocked(ip) {
			p.mu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		if p.waiters[ip] == nil {
			p.waiters[ip] = map[chan struct{}]bool{}
		}
		p.waiters[ip][ch] = true
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			delete(p.waiters[ip], ch)
			if len(p.waiters[ip]) == 0 {
				delete(p.waiters, ip)
			}
			p.mu.Unlock()
			return ctx.Err()
		}
	}
}
