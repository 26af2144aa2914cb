package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"github.com/svcnet/svcnet/internal/informer"
)

// gatewayAPIPoll is how often the source looks for the Gateway API CRDs until
// they are installed (its informers start then, so a cluster without them logs
// no list errors).
const gatewayAPIPoll = 2 * time.Second

// GatewaySource is the Gateway API input of the Controller: it watches
// GatewayClasses, Gateways, HTTPRoutes, ReferenceGrants, Namespaces and Nodes,
// translates them with FromGateways on every sync and writes the statuses that
// changed (status subresource).
type GatewaySource struct {
	gw   gwclient.Interface
	kube kubernetes.Interface
	log  *slog.Logger
	now  func() time.Time

	gwf   gwinformers.SharedInformerFactory
	kf    informers.SharedInformerFactory
	ready func() bool
	poke  func()
	// discover reports whether the Gateway API is served (served; a fake in tests).
	discover func() bool
	last     *GatewayResult // built by Ports, written by Publish (same goroutine)
}

var _ Source = (*GatewaySource)(nil)

// NewGatewaySource builds the Gateway API source from a client config.
func NewGatewaySource(cfg *rest.Config, kube kubernetes.Interface, log *slog.Logger) (*GatewaySource, error) {
	gw, err := gwclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return newGatewaySource(gw, kube, log), nil
}

// newGatewaySource builds the source from clients (fakes in tests).
func newGatewaySource(gw gwclient.Interface, kube kubernetes.Interface, log *slog.Logger) *GatewaySource {
	if log == nil {
		log = slog.Default()
	}
	g := &GatewaySource{gw: gw, kube: kube, log: log, now: time.Now, ready: func() bool { return false }}
	g.discover = g.served
	return g
}

// Start waits in the background for the Gateway API to be served, then runs
// the informers; poke is called on every change.
func (g *GatewaySource) Start(ctx context.Context, poke func()) error {
	g.poke = poke
	g.gwf = gwinformers.NewSharedInformerFactory(g.gw, 0)
	g.kf = informers.NewSharedInformerFactoryWithOptions(g.kube, 0, informers.WithTransform(informer.Strip))
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	v1 := g.gwf.Gateway().V1()
	infs := []cache.SharedIndexInformer{
		v1.GatewayClasses().Informer(), v1.Gateways().Informer(), v1.HTTPRoutes().Informer(), v1.ReferenceGrants().Informer(),
		g.kf.Core().V1().Namespaces().Informer(), g.kf.Core().V1().Nodes().Informer(),
	}
	for _, inf := range infs {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	synced := make([]cache.InformerSynced, len(infs))
	for i, inf := range infs {
		synced[i] = inf.HasSynced
	}
	ready := make(chan struct{})
	g.ready = func() bool {
		select {
		case <-ready:
			return true
		default:
			return false
		}
	}
	go func() {
		t := time.NewTicker(gatewayAPIPoll)
		defer t.Stop()
		for !g.discover() {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		g.log.Info("gateway: Gateway API served, watching it")
		g.gwf.Start(ctx.Done())
		g.kf.Start(ctx.Done())
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			close(ready)
			poke()
		}
	}()
	return nil
}

// served reports whether the API server serves the Gateway API kinds the source watches.
func (g *GatewaySource) served() bool {
	want := map[string]bool{"gatewayclasses": true, "gateways": true, "httproutes": true, "referencegrants": true}
	list, err := g.kube.Discovery().ServerResourcesForGroupVersion(gwv1.GroupVersion.String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		delete(want, r.Name)
	}
	return len(want) == 0
}

// Ports translates the Gateway API objects with the shared Services,
// EndpointSlices and Secrets.
func (g *GatewaySource) Ports(s *State, ix *Index) map[int]*Port {
	if !g.ready() {
		return nil
	}
	st, err := g.state(s)
	if err != nil {
		g.log.Warn("gateway: reading the informers", "err", err)
		return nil
	}
	g.last = fromGateways(st, ix)
	return g.last.Ports
}

// state reads the informers' caches.
func (g *GatewaySource) state(s *State) (*GatewayState, error) {
	st := &GatewayState{State: s, Namespaces: map[string]map[string]string{}, Now: metav1.NewTime(g.now().Truncate(time.Second))}
	v1 := g.gwf.Gateway().V1()
	var err error
	if st.Classes, err = v1.GatewayClasses().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	if st.Gateways, err = v1.Gateways().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	if st.Routes, err = v1.HTTPRoutes().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	if st.Grants, err = v1.ReferenceGrants().Lister().List(labels.Everything()); err != nil {
		return nil, err
	}
	nss, err := g.kf.Core().V1().Namespaces().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		st.Namespaces[ns.Name] = ns.Labels
	}
	nodes, err := g.kf.Core().V1().Nodes().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	st.Addresses = nodeAddresses(nodes)
	return st, nil
}

// nodeAddresses are the nodes' InternalIPs, sorted.
func nodeAddresses(nodes []*corev1.Node) []string {
	var out []string
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && !slices.Contains(out, a.Address) {
				out = append(out, a.Address)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Publish writes the statuses of the last build that differ from the objects'.
func (g *GatewaySource) Publish(ctx context.Context) {
	res := g.last
	if res == nil {
		return
	}
	v1 := g.gwf.Gateway().V1()
	for name, s := range res.Classes {
		cur, err := v1.GatewayClasses().Lister().Get(name)
		if err != nil || apiequality.Semantic.DeepEqual(cur.Status, s) {
			continue
		}
		upd := cur.DeepCopy()
		upd.Status = s
		_, err = g.gw.GatewayV1().GatewayClasses().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		g.logWrite("gatewayclass", types.NamespacedName{Name: name}, err)
	}
	for nn, s := range res.Gateways {
		cur, err := v1.Gateways().Lister().Gateways(nn.Namespace).Get(nn.Name)
		if err != nil || apiequality.Semantic.DeepEqual(cur.Status, s) {
			continue
		}
		upd := cur.DeepCopy()
		upd.Status = s
		_, err = g.gw.GatewayV1().Gateways(nn.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		g.logWrite("gateway", nn, err)
	}
	for nn, s := range res.Routes {
		cur, err := v1.HTTPRoutes().Lister().HTTPRoutes(nn.Namespace).Get(nn.Name)
		if err != nil || apiequality.Semantic.DeepEqual(cur.Status, s) {
			continue
		}
		upd := cur.DeepCopy()
		upd.Status = s
		_, err = g.gw.GatewayV1().HTTPRoutes(nn.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		g.logWrite("httproute", nn, err)
	}
}

// logWrite logs a failed status write and asks for another sync soon; a
// conflict or a gone object is retried by the informer event that follows it.
func (g *GatewaySource) logWrite(kind string, nn types.NamespacedName, err error) {
	switch {
	case err == nil:
		g.log.Debug("gateway: status written", "kind", kind, "name", nn.String())
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
	default:
		g.log.Warn("gateway: status not written", "kind", kind, "name", nn.String(), "err", fmt.Sprint(err))
		time.AfterFunc(retryAfter, g.poke)
	}
}
