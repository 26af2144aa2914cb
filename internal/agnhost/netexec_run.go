package agnhost

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// NetExecConfig is netexec's command line.
type NetExecConfig struct {
	HTTPPort      int
	UDPPort       int      // -1 (upstream) or 0 (svcnet's older spelling): no UDP server
	UDPAddresses  []string // addresses the UDP servers bind; none: all
	SCTPPort      int      // accepted for compatibility; svcnet serves no SCTP
	CertFile      string   // serve HTTPS with this certificate (see loadCert)
	KeyFile       string
	HTTPOverride  string        // answer every request as a GET of this path
	DelayShutdown time.Duration // after SIGTERM, keep serving (readyz 503) this long
	Log           *log.Logger
	Started       func(http net.Addr) // called once serving (with port 0, says which port)
}

// exitRequest is an /exit or /shutdown: drain for grace, then exit with code.
type exitRequest struct {
	code  int
	grace time.Duration
}

// RunNetExec serves netexec until /exit or /shutdown (returning its exit code)
// or until ctx ends (SIGTERM: /readyz answers 503 while it goes on serving for
// DelayShutdown, then it returns 0).
func RunNetExec(ctx context.Context, host string, c NetExecConfig) (int, error) {
	l := orDiscard(c.Log)
	exits := make(chan exitRequest, 1)
	n := NewNetExec(NetExecOptions{Host: host, Log: c.Log, Exit: func(code int, grace time.Duration) {
		select {
		case exits <- exitRequest{code, grace}:
		default: // one is already under way
		}
	}})
	var h http.Handler = n.Handler()
	if c.HTTPOverride != "" {
		h = Override(h, c.HTTPOverride)
	}

	udpErr := make(chan error, 1)
	if c.UDPPort > 0 {
		// each address once, as upstream's set: a hostNetwork pod's
		// --udp-listen-addresses=$(HOST_IP),$(POD_IPS) names the node's IP twice
		addrs := slices.Compact(slices.Sorted(slices.Values(c.UDPAddresses)))
		if len(addrs) == 0 {
			addrs = []string{""}
		}
		for _, a := range addrs {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(a, strconv.Itoa(c.UDPPort)))
			if err != nil {
				return 1, fmt.Errorf("failed to create listener for UDP address %s: %w", a, err)
			}
			defer pc.Close()
			l.Printf("Started UDP server on port %s %d", a, c.UDPPort)
			go func() {
				if err := ServeUDP(pc, host, c.Log); err != nil {
					n.SetReady(false)
					udpErr <- err
				}
			}()
		}
		n.SetReady(true)
	}
	if c.SCTPPort > 0 {
		l.Printf("SCTP is not supported here: --sctp-port %d is ignored", c.SCTPPort)
		n.SetReady(true) // upstream's SCTP server would report ready
	}

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(c.HTTPPort))
	if err != nil {
		return 1, err
	}
	if c.CertFile != "" {
		if ln, err = tlsListener(ln, c.CertFile, c.KeyFile); err != nil {
			return 1, err
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	l.Printf("Started HTTP server on port %d", c.HTTPPort)
	if c.Started != nil {
		c.Started(ln.Addr())
	}

	stop := func(r exitRequest) (int, error) {
		if r.grace <= 0 {
			_ = srv.Close()
			return r.code, nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), r.grace)
		defer cancel()
		l.Printf("Graceful shutdown completed with: %v", srv.Shutdown(sctx))
		return r.code, nil
	}
	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return 1, err
	case err := <-udpErr:
		return 1, fmt.Errorf("failed accepting UDP connections: %w", err)
	case r := <-exits:
		return stop(r)
	case <-ctx.Done():
	}
	n.Terminate()
	if c.DelayShutdown > 0 {
		l.Printf("Sleeping %d seconds before terminating...", int(c.DelayShutdown/time.Second))
		t := time.NewTimer(c.DelayShutdown)
		defer t.Stop()
		select {
		case <-t.C:
		case r := <-exits:
			return stop(r)
		}
	}
	return stop(exitRequest{0, shutdownGrace})
}
