// Package agnhost is svcnet's built-in test workload, modelled on Kubernetes'
// agnhost image, so examples and tests need nothing installed: serve-hostname
// answers every HTTP request with the pod's name; netexec answers /hostname,
// /clientip, /echo and /shutdown over HTTP and hostname / echo / clientip over UDP.
package agnhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Hostname is the pod's name: $HOSTNAME (set in pods) or the host name.
func Hostname() string {
	if h := os.Getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// ServeHostname returns the serve-hostname handler.
func ServeHostname(host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, host)
	})
}

// NetExec returns the netexec HTTP handler; shutdown is called by /shutdown.
func NetExec(host string, shutdown func()) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, host) })
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RemoteAddr) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Query().Get("msg")) })
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) { // bulk data for throughput tests
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			http.Error(w, "n: a byte count up to 1 TiB is required", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 256*1024)
		for n > 0 {
			m := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:m]); err != nil {
				return
			}
			n -= m
		}
	})
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "shutting down")
		go shutdown()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "NOW: "+time.Now().UTC().Format(time.RFC3339Nano))
	})
	return mux
}

// UDPReply is netexec's UDP protocol: "hostname", "echo <text>", "clientip".
func UDPReply(msg string, host string, from net.Addr) string {
	msg = strings.TrimSpace(msg)
	switch {
	case msg == "hostname":
		return host
	case msg == "clientip":
		return from.String()
	case strings.HasPrefix(msg, "echo "):
		return strings.TrimPrefix(msg, "echo ")
	}
	return "unknown command: " + msg
}

// ServeUDP answers netexec UDP requests on pc until it is closed.
func ServeUDP(pc net.PacketConn, host string) error {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		_, _ = pc.WriteTo([]byte(UDPReply(string(buf[:n]), host, from)), from)
	}
}

// Serve runs h on addr until ctx ends or stop is closed.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("Started HTTP server on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Get fetches url and writes the body to w; an HTTP status other than 2xx is an error.
func Get(ctx context.Context, url string, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
