package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// uiShutdownGrace bounds how long `svcnet ui` waits for open streams on exit.
const uiShutdownGrace = 2 * time.Second

// newUICmd is `svcnet ui`: a loopback-only proxy to the API server's topology
// page that adds the kubeconfig's credentials, since browsers cannot easily
// present client certificates (as `kubectl proxy`, limited to /ui/).
func newUICmd() *cobra.Command {
	var kubeconfig string
	var port int
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the live topology page on 127.0.0.1 (proxied to the API server's /ui/ with your kubeconfig credentials)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			h, err := uiProxy(cfg)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("--port: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Topology page: http://%s/ui/\n", ln.Addr())
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), uiShutdownGrace)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	home, _ := os.UserHomeDir()
	def := os.Getenv("KUBECONFIG")
	if def == "" {
		def = filepath.Join(home, ".kube", "config")
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", def, "kubeconfig of the cluster (its credentials are added to proxied requests)")
	cmd.Flags().IntVar(&port, "port", 8001, "local port on 127.0.0.1 (0 picks a free one)")
	return cmd
}

// uiProxy forwards /ui/ (and nothing else) to the API server with cfg's credentials.
func uiProxy(cfg *rest.Config) (http.Handler, error) {
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	target, err := url.Parse(cfg.Host)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("kubeconfig server %q: not a URL", cfg.Host)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
			r.Out.Header.Del("Authorization") // only the kubeconfig's credentials reach the server
			r.Out.Header.Del("Cookie")
		},
		Transport:     rt,
		FlushInterval: -1, // the event stream must not be buffered
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", rp)
	mux.Handle("/{$}", http.RedirectHandler("/ui/", http.StatusFound))
	return mux, nil
}
