package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/podnet"
	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/iptables"
	"github.com/svcnet/svcnet/internal/proxy/nftables"
	"github.com/svcnet/svcnet/internal/proxy/userspace"
)

// ProxyConfigMap is the ConfigMap (in kube-system) whose data.proxyMode, when
// set, overrides --proxy-mode; a change switches the backend live.
const ProxyConfigMap = "svcnet-agent"

// proxyRun is one running proxier with its backend.
type proxyRun struct {
	mode   string
	p      *proxy.Proxier
	reg    *prometheus.Registry
	cancel context.CancelFunc
	retire bool // set before cancel: a switch, not a stop
	done   chan struct{}
}

// startProxy runs the service proxy until ctx ends, switching backends when
// the svcnet-agent ConfigMap says so; it returns once the first full sync is
// done, so the node is announced only with working Services.
func (a *Agent) startProxy(ctx context.Context, log *slog.Logger) error {
	var cur atomic.Pointer[proxyRun]
	a.nodeZone = a.watchZone(ctx)
	r, err := a.runProxy(ctx, a.o.ProxyMode, log)
	if err != nil {
		return err
	}
	cur.Store(r)
	if err := a.serveProxyHTTP(ctx, &cur); err != nil {
		return err
	}
	modes := make(chan string, 1)
	a.watchProxyMode(ctx, modes)
	done := make(chan struct{})
	a.proxyDone = done
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				<-cur.Load().done
				return
			case m := <-modes:
				old := cur.Load()
				if m == "" {
					m = a.o.ProxyMode
				}
				if m == old.mode {
					continue
				}
				log.Info("switching the service proxy backend", "from", old.mode, "to", m)
				next, err := a.runProxy(ctx, m, log) // the new one first: no gap without rules or listeners
				if err != nil {
					log.Error("switching the service proxy backend failed; keeping the old one", "to", m, "err", err)
					continue
				}
				old.retire = true
				old.cancel()
				<-old.done
				cur.Store(next)
			}
		}
	}()
	return nil
}

// watchProxyMode sends the proxyMode of the svcnet-agent ConfigMap ("" when it
// has none or is deleted) on modes, latest value only.
func (a *Agent) watchProxyMode(ctx context.Context, modes chan string) {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithNamespace("kube-system"),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ProxyConfigMap).String()
		}))
	send := func(m string) {
		switch m {
		case "", "nftables", "iptables", "userspace":
		default:
			a.o.Log.Warn("svcnet-agent ConfigMap: proxyMode is not nftables, iptables or userspace; ignored", "proxyMode", m)
			return
		}
		select {
		case <-modes:
		default:
		}
		modes <- m
	}
	_, _ = factory.Core().V1().ConfigMaps().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { send(o.(*corev1.ConfigMap).Data["proxyMode"]) },
		UpdateFunc: func(_, o any) { send(o.(*corev1.ConfigMap).Data["proxyMode"]) },
		DeleteFunc: func(any) { send("") },
	})
	factory.Start(ctx.Done())
}

// runProxy starts a proxier with the backend of mode and waits for its first sync.
func (a *Agent) runProxy(parent context.Context, mode string, log *slog.Logger) (*proxyRun, error) {
	var c nftables.Config
	if a.o.ClusterCIDR != "" {
		c.ClusterCIDR = netip.MustParsePrefix(a.o.ClusterCIDR).Masked()
	}
	if a.o.ServiceCIDR != "" {
		c.ServiceCIDR = netip.MustParsePrefix(a.o.ServiceCIDR).Masked()
	}
	c.RoundRobin = a.o.ProxyScheduler == "round-robin"
	// The cluster DNS of this node answers its address itself, whatever the
	// cluster's kube-dns Service says (CoreDNS endpoints, none, or absent).
	local, err := proxy.DNSListeners(a.o.DNSListen)
	if err != nil {
		return nil, fmt.Errorf("--cluster-dns-listen: %w", err)
	}
	c.Local = local
	var be proxy.Backend
	var nb *nftables.Backend
	var ib *iptables.Backend
	switch mode {
	case "iptables":
		if ib, err = iptables.New(iptables.Config{ClusterCIDR: c.ClusterCIDR}, nil); err != nil {
			return nil, fmt.Errorf("--proxy-mode iptables: %w", err)
		}
		ib.Log = func(msg string, err error) { log.Warn(msg, "err", err) }
		ib.LocalnetLink = a.podBridge
		be = ib
		if c.ServiceCIDR.IsValid() {
			if err := serviceRoute(c.ServiceCIDR, true, a.o.NodeIP); err != nil {
				return nil, fmt.Errorf("route for --service-cluster-ip-range: %w", err)
			}
		}
	case "userspace":
		o := userspace.Options{Log: log, RoundRobin: c.RoundRobin}
		if len(a.o.NodePortAddresses) > 0 {
			if o.NodePortAddresses = nodePortAddrs(a.o.NodePortAddresses, a.o.NodeIP, localAddrs()); len(o.NodePortAddresses) == 0 {
				log.Warn("--nodeport-addresses: no address of this node is in them; node ports listen on every address", "cidrs", a.o.NodePortAddresses)
			}
		}
		if os.Geteuid() == 0 {
			o.MakeLocal = func(ip netip.Addr) (func(), error) { return ensureLocalOn(ServiceLink, ip) }
		} else {
			log.Warn("userspace proxy without root: only node ports are served (cluster IPs cannot be made local)")
		}
		be = userspace.New(o)
	default:
		if len(a.o.NodePortAddresses) > 0 {
			log.Warn("--nodeport-addresses: the nftables mode serves node ports on every local address (as kube-proxy's default); honoured by the userspace mode only")
		}
		if nb, err = nftables.New(c); err != nil {
			return nil, fmt.Errorf("--proxy-mode nftables: %w", err)
		}
		nb.Log = func(msg string, err error) { log.Warn(msg, "err", err) }
		nb.LocalnetLink = a.podBridge // pods reach the kubernetes Service on 127.0.0.1
		be = nb
		if c.ServiceCIDR.IsValid() {
			if err := serviceRoute(c.ServiceCIDR, true, a.o.NodeIP); err != nil {
				return nil, fmt.Errorf("route for --service-cluster-ip-range: %w", err)
			}
		}
	}
	be = a.drainedBackend(be, mode) // terminating pods are signalled once it no longer routes to them
	ctx, cancel := context.WithCancel(parent)
	r := &proxyRun{mode: mode, reg: prometheus.NewRegistry(), cancel: cancel, done: make(chan struct{})}
	be = proxy.NewTopology(be, a.o.NodeName, a.nodeZone) // trafficDistribution hints
	r.p = proxy.New(proxy.Options{Node: a.o.NodeName, MinSyncPeriod: a.o.MinSyncPeriod, SyncPeriod: a.o.SyncPeriod, SyncShare: a.o.SyncShare, Backend: be, Log: log.With("proxy", mode),
		Metrics: proxy.NewMetrics(r.reg), Local: local})
	ready := make(chan struct{})
	go func() {
		defer close(r.done)
		r.p.Run(ctx, a.client, ready)
		var err error
		switch {
		case nb != nil && r.retire:
			err = nb.Retire() // keeps NAT hooks and conntrack: established connections stay translated
		case ib != nil && !r.retire:
			// As kube-proxy: its chains outlive the agent (see below).
		case nb != nil:
			// As kube-proxy: the kernel rules outlive the agent, so connections
			// (new ones too) keep working while it restarts; the next start
			// replaces them in one transaction, `svcnet agent --cleanup` removes them.
		default:
			err = be.Cleanup()
		}
		if err != nil {
			log.Warn("removing what the proxy set up", "backend", mode, "err", err)
		}
		a.drain.Forget(drainProxy + mode)
	}()
	// No deadline: with many Services the first list and sync take a while
	// (kube-proxy needs minutes at tens of thousands), and a failing sync is
	// retried with back-off and logged by the loop.
	waitStart := time.Now()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ready:
			return r, nil
		case <-r.done:
			return nil, fmt.Errorf("service proxy (%s) stopped before its first sync", mode)
		case <-tick.C:
			log.Warn("still waiting for the service proxy's first sync", "backend", mode, "waited", time.Since(waitStart).Round(time.Second))
		}
	}
}

// Cleanup removes what a proxy left (svcnet agent --cleanup): the nftables
// table, the service CIDR route and its link. What is already gone is not an error.
func Cleanup(serviceCIDR string) error {
	be, err := nftables.New(nftables.Config{})
	if err != nil {
		return err
	}
	be.LocalnetLink = podnet.DefaultBridge
	if err := be.Cleanup(); err != nil {
		return err
	}
	if p, err := netip.ParsePrefix(serviceCIDR); err == nil {
		if err := serviceRoute(p.Masked(), false, ""); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("service CIDR route: %w", err)
		}
	}
	return nil
}

// serveProxyHTTP serves kube-proxy's /healthz (200 while rules are fresh, 503
// when changes wait longer than the limit) and /metrics of the current backend,
// on --healthz-bind-address and --metrics-bind-address (empty: off).
func (a *Agent) serveProxyHTTP(ctx context.Context, cur *atomic.Pointer[proxyRun]) error {
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
		ok, last := cur.Load().p.Healthy(max(10*a.o.MinSyncPeriod, 2*time.Second))
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
	mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promhttp.HandlerFor(prometheus.Gatherers{cur.Load().reg, a.ingressReg}, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	mux.Handle("/healthz", health)
	if a.o.Profiling {
		handleProfiles(mux)
	}
	if err := serve(a.o.MetricsAddress, mux); err != nil {
		return fmt.Errorf("--metrics-bind-address: %w", err)
	}
	return nil
}

// handleProfiles serves Go's profiles under /debug/pprof/ (--profiling).
func handleProfiles(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// CleanupIPTables removes the chains the iptables mode wrote (kube-proxy's
// KUBE-* chains but the kubelet's) and the jumps to them, when the tools are
// installed (svcnet agent --cleanup; not at start-up, where they may be a
// running kube-proxy's).
func CleanupIPTables() error {
	b, err := iptables.New(iptables.Config{}, nil)
	if err != nil {
		return nil // no iptables tools: nothing can have been written with them
	}
	b.LocalnetLink = podnet.DefaultBridge
	return b.Cleanup()
}
