package lbipam

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Controller keeps the load-balancer addresses of Services.
type Controller struct {
	client      kubernetes.Interface
	dyn         dynamic.Interface
	ext         apiextensionsclient.Interface
	services    corelisters.ServiceLister
	namespaces  corelisters.NamespaceLister
	synced      []cache.InformerSynced
	pools       cache.GenericLister
	recorder    record.EventRecorder
	defaultPool []string
	loop        *queue.Loop
	log         *slog.Logger
}

// New wires the controller; defaultPool, when set, is written as the pool
// "default" at start (svcnet up --load-balancer-pool).
func New(cfg *rest.Config, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, defaultPool []string, log *slog.Logger) (*Controller, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	svcInf, nsInf := factory.Core().V1().Services(), factory.Core().V1().Namespaces()
	c := &Controller{client: client, dyn: dyn, ext: ext, services: svcInf.Lister(), namespaces: nsInf.Lister(),
		synced: []cache.InformerSynced{svcInf.Informer().HasSynced, nsInf.Informer().HasSynced}, recorder: recorder,
		defaultPool: defaultPool, log: log.With("controller", "lbipam")}
	c.loop = queue.New("lbipam", c.sync, c.log)
	_, _ = svcInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, _ any) { c.requeueAll() }})
	return c, nil
}

// Run installs the pool CRD, writes the default pool and keeps addresses
// until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	if err := EnsureCRD(ctx, c.ext); err != nil {
		c.log.Error("LoadBalancerPool CRD", "err", err)
		return
	}
	if len(c.defaultPool) > 0 {
		if err := c.writeDefaultPool(ctx); err != nil {
			c.log.Error("--load-balancer-pool", "err", err)
		}
	}
	df := dynamicinformer.NewDynamicSharedInformerFactory(c.dyn, 0)
	inf := df.ForResource(PoolResource)
	c.pools = inf.Lister()
	h := func(any) { c.requeueAll() }
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: h, DeleteFunc: h, UpdateFunc: func(_, n any) { h(n) }})
	df.Start(ctx.Done())
	c.loop.Run(ctx, workers, append(c.synced, inf.Informer().HasSynced)...)
	df.Shutdown()
}

func (c *Controller) writeDefaultPool(ctx context.Context) error {
	if _, err := ParseAddresses(c.defaultPool); err != nil {
		return err
	}
	addrs := make([]any, len(c.defaultPool))
	for i, a := range c.defaultPool {
		addrs[i] = a
	}
	res := c.dyn.Resource(PoolResource)
	got, err := res.Get(ctx, DefaultPool, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": PoolResource.GroupVersion().String(), "kind": "LoadBalancerPool",
			"metadata": map[string]any{"name": DefaultPool}, "spec": map[string]any{"addresses": addrs}}}
		_, err = res.Create(ctx, u, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if err := unstructured.SetNestedSlice(got.Object, addrs, "spec", "addresses"); err != nil {
		return err
	}
	_, err = res.Update(ctx, got, metav1.UpdateOptions{})
	return err
}

func (c *Controller) requeueAll() {
	svcs, _ := c.services.List(labels.Everything())
	for _, s := range svcs {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer || len(s.Status.LoadBalancer.Ingress) > 0 {
			c.loop.AddObject(s)
		}
	}
}

// Ours reports whether svcnet's load balancer serves svc.
func Ours(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && (svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == Class)
}

// poolsNow converts the pool objects; invalid ones are logged and skipped.
func (c *Controller) poolsNow() []Pool {
	objs, _ := c.pools.List(labels.Everything())
	var out []Pool
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		p, err := PoolFrom(u)
		if err != nil {
			c.log.Warn("LoadBalancerPool ignored", "pool", u.GetName(), "err", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// PoolFrom converts a LoadBalancerPool object.
func PoolFrom(u *unstructured.Unstructured) (Pool, error) {
	var spec struct {
		Addresses         []string              `json:"addresses"`
		ServiceSelector   *metav1.LabelSelector `json:"serviceSelector"`
		NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector"`
	}
	m, _, _ := unstructured.NestedMap(u.Object, "spec")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &spec); err != nil {
		return Pool{}, err
	}
	rs, err := ParseAddresses(spec.Addresses)
	if err != nil {
		return Pool{}, fmt.Errorf("spec.addresses: %w", err)
	}
	p := Pool{Name: u.GetName(), Ranges: rs}
	if spec.ServiceSelector != nil {
		if p.Services, err = metav1.LabelSelectorAsSelector(spec.ServiceSelector); err != nil {
			return Pool{}, fmt.Errorf("spec.serviceSelector: %w", err)
		}
	}
	if spec.NamespaceSelector != nil {
		if p.Namespaces, err = metav1.LabelSelectorAsSelector(spec.NamespaceSelector); err != nil {
			return Pool{}, fmt.Errorf("spec.namespaceSelector: %w", err)
		}
	}
	return p, nil
}

// Requested returns the addresses svc asks for: the annotation, else spec.loadBalancerIP.
func Requested(svc *corev1.Service) ([]netip.Addr, error) {
	src, field := svc.Annotations[IPsAnnotation], "metadata.annotations["+IPsAnnotation+"]"
	if src == "" {
		src, field = svc.Spec.LoadBalancerIP, "spec.loadBalancerIP"
	}
	var out []netip.Addr
	for _, s := range strings.Split(src, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an IP address", field, s)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

func ingressAddrs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pools := c.poolsNow()
	if !Ours(svc) {
		// A Service that stopped being a LoadBalancer gives its pool addresses back.
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0 && allInPools(ingressAddrs(svc), pools) {
			return c.write(ctx, svc, nil)
		}
		return nil
	}
	inUse := map[netip.Addr]string{}
	all, _ := c.services.List(labels.Everything())
	for _, o := range all {
		if Ours(o) && (o.Namespace != ns || o.Name != name) {
			for _, a := range ingressAddrs(o) {
				inUse[a] = o.Namespace + "/" + o.Name
			}
		}
	}
	want := Service{Key: key, Labels: svc.Labels, Current: ingressAddrs(svc)}
	if n, err := c.namespaces.Get(ns); err == nil {
		want.NamespaceLabels = n.Labels
	}
	for _, f := range svc.Spec.IPFamilies {
		want.IPv4 = want.IPv4 || f == corev1.IPv4Protocol
		want.IPv6 = want.IPv6 || f == corev1.IPv6Protocol
	}
	if !want.IPv4 && !want.IPv6 {
		want.IPv4 = true
	}
	if want.Requested, err = Requested(svc); err != nil {
		c.recorder.Event(svc, corev1.EventTypeWarning, "AllocationFailed", err.Error())
		return nil
	}
	addrs, err := Assign(want, pools, inUse)
	if err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "AllocationFailed", "Failed to allocate an IP: %v", err)
		return nil
	}
	if slices.Equal(addrs, want.Current) {
		return nil
	}
	if err := c.write(ctx, svc, addrs); err != nil {
		return err
	}
	c.recorder.Eventf(svc, corev1.EventTypeNormal, "IPAllocated", "Assigned IP %v", addrs)
	c.log.Info("load-balancer address", "service", key, "ips", addrs)
	return nil
}

func allInPools(addrs []netip.Addr, pools []Pool) bool {
	for _, a := range addrs {
		if !slices.ContainsFunc(pools, func(p Pool) bool { return p.contains(a) }) {
			return false
		}
	}
	return len(addrs) > 0
}

func (c *Controller) write(ctx context.Context, svc *corev1.Service, addrs []netip.Addr) error {
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = nil
	for _, a := range addrs {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress,
			corev1.LoadBalancerIngress{IP: a.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)})
	}
	_, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	return err
}
