package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// Backend turns the state into working rules. Sync gets the keys whose service
// port or endpoints changed since the last successful call; full asks for
// everything to be rewritten (first sync, or after an error).
type Backend interface {
	Name() string
	Sync(st *State, changed []Key, full bool) error
	Cleanup() error
}

// Verifier is a Backend that can tell, without rewriting anything, whether
// the kernel still holds what its last sync wrote (nil) or what differs. The
// loop asks every SyncPeriod and answers drift with a full sync; a Backend
// without it gets a full sync every SyncPeriod instead.
type Verifier interface {
	Verify() error
}

// Drift is the error a Verify returns for the differences it found (nil for
// none): sorted, at most five named.
func Drift(diffs []string) error {
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return errors.New(strings.Join(diffs, "; "))
}

// Options configure a Proxier.
type Options struct {
	Node string
	// MinSyncPeriod is a floor between two syncs set by the user (kube-proxy's
	// minSyncPeriod); 0 leaves the pace to the budget alone.
	MinSyncPeriod time.Duration
	// SyncShare is the share of one core syncs may take under continuous
	// churn (0: DefaultSyncShare).
	SyncShare float64
	// SyncPeriod is how often the kernel state is verified and repaired
	// without a change (0: DefaultSyncPeriod).
	SyncPeriod time.Duration
	Clock      clock.Clock // nil: the real one
	Backend    Backend
	Metrics    *Metrics
	Log        *slog.Logger
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
	if o.SyncShare <= 0 || o.SyncShare > 1 {
		o.SyncShare = DefaultSyncShare
	}
	if o.SyncPeriod <= 0 {
		o.SyncPeriod = DefaultSyncPeriod
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
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
	return services+endpoints == 0 || p.o.Clock.Since(p.lastSync) < limit, p.lastSync
}

// Run watches Services and EndpointSlices and keeps the backend's rules in
// step until ctx ends.
func (p *Proxier) Run(ctx context.Context, client kubernetes.Interface, ready chan<- struct{}) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(p.tracker.convert))
	svc := factory.Core().V1().Services().Informer()
	eps := factory.Discovery().V1().EndpointSlices().Informer()
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
	p.loop(ctx, ready)
}

// onChange records one watch event in the tracker (unwrapping a tombstone)
// and wakes the sync loop.
func (p *Proxier) onChange(o any, deleted bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o, deleted = d.Obj, true
	}
	o, _ = p.tracker.convert(o) // already converted by the informers; tests hand API objects
	switch obj := o.(type) {
	case *cachedService:
		p.tracker.onService(obj, deleted)
		p.o.Metrics.serviceChanges.Inc()
	case *cachedSlice:
		p.tracker.onSlice(obj, deleted)
		p.o.Metrics.endpointChanges.Inc()
	default:
		return
	}
	p.o.Metrics.pending(p.tracker.Pending())
	p.poke()
}
