package netpol

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/informer"
)

// Retry back-off after a failed sync (the next one rewrites the whole table).
const (
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
)

// Controller keeps one node's Backend in step with the cluster's
// NetworkPolicies, Pods and Namespaces: informer handlers only signal; one
// loop recomputes the node's Rules from the caches and lets the backend write
// the difference. Changes arriving during a sync are folded into the next.
type Controller struct {
	client  kubernetes.Interface
	node    string
	backend Backend
	log     *slog.Logger
	kick    chan struct{}
	took    prometheus.Histogram
	// Synced, when set, is called after each successful sync (tests, bench).
	Synced func(Rules)
}

// NewController builds a controller for node; reg (may be nil) gets its metric.
func NewController(client kubernetes.Interface, node string, backend Backend, reg prometheus.Registerer, log *slog.Logger) *Controller {
	c := &Controller{client: client, node: node, backend: backend, log: log, kick: make(chan struct{}, 1),
		took: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "svcnet_network_policy_sync_duration_seconds",
			Help: "Time to compute and program this node's NetworkPolicy rules.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})}
	if reg != nil {
		_ = reg.Register(c.took)
	}
	return c
}

func (c *Controller) signal() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run watches and syncs until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithTransform(informer.Strip))
	pods, nss, pols := f.Core().V1().Pods(), f.Core().V1().Namespaces(), f.Networking().V1().NetworkPolicies()
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { c.signal() }, UpdateFunc: func(_, _ any) { c.signal() }, DeleteFunc: func(any) { c.signal() }}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), nss.Informer(), pols.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, nss.Informer().HasSynced, pols.Informer().HasSynced) {
		return ctx.Err()
	}
	c.signal()
	backoff := retryMin
	retry := time.NewTimer(0)
	<-retry.C
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		case <-retry.C:
		}
		start := time.Now()
		s := c.state(pods.Lister(), nss.Lister(), pols.Lister())
		r := Compile(s, c.node)
		if err := c.backend.Sync(r); err != nil {
			c.log.Warn("network policy sync failed, retrying with a full sync", "err", err, "in", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, retryMax)
			continue
		}
		backoff = retryMin
		took := time.Since(start)
		c.took.Observe(took.Seconds())
		c.log.Debug("network policy rules synced", "took", took, "ingressIsolated", len(r.IngressIsolated), "egressIsolated", len(r.EgressIsolated))
		if c.Synced != nil {
			c.Synced(r)
		}
	}
}

// state converts the caches' objects.
func (c *Controller) state(pods corelisters.PodLister, nss corelisters.NamespaceLister, pols netlisters.NetworkPolicyLister) *State {
	podList, _ := pods.List(labels.Everything())
	nsList, _ := nss.List(labels.Everything())
	polList, _ := pols.List(labels.Everything())
	return FromObjects(podList, nsList, polList, func(np *networkingv1.NetworkPolicy, err error) {
		c.log.Warn("network policy ignored", "policy", np.Namespace+"/"+np.Name, "err", err)
	})
}
