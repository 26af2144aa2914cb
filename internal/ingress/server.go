package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts and limits of the data plane, named once and shared by flags and code.
const (
	// DialTimeout bounds connecting to an endpoint; a failed connect is retried
	// on another endpoint, so it is short.
	DialTimeout = 2 * time.Second
	// ResponseHeaderTimeout is how long an endpoint may take to start its
	// answer (nginx's proxy_read_timeout default, 60 s) before the client gets 504.
	ResponseHeaderTimeout = 60 * time.Second
	// EjectFor is how long an endpoint that refused a connection is skipped.
	EjectFor = 5 * time.Second
	// MaxAttempts is how many endpoints one request tries at most.
	MaxAttempts = 3
	// readHeaderTimeout bounds a client's request headers (slowloris).
	readHeaderTimeout = 30 * time.Second
	// idleTimeout closes idle client keep-alive connections.
	idleTimeout = 120 * time.Second
	// flushInterval is the longest a response of known length waits in the
	// write buffer: it goes out in one write when it fits (a flush after every
	// write would cost a syscall for the headers and one per body write).
	// Streaming responses (no Content-Length, or text/event-stream) are flushed
	// on every write regardless.
	flushInterval = 20 * time.Millisecond
	// maxIdlePerEndpoint is how many idle connections to one endpoint are kept.
	maxIdlePerEndpoint = 64
	// idleConnTimeout closes connections to endpoints idle that long.
	idleConnTimeout = 90 * time.Second
	// copyBufferSize is the size of the pooled buffers that copy response bodies.
	copyBufferSize = 32 << 10
)

// ServerOptions configure the data plane.
type ServerOptions struct {
	// Addrs are the node's addresses to listen on (the ports come from the Table).
	Addrs []netip.Addr
	// AccessLog writes one log line per request.
	AccessLog bool
	Log       *slog.Logger
	Metrics   *Metrics // nil: none
	Now       func() time.Time
}

// Server answers on every port of the current Table: it matches each request
// against the Table loaded at that moment and proxies it. Swap installs a new
// Table for the following requests and TLS handshakes; established connections
// (and websockets) are not touched, and listeners open or close only when the
// set of ports changes.
type Server struct {
	o         ServerOptions
	table     atomic.Pointer[Table]
	proxy     *httputil.ReverseProxy
	transport *http.Transport
	h1        *h1Pool // the lean path of bodiless idempotent requests
	health    *health

	mu        sync.Mutex
	ctx       context.Context
	listeners map[listenKey]*http.Server
	started   chan struct{}
}

type listenKey struct {
	port int
	tls  bool
}

// NewServer builds a Server serving an empty Table until Swap.
func NewServer(o ServerOptions) *Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, listeners: map[listenKey]*http.Server{}, health: newHealth(o.Now), started: make(chan struct{})}
	s.table.Store(&Table{})
	dial := (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	s.h1 = newH1Pool(dial, maxIdlePerEndpoint, idleConnTimeout, o.Now)
	s.transport = &http.Transport{
		DialContext:           dial,
		MaxIdleConnsPerHost:   maxIdlePerEndpoint,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: ResponseHeaderTimeout,
		DisableCompression:    true,
	}
	s.proxy = s.newReverseProxy()
	return s
}

// Table is the Table requests are matched against now.
func (s *Server) Table() *Table { return s.table.Load() }

// Swap makes t the Table of every following request and handshake, and opens
// listeners for ports it adds (closing those of ports it removes; their open
// connections finish).
func (s *Server) Swap(t *Table) {
	if t == nil {
		t = &Table{}
	}
	s.table.Store(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil {
		s.reconcileLocked()
	}
}

// Run serves until ctx ends, then shuts down the listeners (in-flight
// requests get a moment to finish).
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.reconcileLocked()
	s.mu.Unlock()
	go s.h1.sweep(ctx, idleConnTimeout/3)
	close(s.started)
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for k, srv := range s.listeners {
		_ = srv.Shutdown(shut)
		delete(s.listeners, k)
	}
	s.transport.CloseIdleConnections()
	s.h1.closeAll()
	return nil
}

// reconcileLocked opens and closes listeners to match the current Table's ports.
func (s *Server) reconcileLocked() {
	want := map[listenKey]bool{}
	for port, p := range s.table.Load().Ports {
		want[listenKey{port, p.TLS}] = true
	}
	for k, srv := range s.listeners {
		if !want[k] {
			_ = srv.Close()
			delete(s.listeners, k)
			s.o.Log.Info("ingress: stopped listening", "port", k.port, "tls", k.tls)
		}
	}
	for k := range want {
		if _, ok := s.listeners[k]; ok {
			continue
		}
		srv, err := s.listen(k)
		if err != nil {
			s.o.Log.Error("ingress: listening failed", "port", k.port, "tls", k.tls, "err", err)
			continue
		}
		s.listeners[k] = srv
	}
}

// listen opens k.port on every address with one http.Server.
func (s *Server) listen(k listenKey) (*http.Server, error) {
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{Handler: s.handler(k.port, k.tls), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
		ErrorLog: slog.NewLogLogger(s.o.Log.Handler(), slog.LevelDebug), Protocols: &protos}
	if k.tls {
		protos.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate(k.port)}
	} else {
		protos.SetUnencryptedHTTP2(true) // h2c (prior knowledge)
	}
	var lns []net.Listener
	for _, a := range s.o.Addrs {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(k.port)).String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		go func() {
			var err error
			if k.tls {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.o.Log.Error("ingress: serving failed", "addr", ln.Addr(), "err", err)
			}
		}()
		s.o.Log.Info("ingress: listening", "addr", ln.Addr().String(), "tls", k.tls)
	}
	return srv, nil
}

// getCertificate answers a handshake from the Table current at that moment, so
// a rotated Secret serves the next handshake.
func (s *Server) getCertificate(port int) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := s.table.Load().Ports[port].Certificate(hello.ServerName); c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("ingress: no certificate for %q on port %d", hello.ServerName, port)
	}
}

// handler serves one port.
func (s *Server) handler(port int, isTLS bool) http.Handler {
	portLabel := strconv.Itoa(port)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.o.Now()
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		p := s.table.Load().Ports[port]
		rt, host := p.MatchHost(r)
		st := &reqState{route: rt}
		s.serve(rec, r, st, isTLS)
		d := s.o.Now().Sub(start)
		source := ""
		if rt != nil {
			source = rt.Source
		}
		s.o.Metrics.observe(portLabel, host, source, rec.code, d)
		if s.o.AccessLog {
			s.o.Log.Info("ingress request", "remote", r.RemoteAddr, "proto", r.Proto, "method", r.Method, "host", r.Host,
				"uri", r.RequestURI, "code", rec.code, "bytes", rec.bytes, "duration", d, "route", source, "upstream", st.upstream)
		}
	})
}

// recorder notes the status code and size of a response.
type recorder struct {
	http.ResponseWriter
	code        int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
