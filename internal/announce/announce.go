package announce

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/svcnet/svcnet/internal/controller/lbipam"
	"github.com/svcnet/svcnet/internal/informer"
)

// LeaseLabel marks the announcement Leases.
const LeaseLabel = "svcnet.io/l2-announcement"

// Responder answers ARP for a set of addresses on the node's LAN.
type Responder interface {
	// Announce makes the node answer for exactly ips; addresses new to the set
	// are announced at once (gratuitous ARP).
	Announce(ips []netip.Addr) error
}

// Config configures an Announcer.
type Config struct {
	Client    kubernetes.Interface
	Node      string
	Responder Responder
	// LeaseDuration is how long a Lease lasts without renewal (2s): the
	// failover time after a node dies. RetryPeriod is how often leases are
	// looked at (200ms); holders renew every LeaseDuration/4.
	LeaseDuration, RetryPeriod time.Duration
	Namespace                  string // of the Leases: kube-system
	Log                        *slog.Logger
	Now                        func() time.Time
}

// Announcer holds the Leases of the Services this node announces.
type Announcer struct {
	cfg       Config
	services  cache.Indexer // Services, indexed byClass
	slices    discoverylisters.EndpointSliceLister
	leases    coordinationlisters.LeaseLister
	synced    []cache.InformerSynced
	factories []informers.SharedInformerFactory
	observed  map[string]observation
	written   map[string]*coordinationv1.Lease // our last write of each Lease: newer than the cache for a moment
	held      []netip.Addr
}

type observation struct {
	rv string
	at time.Time
}

// byClass indexes the LoadBalancer Services of svcnet's class.
const byClass = "svcnet-lb"

// New builds an Announcer; Run starts it.
func New(cfg Config) *Announcer {
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 2 * time.Second
	}
	if cfg.RetryPeriod <= 0 {
		cfg.RetryPeriod = 200 * time.Millisecond
	}
	if cfg.Namespace == "" {
		cfg.Namespace = metav1.NamespaceSystem
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	all := informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, informers.WithTransform(informer.Strip))
	leases := informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, informers.WithNamespace(cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LeaseLabel }))
	// The Services this announcer serves by an index: Step runs every
	// RetryPeriod and would otherwise scan every Service of the cluster.
	_ = all.Core().V1().Services().Informer().AddIndexers(cache.Indexers{byClass: func(o any) ([]string, error) {
		if svc, ok := o.(*corev1.Service); ok && lbipam.Ours(svc) {
			return []string{byClass}, nil
		}
		return nil, nil
	}})
	a := &Announcer{cfg: cfg, services: all.Core().V1().Services().Informer().GetIndexer(), slices: all.Discovery().V1().EndpointSlices().Lister(),
		leases: leases.Coordination().V1().Leases().Lister(), factories: []informers.SharedInformerFactory{all, leases},
		observed: map[string]observation{}, written: map[string]*coordinationv1.Lease{}}
	a.synced = []cache.InformerSynced{all.Core().V1().Services().Informer().HasSynced, all.Discovery().V1().EndpointSlices().Informer().HasSynced,
		leases.Coordination().V1().Leases().Informer().HasSynced}
	return a
}

// Run announces until ctx ends, then lets its Leases go so that another node
// takes over at once.
func (a *Announcer) Run(ctx context.Context) {
	if !a.Start(ctx) {
		return
	}
	t := time.NewTicker(a.cfg.RetryPeriod)
	defer t.Stop()
	for {
		a.Step(ctx)
		select {
		case <-ctx.Done():
			a.releaseAll()
			for _, f := range a.factories {
				f.Shutdown()
			}
			return
		case <-t.C:
		}
	}
}

// Start starts the informers and waits until they have synced.
func (a *Announcer) Start(ctx context.Context) bool {
	for _, f := range a.factories {
		f.Start(ctx.Done())
	}
	return cache.WaitForCacheSync(ctx.Done(), a.synced...)
}

// LeaseName is the announcement Lease of a Service.
func LeaseName(ns, name string) string { return "svcnet-l2-" + ns + "-" + name }

// candidate: may this node announce svc?
func (a *Announcer) candidate(svc *corev1.Service) bool {
	if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		return true
	}
	list, _ := a.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
	for _, s := range list {
		for _, ep := range s.Endpoints {
			if ep.NodeName != nil && *ep.NodeName == a.cfg.Node && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
				return true
			}
		}
	}
	return false
}

// Step looks at every announced Service's Lease once and updates the
// addresses this node answers for.
func (a *Announcer) Step(ctx context.Context) {
	now := a.cfg.Now()
	renewEvery := a.cfg.LeaseDuration / 4
	objs, _ := a.services.ByIndex(byClass, byClass)
	want := map[string]bool{}
	var ips []netip.Addr
	for _, o := range objs {
		svc := o.(*corev1.Service)
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			continue
		}
		name := LeaseName(svc.Namespace, svc.Name)
		want[name] = true
		cur, err := a.leases.Leases(a.cfg.Namespace).Get(name)
		if w := a.written[name]; w != nil && (err != nil || newer(w.ResourceVersion, cur.ResourceVersion)) {
			cur, err = w, nil
		}
		l := Lease{Duration: a.cfg.LeaseDuration}
		if err == nil {
			l.Exists = true
			l.Holder = ptr.Deref(cur.Spec.HolderIdentity, "")
			if s := ptr.Deref(cur.Spec.LeaseDurationSeconds, 0); s > 0 {
				l.Duration = time.Duration(s) * time.Second
			}
			if o, ok := a.observed[name]; !ok || o.rv != cur.ResourceVersion {
				a.observed[name] = observation{rv: cur.ResourceVersion, at: now}
			}
			l.Observed = a.observed[name].at
		}
		act := Decide(l, a.cfg.Node, a.candidate(svc), now, renewEvery)
		if act != Wait && act != Keep {
			if err := a.write(ctx, act, name, cur, now); err != nil {
				if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
					a.cfg.Log.Warn("announcement lease", "lease", name, "action", act.String(), "err", err)
				}
				act = Wait
			}
		}
		// Announce while the Lease is ours and not past its duration by our own clock.
		if (act == Acquire || act == Renew || act == Keep) && now.Sub(a.observed[name].at) < l.Duration {
			for _, in := range svc.Status.LoadBalancer.Ingress {
				if ip, err := netip.ParseAddr(in.IP); err == nil && ip.Is4() {
					ips = append(ips, ip)
				}
			}
		}
	}
	a.dropStale(ctx, want)
	slices.SortFunc(ips, func(x, y netip.Addr) int { return x.Compare(y) })
	ips = slices.Compact(ips)
	if !slices.Equal(ips, a.held) {
		if err := a.cfg.Responder.Announce(ips); err != nil {
			a.cfg.Log.Warn("announce", "ips", ips, "err", err)
			return
		}
		a.cfg.Log.Info("announcing load-balancer IPs", "ips", ips)
		a.held = ips
	}
}

func (a *Announcer) write(ctx context.Context, act Action, name string, cur *coordinationv1.Lease, now time.Time) error {
	leases := a.cfg.Client.CoordinationV1().Leases(a.cfg.Namespace)
	mt := metav1.NewMicroTime(now)
	var out *coordinationv1.Lease
	var err error
	switch {
	case act == Acquire && cur == nil:
		out, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.cfg.Namespace, Labels: map[string]string{LeaseLabel: "true"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(a.cfg.Node), LeaseDurationSeconds: ptr.To(int32(a.cfg.LeaseDuration.Seconds())),
				AcquireTime: &mt, RenewTime: &mt, LeaseTransitions: ptr.To(int32(0))}}, metav1.CreateOptions{})
	default:
		l := cur.DeepCopy()
		switch act {
		case Acquire:
			l.Spec.HolderIdentity = ptr.To(a.cfg.Node)
			l.Spec.LeaseDurationSeconds = ptr.To(int32(a.cfg.LeaseDuration.Seconds()))
			l.Spec.AcquireTime, l.Spec.RenewTime = &mt, &mt
			l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
		case Renew:
			l.Spec.RenewTime = &mt
		case Release:
			l.Spec.HolderIdentity = nil
		}
		out, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		return err
	}
	a.observed[name] = observation{rv: out.ResourceVersion, at: now}
	a.written[name] = out
	if act == Acquire {
		a.cfg.Log.Info("took over load-balancer announcement", "lease", name)
	}
	return nil
}

// newer compares resourceVersions (etcd revisions: numbers).
func newer(a, b string) bool {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// dropStale deletes the Leases this node holds for Services that are gone or
// have no addresses any more.
func (a *Announcer) dropStale(ctx context.Context, want map[string]bool) {
	list, _ := a.leases.Leases(a.cfg.Namespace).List(labels.Everything())
	for _, l := range list {
		if !want[l.Name] && ptr.Deref(l.Spec.HolderIdentity, "") == a.cfg.Node {
			err := a.cfg.Client.CoordinationV1().Leases(a.cfg.Namespace).Delete(ctx, l.Name,
				metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion}})
			if err == nil || apierrors.IsNotFound(err) {
				delete(a.observed, l.Name)
				delete(a.written, l.Name)
			}
		}
	}
}

// releaseAll lets go of this node's Leases at shutdown.
func (a *Announcer) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.cfg.Responder.Announce(nil)
	list, _ := a.leases.Leases(a.cfg.Namespace).List(labels.Everything())
	for _, l := range list {
		if ptr.Deref(l.Spec.HolderIdentity, "") == a.cfg.Node {
			_ = a.write(ctx, Release, l.Name, l, a.cfg.Now())
		}
	}
}
