package dns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultAllowed are the client networks answered by default: loopback and the
// private ranges pod and node networks use. Others get REFUSED (no open resolver).
var DefaultAllowed = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
}

// Server answers DNS queries: cluster names from the index, the rest forwarded.
type Server struct {
	Index     *Index
	Forwarder *Forwarder // nil: names outside the cluster get SERVFAIL
	Pods      PodMode
	Allowed   []netip.Prefix
	Log       *slog.Logger
	// Autopath, when set, walks pods' search paths server-side (see autopath.go).
	Autopath *PodIPs

	requests *prometheus.CounterVec
	latency  prometheus.Histogram
	counters sync.Map // "type/rcode" -> prometheus.Counter
	wire     wireCache
}

// RegisterMetrics adds the server's metrics (CoreDNS-like names) to reg.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "svcnet_dns_requests_total",
		Help: "DNS requests by query type and response code."}, []string{"type", "rcode"})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "svcnet_dns_request_duration_seconds",
		Help: "Time to answer a DNS request.", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)})
	reg.MustRegister(s.requests, s.latency)
	if f := s.Forwarder; f != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "svcnet_dns_cache_hits_total",
			Help: "Forwarder cache hits."}, func() float64 { return float64(f.Hits.Load()) }))
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "svcnet_dns_cache_misses_total",
			Help: "Forwarder cache misses."}, func() float64 { return float64(f.Misses.Load()) }))
	}
}

func (s *Server) allowed(addr net.Addr) bool { return s.allowedAddr(addrOf(addr)) }

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

func (s *Server) allowedAddr(ip netip.Addr) bool {
	for _, p := range s.Allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ServeDNS implements mdns.Handler (the TCP path).
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	_ = w.WriteMsg(s.respond(req, w.RemoteAddr(), tcp, nil))
}

// count records one answered request.
func (s *Server) count(qtype, rcode string, d time.Duration) {
	if s.requests == nil {
		return
	}
	k := qtype + "/" + rcode
	c, ok := s.counters.Load(k)
	if !ok {
		c, _ = s.counters.LoadOrStore(k, s.requests.WithLabelValues(qtype, rcode))
	}
	c.(prometheus.Counter).Inc()
	if d > 0 {
		s.latency.Observe(d.Seconds())
	}
}

// respond computes the full answer to req from remote (truncated for UDP) and
// keeps it for the fast path under key (the question's wire key, nil for none)
// when only the index decided it.
func (s *Server) respond(req *mdns.Msg, remote net.Addr, tcp bool, key []byte) *mdns.Msg {
	start := time.Now()
	resp, gen, cacheable := s.answer(remote, req)
	if !tcp {
		size := mdns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		resp.Truncate(size)
	}
	if o := req.IsEdns0(); o != nil && resp.IsEdns0() == nil {
		resp.SetEdns0(o.UDPSize(), o.Do())
	}
	if !tcp {
		s.remember(key, req, resp, gen, cacheable)
	}
	qt := "other"
	if len(req.Question) == 1 {
		qt = typeLabel(req.Question[0].Qtype)
	}
	s.count(qt, mdns.RcodeToString[resp.Rcode], time.Since(start))
	return resp
}

// answer computes the response; cacheable says it came from the index alone, at
// index generation gen.
func (s *Server) answer(remote net.Addr, req *mdns.Msg) (*mdns.Msg, uint64, bool) {
	fail := func(rcode int) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetRcode(req, rcode)
		return m
	}
	if len(req.Question) != 1 || req.Opcode != mdns.OpcodeQuery {
		return fail(mdns.RcodeFormatError), 0, false
	}
	if !s.allowed(remote) {
		return fail(mdns.RcodeRefused), 0, false
	}
	_, tcp := remote.(*net.TCPAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	gen := s.Index.Generation()
	res := s.Index.Answer(req, s.Pods)
	if s.Autopath != nil && res.Ours && res.Msg.Rcode == mdns.RcodeNameError {
		if ns, ok := s.Autopath.Namespace(addrOf(remote)); ok {
			if m := s.autopath(ctx, req, ns, tcp); m != nil {
				return m, 0, false
			}
		}
		return res.Msg, 0, false // an NXDOMAIN other clients may see answered
	}
	if res.Ours {
		if res.Chase != "" && s.Forwarder != nil {
			sub := new(mdns.Msg)
			sub.SetQuestion(res.Chase, req.Question[0].Qtype)
			sub.RecursionDesired = true
			if up, err := s.Forwarder.Forward(ctx, sub, tcp); err == nil {
				res.Msg.Answer = append(res.Msg.Answer, up.Answer...)
			}
			return res.Msg, 0, false
		}
		// Cacheable unless the index changed while answering (or was not synced).
		return res.Msg, gen, res.Msg.Rcode != mdns.RcodeServerFailure && s.Index.Generation() == gen
	}
	if s.Forwarder == nil {
		return fail(mdns.RcodeServerFailure), 0, false
	}
	up, err := s.Forwarder.Forward(ctx, req, tcp)
	if err != nil {
		return fail(mdns.RcodeServerFailure), 0, false
	}
	up.Id = req.Id
	return up, 0, false
}

// ListenAndServe serves UDP and TCP on addr until ctx ends. ready is closed once
// both listen.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready chan<- struct{}) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return err
	}
	tcp := &mdns.Server{Listener: l, Handler: s, ReadTimeout: 5 * time.Second}
	errs := make(chan error, 2)
	go func() { errs <- s.serveUDP(pc) }()
	go func() { errs <- tcp.ActivateAndServe() }()
	if ready != nil {
		close(ready)
	}
	if s.Forwarder != nil {
		go wait.UntilWithContext(ctx, s.Forwarder.Probe, 5*time.Second)
	}
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	_ = pc.Close()
	_ = tcp.Shutdown()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
