package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/informer"
)

// retryAfter is how soon a sync that could not write a status runs again.
const retryAfter = time.Second

// ControllerOptions configure the Controller.
type ControllerOptions struct {
	// NodeName records Events as this node's ingress.
	NodeName string
	// Addresses are written into status.loadBalancer.ingress of the Ingresses served.
	Addresses []string
	// HTTPPort and HTTPSPort are the ports Ingresses are served on.
	HTTPPort, HTTPSPort int
	// Sources are further inputs of the Table (Gateway API).
	Sources []Source
	// Programmed, when set, is told after each table swap the IPs of the
	// ready endpoints of the EndpointSlices that table was built from (a
	// count per IP), so a terminating pod's runtime knows when the ingress
	// sends it no new request (internal/drain).
	Programmed func(ready map[netip.Addr]int)
	Log        *slog.Logger
	Metrics    *Metrics
}

// Controller keeps the Server's Table in step with the cluster: informers'
// handlers only poke; one sync goroutine reads the informers' caches, builds
// the Table (Ingresses, then each Source), swaps it in and then writes
// statuses. Bursts of changes coalesce into one sync.
type Controller struct {
	client  kubernetes.Interface
	server  *Server
	o       ControllerOptions
	factory informers.SharedInformerFactory
	poked   chan struct{}
	certs   CertCache
	ings    IngressCache
	events  map[Event]bool // recorded at the last sync, not recorded again
	rec     record.EventRecorder
	filter  backendFilter
}

// NewController builds a Controller feeding server.
func NewController(client kubernetes.Interface, server *Server, o ControllerOptions) *Controller {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Controller{client: client, server: server, o: o, poked: make(chan struct{}, 1), events: map[Event]bool{},
		factory: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(informer.Chain(dropSecretData, informer.Strip)))}
}

// dropSecretData keeps only kubernetes.io/tls Secrets' data in the cache.
func dropSecretData(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok && s.Type != corev1.SecretTypeTLS {
		s.Data, s.StringData = nil, nil
	}
	return obj, nil
}

// Poke asks for a sync; it never blocks.
func (c *Controller) Poke() {
	select {
	case c.poked <- struct{}{}:
	default:
	}
}

// Run starts the informers and syncs until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	h := cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if c.filter.matters(o) {
				c.Poke()
			}
		},
		UpdateFunc: func(old, o any) {
			if c.filter.matters(old) || c.filter.matters(o) {
				c.Poke()
			}
		},
		DeleteFunc: func(o any) {
			if c.filter.matters(o) {
				c.Poke()
			}
		},
	}
	for _, inf := range []cache.SharedIndexInformer{
		c.factory.Networking().V1().Ingresses().Informer(),
		c.factory.Networking().V1().IngressClasses().Informer(),
		c.factory.Core().V1().Services().Informer(),
		c.factory.Discovery().V1().EndpointSlices().Informer(),
		c.factory.Core().V1().Secrets().Informer(),
	} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	bc := record.NewBroadcaster(record.WithContext(ctx))
	defer bc.Shutdown()
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	c.rec = bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "svcnet-ingress", Host: c.o.NodeName})
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	for _, s := range c.o.Sources {
		if err := s.Start(ctx, c.Poke); err != nil {
			return err
		}
	}
	for typ, ok := range c.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("ingress: informer of %v did not sync", typ)
		}
	}
	c.Poke()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.poked:
		case <-retry:
		}
		retry = nil
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			c.o.Log.Warn("ingress: sync incomplete, retrying", "err", err)
			retry = time.After(retryAfter)
		}
	}
}

// state reads the informers' caches.
func (c *Controller) state() (*State, error) {
	s := &State{Certs: &c.certs, Translations: &c.ings}
	var err error
	nw, core := c.factory.Networking().V1(), c.factory.Core().V1()
	if s.Ingresses, err = nw.Ingresses().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	if s.IngressClasses, err = nw.IngressClasses().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	if s.Services, err = core.Services().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	if s.EndpointSlices, err = c.factory.Discovery().V1().EndpointSlices().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	secrets, err := core.Secrets().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, sec := range secrets {
		if sec.Type == corev1.SecretTypeTLS {
			s.Secrets = append(s.Secrets, sec)
		}
	}
	return s, nil
}

// sync builds and swaps the Table, then records events and writes statuses.
func (c *Controller) sync(ctx context.Context) error {
	start := time.Now()
	c.filter.syncing()
	s, err := c.state()
	if err != nil {
		return err
	}
	ix := NewIndex(s)
	ing, events := fromIngresses(s, ix, IngressOptions{Controller: IngressController, HTTPPort: c.o.HTTPPort, HTTPSPort: c.o.HTTPSPort})
	inputs := []map[int]*Port{ing.Ports}
	for _, src := range c.o.Sources {
		inputs = append(inputs, src.Ports(s, ix))
	}
	table := Merge(inputs...)
	c.server.Swap(table)
	backends := backendsOf(table)
	if c.o.Programmed != nil {
		c.o.Programmed(readyIPsOf(s.EndpointSlices, backends))
	}
	if c.filter.synced(backends) {
		c.Poke()
	}
	c.o.Metrics.synced(time.Since(start))
	c.o.Log.Debug("ingress: table swapped", "took", time.Since(start), "ingresses", len(s.Ingresses))
	c.certs.Prune(s.Secrets)
	c.record(s, events)
	for _, src := range c.o.Sources {
		src.Publish(ctx)
	}
	return c.writeStatus(ctx, s)
}

// record emits the events that are new since the last sync.
func (c *Controller) record(s *State, events []Event) {
	byKey := map[types.NamespacedName]*networkingv1.Ingress{}
	for _, ing := range s.Ingresses {
		byKey[types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}] = ing
	}
	now := map[Event]bool{}
	for _, e := range events {
		now[e] = true
		if c.events[e] || c.rec == nil {
			continue
		}
		if obj := byKey[types.NamespacedName{Namespace: e.Namespace, Name: e.Name}]; obj != nil {
			c.rec.Event(obj, corev1.EventTypeWarning, e.Reason, e.Message)
		}
	}
	c.events = now
}

// writeStatus adds this node's addresses to the Ingresses served and removes
// them from the others, writing only changes.
func (c *Controller) writeStatus(ctx context.Context, s *State) error {
	ours := map[types.UID]bool{}
	for _, ing := range OurIngresses(s, IngressController) {
		ours[ing.UID] = true
	}
	var firstErr error
	for _, ing := range s.Ingresses {
		if ing.DeletionTimestamp != nil {
			continue
		}
		lb, changed := LoadBalancerStatus(ing.Status.LoadBalancer.Ingress, c.o.Addresses, ours[ing.UID])
		if !changed {
			continue
		}
		upd := ing.DeepCopy()
		upd.Status.LoadBalancer.Ingress = lb
		_, err := c.client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("status of ingress %s/%s: %w", ing.Namespace, ing.Name, err)
		}
	}
	return firstErr
}
