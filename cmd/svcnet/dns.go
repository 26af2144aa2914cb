package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/internal/dns"
)

func newDNSCmd() *cobra.Command {
	var kubeconfig, listen, zone, resolvConf, pods, metricsAddr string
	var ttl uint32
	var autopath bool
	var cacheSize int
	var allow []string
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Run the cluster DNS server standalone (Kubernetes DNS specification, forwarding other names)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var mode dns.PodMode
			switch pods {
			case "disabled":
			case "insecure":
				mode = dns.PodsInsecure
			default:
				return fmt.Errorf("--pods: %q is not one of disabled, insecure", pods)
			}
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return fmt.Errorf("--listen: %v", err)
			}
			var allowed []netip.Prefix
			for _, a := range allow {
				p, err := netip.ParsePrefix(a)
				if err != nil {
					return fmt.Errorf("--allow: %v", err)
				}
				allowed = append(allowed, p)
			}
			if ttl == 0 || ttl > 3600 {
				return fmt.Errorf("--ttl: %d is not between 1 and 3600", ttl)
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			cfg.QPS, cfg.Burst = 100, 200
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			var fw *dns.Forwarder
			if resolvConf != "" {
				ups, err := dns.UpstreamsFromResolvConf(resolvConf)
				if err != nil {
					return fmt.Errorf("--resolv-conf: %w", err)
				}
				fw = dns.NewForwarder(ups, cacheSize)
			}
			if os.Getenv("GOGC") == "" {
				// A node-local DNS has a small live heap and a steady stream of
				// short-lived garbage: collect at +50% instead of +100% to keep
				// the resident size down, at a small CPU cost.
				debug.SetGCPercent(50)
			}
			log := slog.Default()
			ix := dns.NewIndex(zone, ttl)
			srv := &dns.Server{Index: ix, Forwarder: fw, Pods: mode, Allowed: allowed, Log: log}
			if autopath {
				srv.Autopath = &dns.PodIPs{}
			}
			reg := prometheus.NewRegistry()
			srv.RegisterMetrics(reg)
			ctx := cmd.Context()
			dns.RunWithClient(ctx, client, ix, log, srv.Autopath)
			if metricsAddr != "" {
				mux := http.NewServeMux()
				mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
					if !ix.Synced() {
						http.Error(w, "not synced", http.StatusServiceUnavailable)
						return
					}
					_, _ = w.Write([]byte("OK"))
				})
				hs := &http.Server{Addr: metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
				go func() {
					if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error("metrics server", "err", err)
					}
				}()
				defer hs.Close()
			}
			ready := make(chan struct{})
			go func() {
				<-ready
				fmt.Fprintf(cmd.OutOrStdout(), "svcnet dns serving %s on %s (udp+tcp)\n", ix.Zone(), listen)
			}()
			if err := srv.ListenAndServe(ctx, listen, ready); err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			return nil
		},
	}
	home, _ := os.UserHomeDir()
	def := os.Getenv("KUBECONFIG")
	if def == "" {
		def = filepath.Join(home, ".kube", "config")
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", def, "kubeconfig of the API server to watch")
	f.StringVar(&listen, "listen", "127.0.0.1:53", "address to serve DNS on (UDP and TCP); the agent uses the cluster DNS IP")
	f.StringVar(&zone, "zone", "cluster.local", "cluster domain")
	f.Uint32Var(&ttl, "ttl", 5, "TTL of cluster records, seconds")
	f.StringVar(&resolvConf, "resolv-conf", "/etc/resolv.conf", "upstream resolvers for other names (empty: SERVFAIL for them)")
	f.IntVar(&cacheSize, "cache-size", 10000, "answers kept from upstream resolvers (0: no cache)")
	f.BoolVar(&autopath, "autopath", false, "answer a pod's first search-path expansion (<name>.<ns>.svc.<zone>) by walking the rest of its search path server-side, with a CNAME (needs a pods watch)")
	f.StringVar(&pods, "pods", "disabled", "pod records <a-b-c-d>.<ns>.pod.<zone>: disabled or insecure")
	f.StringSliceVar(&allow, "allow", []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"},
		"client networks answered; others get REFUSED")
	f.StringVar(&metricsAddr, "metrics-listen", "127.0.0.1:9153", "address of /metrics and /ready (empty: off)")
	return cmd
}
