package dns

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// upstream is one resolver from the node's resolv.conf.
type upstream struct {
	addr      string
	downUntil atomic.Int64 // unix nanos; set after a failure
}

// Forwarder sends names outside the cluster zone to the node's upstream
// resolvers, in resolv.conf order, skipping ones that just failed (they are
// probed again in the background), with a small TTL-respecting cache.
type Forwarder struct {
	upstreams []*upstream // from the node's resolv.conf
	routes    atomic.Pointer[routes]
	timeout   time.Duration
	cache     *answerCache
	now       func() time.Time
	// Hits and Misses count cache lookups.
	Hits, Misses atomic.Int64
}

// NewForwarder forwards to servers ("ip:port"); cacheSize 0 disables the cache.
func NewForwarder(servers []string, cacheSize int) *Forwarder {
	f := &Forwarder{timeout: 2 * time.Second, now: time.Now}
	for _, s := range servers {
		f.upstreams = append(f.upstreams, &upstream{addr: s})
	}
	if cacheSize > 0 {
		f.cache = &answerCache{max: cacheSize, m: map[string]cacheEntry{}}
	}
	return f
}

// UpstreamsFromResolvConf reads nameservers from a resolv.conf file, leaving out
// addresses in skip (the cluster DNS itself, to avoid loops).
func UpstreamsFromResolvConf(path string, skip ...string) ([]string, error) {
	cfg, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range cfg.Servers {
		drop := false
		for _, k := range skip {
			drop = drop || s == k
		}
		if !drop {
			out = append(out, net.JoinHostPort(s, cfg.Port))
		}
	}
	return out, nil
}

// ErrNoUpstream says no upstream answered.
var ErrNoUpstream = errors.New("no upstream resolver answered")

// Forward resolves req upstream (over TCP when tcp, or when UDP was truncated).
func (f *Forwarder) Forward(ctx context.Context, req *mdns.Msg, tcp bool) (*mdns.Msg, error) {
	key := cacheKey(req)
	if f.cache != nil {
		if m, ok := f.cache.get(key, f.now()); ok {
			f.Hits.Add(1)
			m.Id = req.Id
			return m, nil
		}
		f.Misses.Add(1)
	}
	now := f.now().UnixNano()
	lastErr := ErrNoUpstream
	tried := 0
	ups := f.upstreamsFor(req.Question[0].Name)
	for pass := 0; pass < 2 && tried == 0; pass++ {
		for _, u := range ups {
			if pass == 0 && u.downUntil.Load() > now {
				continue // recently failed: try the healthy ones first
			}
			tried++
			m, err := f.exchange(ctx, u.addr, req, tcp)
			if err != nil {
				u.downUntil.Store(f.now().Add(5 * time.Second).UnixNano())
				lastErr = err
				continue
			}
			u.downUntil.Store(0)
			if f.cache != nil && (m.Rcode == mdns.RcodeSuccess || m.Rcode == mdns.RcodeNameError) && !m.Truncated {
				f.cache.put(key, m, f.now())
			}
			return m, nil
		}
	}
	return nil, lastErr
}

func (f *Forwarder) exchange(ctx context.Context, addr string, req *mdns.Msg, tcp bool) (*mdns.Msg, error) {
	c := &mdns.Client{Net: "udp", Timeout: f.timeout}
	if tcp {
		c.Net = "tcp"
	}
	m, _, err := c.ExchangeContext(ctx, req, addr)
	if err == nil && m.Truncated && !tcp {
		c.Net = "tcp"
		m, _, err = c.ExchangeContext(ctx, req, addr)
	}
	return m, err
}

// Probe checks upstreams marked down and clears the ones that answer again.
func (f *Forwarder) Probe(ctx context.Context) {
	q := new(mdns.Msg)
	q.SetQuestion(".", mdns.TypeNS)
	for _, u := range f.all() {
		if u.downUntil.Load() == 0 {
			continue
		}
		if _, err := f.exchange(ctx, u.addr, q, false); err == nil {
			u.downUntil.Store(0)
		}
	}
}

func cacheKey(m *mdns.Msg) string {
	q := m.Question[0]
	do := "0"
	if o := m.IsEdns0(); o != nil && o.Do() {
		do = "1"
	}
	return strings.ToLower(q.Name) + "/" + strconv.Itoa(int(q.Qtype)) + "/" + strconv.Itoa(int(q.Qclass)) + "/" + do
}

type cacheEntry struct {
	msg     *mdns.Msg
	stored  time.Time
	expires time.Time
}

// answerCache is a bounded TTL cache of upstream answers (random eviction when full).
type answerCache struct {
	mu  sync.Mutex
	max int
	m   map[string]cacheEntry
}

func minTTL(m *mdns.Msg) uint32 {
	ttl := uint32(300)
	for _, sec := range [][]mdns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == mdns.TypeOPT {
				continue
			}
			if t := rr.Header().Ttl; t < ttl {
				ttl = t
			}
			if soa, ok := rr.(*mdns.SOA); ok && len(m.Answer) == 0 && soa.Minttl < ttl {
				ttl = soa.Minttl
			}
		}
	}
	return ttl
}

func (c *answerCache) put(key string, m *mdns.Msg, now time.Time) {
	ttl := minTTL(m)
	if ttl == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // map order is random: evict one
			delete(c.m, k)
			break
		}
	}
	c.m[key] = cacheEntry{msg: m.Copy(), stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}
}

func (c *answerCache) get(key string, now time.Time) (*mdns.Msg, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored).Seconds())
	for _, sec := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype != mdns.TypeOPT && h.Ttl > age {
				h.Ttl -= age
			}
		}
	}
	return m, true
}
