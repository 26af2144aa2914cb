package agent

import (
	"context"
	"net/http"

	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/nftables"
	"github.com/svcnet/svcnet/internal/proxy/userspace"
)

// startProxy runs the service proxy until ctx ends; it returns once the first
// full sync is done, so the node is announced only with working Services.
func (a *Agent) startProxy(ctx context.Context, log *slog.Logger) error {
	var c nftables.Config
	if a.o.ClusterCIDR != "" {
		c.ClusterCIDR = netip.MustParsePrefix(a.o.ClusterCIDR).Masked()
	}
	if a.o.ServiceCIDR != "" {
		c.ServiceCIDR = netip.MustParsePrefix(a.o.ServiceCIDR).Masked()
	}
	var be proxy.Backend
	route := false
	switch a.o.ProxyMode {
	case "userspace":
		o := userspace.Options{Log: log}
		if os.Geteuid() == 0 {
			o.MakeLocal = func(ip netip.Addr) (func(), error) { return ensureLocalOn(ServiceLink, ip) }
		} else {
			log.Warn("userspace proxy without root: only node ports are served (cluster IPs cannot be made local)")
		}
		be = userspace.New(o)
	default:
		nb, err := nftables.New(c)
		if err != nil {
			return fmt.Errorf("--proxy-mode nftables: %w", err)
		}
		nb.Log = func(msg string, err error) { log.Warn(msg, "err", err) }
		be = nb
		route = c.ServiceCIDR.IsValid()
	}
	if route {
		if err := serviceRoute(c.ServiceCIDR, true); err != nil {
			return fmt.Errorf("route for --service-cluster-ip-range: %w", err)
		}
	}
	reg := prometheus.NewRegistry()
	p := proxy.New(proxy.Options{Node: a.o.NodeName, MinSyncPeriod: a.o.MinSyncPeriod, Backend: be, Log: log, Metrics: proxy.NewMetrics(reg)})
	if err := a.serveProxyHTTP(ctx, p, reg, log); err != nil {
		return err
	}
	a.proxier = p
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, a.client, ready)
		if err := be.Cleanup(); err != nil { // rules of a stopped proxy would point at stale pods
			log.Warn("removing what the proxy set up", "err", err)
		}
		if route {
			if err := serviceRoute(c.ServiceCIDR, false); err != nil {
				log.Warn("removing the service CIDR route", "err", err)
			}
		}
	}()
	a.proxyDone = done
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(60 * time.Second):
		return fmt.Errorf("service proxy: no successful sync within 60s")
	}
}

// serviceRouteProtocol marks the agent's route for the service CIDR.
const serviceRouteProtocol = netlink.RouteProtocol(0x54)

// serviceRoute adds (or removes) a route for the service CIDR through the
// loopback device: the node's own connections to cluster IPs then reach the
// output hook (where they are DNATed) even on a node without a default route,
// and a cluster IP packet that is not DNATed can never leave the node.
func serviceRoute(cidr netip.Prefix, add bool) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	dst := &net.IPNet{IP: cidr.Addr().AsSlice(), Mask: net.CIDRMask(cidr.Bits(), 32)}
	r := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK, Protocol: serviceRouteProtocol}
	if add {
		return netlink.RouteReplace(r)
	}
	return netlink.RouteDel(r)
}

// Cleanup removes what a proxy left (svcnet agent --cleanup): the nftables
// table and the service CIDR route. What is already gone is not an error.
func Cleanup(serviceCIDR string) error {
	be, err := nftables.New(nftables.Config{})
	if err != nil {
		return err
	}
	if err := be.Cleanup(); err != nil {
		return err
	}
	if p, err := netip.ParsePrefix(serviceCIDR); err == nil {
		if err := serviceRoute(p.Masked(), false); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("service CIDR route: %w", err)
		}
	}
	return nil
}

// serveProxyHTTP serves kube-proxy's /healthz (200 while rules are fresh, 503
// when changes wait longer than the limit) and /metrics, on the addresses of
// --healthz-bind-address and --metrics-bind-address (empty: off).
func (a *Agent) serveProxyHTTP(ctx context.Context, p *proxy.Proxier, reg *prometheus.Registry, log *slog.Logger) error {
	serve := func(addr string, h http.Handler) error {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
		return nil
	}
	health := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ok, last := p.Healthy(max(10*a.o.MinSyncPeriod, 2*time.Second))
		w.Header().Set("Content-Type", "application/json")
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"lastUpdated": %q, "currentTime": %q, "nodeEligible": true}`+"\n",
			last.UTC().Format(time.RFC3339Nano), time.Now().UTC().Format(time.RFC3339Nano))
	})
	if err := serve(a.o.HealthzAddress, health); err != nil {
		return fmt.Errorf("--healthz-bind-address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", health)
	if err := serve(a.o.MetricsAddress, mux); err != nil {
		return fmt.Errorf("--metrics-bind-address: %w", err)
	}
	return nil
}
