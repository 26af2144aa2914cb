package proxy

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Backend turns the state into working rules. Sync gets the keys whose service
// port or endpoints changed since the last successful call; full asks for
// everything to be rewritten (first sync, or after an error).
type Backend interface {
	Name() string
	Sync(st *State, changed []Key, full bool) error
	Cleanup() error
}

// Options configure a Proxier.
type Options struct {
	Node          string
	MinSyncPeriod time.Duration // at most one sync per period (bursts coalesce)
	Backend       Backend
	Metrics       *Metrics
	Log           *slog.Logger
	// Local are this node's listeners the proxy leaves alone (the cluster DNS).
	Local []Listener
}

// Proxier runs the informers, the trackers and the sync loop.
type Proxier struct {
	o       Options
	tracker *Tracker
	kick    chan struct{}

	mu       sync.Mutex
	lastSync time.Time
	synced   bool
}

// New builds a proxier.
func New(o Options) *Proxier {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	return &Proxier{o: o, tracker: NewTracker(o.Node, o.Local...), kick: make(chan struct{}, 1)}
}

func (p *Proxier) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Healthy reports whether rules were synced recently (kube-proxy's /healthz):
// nothing pending for longer than limit without a sync.
func (p *Proxier) Healthy(limit time.Duration) (bool, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.synced {
		return false, p.lastSync
	}
	services, endpoints := p.tracker.Pending()
	return services+endpoints == 0 || time.Since(p.lastSync) < limit, p.lastSync
}

// Run watches Services and EndpointSlices and keeps the backend's rules in
// step until ctx ends.
func (p *Proxier) Run(ctx context.Context, client kubernetes.Interface, ready chan<- struct{}) {
	factory := informers.NewSharedInformerFactory(client, 0)
	svc := factory.Core().V1().Services().Informer()
	eps := factory.Discovery().V1().EndpointSlices().Informer()
	m := p.o.Metrics
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.onChange(o, false) },
		UpdateFunc: func(_, o any) { p.onChange(o, false) },
		DeleteFunc: func(o any) { p.onChange(o, true) },
	}
	svcReg, _ := svc.AddEventHandler(handler)
	epsReg, _ := eps.AddEventHandler(handler)
	factory.Start(ctx.Done())
	// The handlers' HasSynced: the initial lists have reached the tracker, so the
	// first (full) sync sees every Service, not the part delivered so far.
	if !cache.WaitForCacheSync(ctx.Done(), svcReg.HasSynced, epsReg.HasSynced) {
		return
	}
	hc := NewHealthChecks(p.o.Log)
	defer hc.Close()
	full := true
	retry := time.Second
	var timer <-chan time.Time
	for {
		start := time.Now()
		st, changed, triggers := p.tracker.Apply()
		m.pending(0, 0)
		gc := 0
		if full { // a full sync allocates its whole table at once: fewer GC passes over the informer caches meanwhile
			gc = debug.SetGCPercent(400)
		}
		err := p.o.Backend.Sync(st, changed, full)
		if full {
			debug.SetGCPercent(gc)
		}
		took := time.Since(start)
		m.observeSync(took, full)
		if err != nil {
			p.o.Log.Error("proxy rules sync failed; retrying with a full sync", "backend", p.o.Backend.Name(), "err", err)
			full = true
			timer = time.After(retry)
			retry = min(retry*2, 30*time.Second)
		} else {
			now := time.Now()
			for _, t := range triggers {
				m.programming.Observe(now.Sub(t).Seconds())
			}
			if !full {
				p.o.Log.Debug("proxy rules synced (partial)", "changed", len(changed), "took", took)
			}
			if full {
				debug.FreeOSMemory() // a full sync's netlink messages are garbage now: give the memory back
				p.o.Log.Info("proxy rules synced", "backend", p.o.Backend.Name(), "servicePorts", len(st.Services), "took", took)
				if ready != nil {
					close(ready)
					ready = nil
				}
			}
			hc.Sync(st)
			full, retry, timer = false, time.Second, nil
			p.mu.Lock()
			p.lastSync, p.synced = now, true
			p.mu.Unlock()
			m.lastSync.SetToCurrentTime()
		}
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-timer:
		}
		if wait := p.o.MinSyncPeriod - time.Since(start); wait > 0 { // bounded frequency
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// onChange records one watch event in the tracker (unwrapping a tombstone)
// and wakes the sync loop.
func (p *Proxier) onChange(o any, deleted bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o, deleted = d.Obj, true
	}
	switch obj := o.(type) {
	case *corev1.Service:
		p.tracker.OnService(obj, deleted)
		p.o.Metrics.serviceChanges.Inc()
	case *discoveryv1.EndpointSlice:
		p.tracker.OnSlice(obj, deleted)
		p.o.Metrics.endpointChanges.Inc()
	default:
		return
	}
	p.o.Metrics.pending(p.tracker.Pending())
	p.poke()
}
