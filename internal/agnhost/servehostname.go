package agnhost

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
)

// ServeHostnameConfig is serve-hostname's command line (upstream's flags).
type ServeHostnameConfig struct {
	Port  int
	TCP   bool // raw TCP: write the name and close
	UDP   bool // raw UDP: answer every datagram with the name
	HTTP  bool // HTTP (upstream's default); not together with TCP or UDP
	Close bool // HTTP: Connection: close on every answer
	Log   *log.Logger
}

// ServeHostname returns the serve-hostname HTTP handler: every request gets host.
func ServeHostname(host string, closeConn bool, l *log.Logger) http.Handler {
	l = orDiscard(l)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.Printf("HTTP request from %s", r.RemoteAddr)
		if closeConn {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprint(w, host)
	})
}

// RunServeHostname serves host on the configured protocols until ctx ends.
// Upstream lingers 60s after SIGTERM; svcnet's returns at once, so deleting a
// pod does not wait for its grace period.
func RunServeHostname(ctx context.Context, host string, c ServeHostnameConfig) error {
	if c.HTTP && (c.TCP || c.UDP) {
		return errors.New("can't serve TCP/UDP mode and HTTP mode at the same time")
	}
	l := orDiscard(c.Log)
	addr := ":" + strconv.Itoa(c.Port)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, 3)
	if c.TCP {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() { failed <- serveRawTCP(ln, host, l) }()
	}
	if c.UDP {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		defer pc.Close()
		go func() { failed <- serveRawUDP(pc, host, l) }()
	}
	if c.HTTP {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		go func() { failed <- serveOn(ctx, ln, ServeHostname(host, c.Close, c.Log)) }()
	}
	l.Printf("Serving on port %d.", c.Port)
	select {
	case <-ctx.Done():
		l.Printf("Shutting down after receiving signal.")
		return nil
	case err := <-failed:
		if err == nil && ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// serveRawTCP writes host to every connection and closes it.
func serveRawTCP(ln net.Listener, host string, l *log.Logger) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		l.Printf("TCP request from %s", c.RemoteAddr())
		_, _ = c.Write([]byte(host))
		c.Close()
	}
}

// serveRawUDP answers every datagram with host.
func serveRawUDP(pc net.PacketConn, host string, l *log.Logger) error {
	var buf [16]byte
	for {
		_, from, err := pc.ReadFrom(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		l.Printf("UDP request from %s", from)
		_, _ = pc.WriteTo([]byte(host), from)
	}
}
