package agnhost

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
)

// PorterServer is one server porter runs, from an environment variable
// SERVE_{PORT,TCP_PORT,UDP_PORT,TLS_PORT,SCTP_PORT}_<port>=<value>.
type PorterServer struct {
	Proto string // tcp (HTTP), udp, tls (HTTPS) or sctp
	Port  string // as written after the prefix; not checked, as upstream
	Value string // the answer to every request
}

// porterPrefixes maps porter's variable prefixes to protocols.
var porterPrefixes = []struct{ prefix, proto string }{
	{"SERVE_PORT_", "tcp"},
	{"SERVE_TCP_PORT_", "tcp"},
	{"SERVE_UDP_PORT_", "udp"},
	{"SERVE_SCTP_PORT_", "sctp"},
	{"SERVE_TLS_PORT_", "tls"},
}

// ParsePorterEnv picks porter's servers out of environ (KEY=VALUE strings, in order).
func ParsePorterEnv(environ []string) []PorterServer {
	var out []PorterServer
	for _, kv := range environ {
		key, value, _ := strings.Cut(kv, "=")
		for _, p := range porterPrefixes {
			if port, ok := strings.CutPrefix(key, p.prefix); ok {
				out = append(out, PorterServer{Proto: p.proto, Port: port, Value: value})
				break
			}
		}
	}
	return out
}

// PorterHandler answers every request with value, or with {"Method":..., "Body":value} when jsonResponse.
func PorterHandler(value string, jsonResponse bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !jsonResponse {
			fmt.Fprint(w, value)
			return
		}
		b, _ := json.Marshal(struct{ Method, Body string }{r.Method, value}) // strings only: cannot fail
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// PorterConfig is porter's command line and environment.
type PorterConfig struct {
	Servers      []PorterServer
	CertFile     string // for tls servers (CERT_FILE, default localhost.crt: see loadCert)
	KeyFile      string // KEY_FILE, default localhost.key
	JSONResponse bool
	Log          *log.Logger
}

// RunPorter runs porter's servers until ctx ends. As upstream, an HTTP(S)
// server that cannot start is logged and the others go on; a UDP one is fatal.
func RunPorter(ctx context.Context, c PorterConfig) error {
	l := orDiscard(c.Log)
	failed := make(chan error, len(c.Servers)) // one per UDP server at most
	for _, s := range c.Servers {
		addr := ":" + s.Port
		switch s.Proto {
		case "tcp", "tls":
			go func() {
				ln, err := net.Listen("tcp", addr)
				if err == nil && s.Proto == "tls" {
					ln, err = tlsListener(ln, c.CertFile, c.KeyFile)
				}
				if err == nil {
					err = serveOn(ctx, ln, PorterHandler(s.Value, c.JSONResponse))
				}
				if err != nil {
					l.Printf("%s server on port %q failed: %v", s.Proto, s.Port, err)
				}
			}()
		case "udp":
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return fmt.Errorf("UDP: failed to listen on port %s: %w", s.Port, err)
			}
			defer pc.Close()
			l.Printf("Started UDP server on port %s", s.Port)
			go func() { failed <- serveRawUDP(pc, s.Value, l) }()
		case "sctp":
			l.Printf("SCTP is not supported here: port %s is not served", s.Port)
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		if err != nil {
			return fmt.Errorf("UDP: %w", err)
		}
		return nil
	}
}
