// Package agnhost is svcnet's built-in test workload, a drop-in for Kubernetes'
// agnhost test image (registry.k8s.io/e2e-test-images/agnhost) so examples and
// Kubernetes' own e2e tests need nothing installed: netexec, serve-hostname,
// porter, test-webserver, pause, connect, dns-suffix, dns-server-list and
// etc-hosts behave as upstream's; get and load are svcnet's own. Each
// subcommand's logic lives here; cmd/svcnet only parses flags.
package agnhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

// shutdownGrace bounds how long a server waits for requests in flight when it stops.
const shutdownGrace = 5 * time.Second

// Hostname is the pod's name: $HOSTNAME (set in pods) or the host name.
func Hostname() string {
	if h := os.Getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// orDiscard is l, or a logger that drops everything when l is nil.
func orDiscard(l *log.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return l
}

// Serve runs h on addr until ctx ends.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("Started HTTP server on %s\n", ln.Addr())
	return serveOn(ctx, ln, h)
}

// serveOn serves h on ln until ctx ends, then drains requests for up to shutdownGrace.
func serveOn(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), shutdownGrace)
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
