package dns

import (
	"context"
	"log/slog"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Source feeds an Index from watches on Services, EndpointSlices and Namespaces.
type Source struct {
	ix     *Index
	svcs   corelisters.ServiceLister
	slices discoverylisters.EndpointSliceLister
	synced []cache.InformerSynced
	log    *slog.Logger
}

// NewSource wires an index to informers from factory; with pods non-nil it also
// tracks pod IPs for autopath.
func NewSource(ix *Index, factory informers.SharedInformerFactory, log *slog.Logger, pods *PodIPs) *Source {
	s := &Source{ix: ix, log: log}
	svcInf, sliceInf, nsInf := factory.Core().V1().Services(), factory.Discovery().V1().EndpointSlices(), factory.Core().V1().Namespaces()
	// Keep only what DNS reads in the informer caches (as CoreDNS does): with
	// thousands of Services, annotations such as last-applied-configuration and
	// managedFields would otherwise dominate the memory.
	_ = svcInf.Informer().SetTransform(slimService)
	_ = sliceInf.Informer().SetTransform(slimSlice)
	_ = nsInf.Informer().SetTransform(slimNamespace)
	s.svcs, s.slices = svcInf.Lister(), sliceInf.Lister()
	s.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced, nsInf.Informer().HasSynced}
	unwrap := func(o any) any {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			return t.Obj
		}
		return o
	}
	_, _ = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.update(o.(*corev1.Service)) },
		UpdateFunc: func(_, o any) { s.update(o.(*corev1.Service)) },
		DeleteFunc: func(o any) {
			if svc, ok := unwrap(o).(*corev1.Service); ok {
				ix.DeleteService(svc.Namespace, svc.Name)
			}
		},
	})
	onSlice := func(o any) {
		sl, ok := unwrap(o).(*discoveryv1.EndpointSlice)
		if !ok {
			return
		}
		if svc, err := s.svcs.Services(sl.Namespace).Get(sl.Labels[discoveryv1.LabelServiceName]); err == nil && svc.Spec.ClusterIP == corev1.ClusterIPNone {
			s.update(svc)
		}
	}
	_, _ = sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onSlice, UpdateFunc: func(_, o any) { onSlice(o) }, DeleteFunc: onSlice})
	if pods != nil {
		podInf := factory.Core().V1().Pods()
		_ = podInf.Informer().SetTransform(func(o any) (any, error) {
			if p, ok := o.(*corev1.Pod); ok {
				return &corev1.Pod{ObjectMeta: slimMeta(p.ObjectMeta), Status: corev1.PodStatus{PodIP: p.Status.PodIP}}, nil
			}
			return o, nil
		})
		setPod := func(o any) {
			if p, ok := unwrap(o).(*corev1.Pod); ok {
				if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
					pods.Set(p.Namespace+"/"+p.Name, p.Namespace, ip.Unmap())
				}
			}
		}
		_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: setPod, UpdateFunc: func(_, o any) { setPod(o) },
			DeleteFunc: func(o any) {
				if p, ok := unwrap(o).(*corev1.Pod); ok {
					pods.Delete(p.Namespace + "/" + p.Name)
				}
			},
		})
		s.synced = append(s.synced, podInf.Informer().HasSynced)
	}
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { ix.SetNamespace(o.(*corev1.Namespace).Name, true) },
		UpdateFunc: func(_, o any) { ix.SetNamespace(o.(*corev1.Namespace).Name, true) },
		DeleteFunc: func(o any) {
			if ns, ok := unwrap(o).(*corev1.Namespace); ok {
				ix.SetNamespace(ns.Name, false)
			}
		},
	})
	return s
}

// update converts a Service (with its endpoints when headless) into the index.
func (s *Source) update(svc *corev1.Service) {
	d := FromService(svc)
	if d == nil {
		s.ix.DeleteService(svc.Namespace, svc.Name)
		return
	}
	if d.Headless {
		slices, _ := s.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
		d.Endpoints = EndpointsFromSlices(slices)
	}
	s.ix.SetService(d)
}

// Run waits for the first full sync, then marks the index ready (cluster names
// get SERVFAIL until then).
func (s *Source) Run(ctx context.Context) bool {
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return false
	}
	s.ix.SetSynced()
	s.log.Info("cluster DNS index synced")
	return true
}

// RunWithClient starts informers on client and the source until ctx ends (pods:
// see NewSource).
func RunWithClient(ctx context.Context, client kubernetes.Interface, ix *Index, log *slog.Logger, pods *PodIPs) *Source {
	factory := informers.NewSharedInformerFactory(client, 0)
	src := NewSource(ix, factory, log, pods)
	factory.Start(ctx.Done())
	go src.Run(ctx)
	return src
}

func slimMeta(m metav1.ObjectMeta, keepLabels ...string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	for _, k := range keepLabels {
		if v, ok := m.Labels[k]; ok {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[k] = v
		}
	}
	return out
}

func slimService(o any) (any, error) {
	s, ok := o.(*corev1.Service)
	if !ok {
		return o, nil
	}
	return &corev1.Service{ObjectMeta: slimMeta(s.ObjectMeta), Spec: corev1.ServiceSpec{Type: s.Spec.Type, ClusterIP: s.Spec.ClusterIP,
		ClusterIPs: s.Spec.ClusterIPs, ExternalName: s.Spec.ExternalName, Ports: s.Spec.Ports}}, nil
}

func slimSlice(o any) (any, error) {
	s, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return o, nil
	}
	out := &discoveryv1.EndpointSlice{ObjectMeta: slimMeta(s.ObjectMeta, discoveryv1.LabelServiceName), AddressType: s.AddressType}
	for _, e := range s.Endpoints {
		out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{Addresses: e.Addresses, Hostname: e.Hostname,
			Conditions: discoveryv1.EndpointConditions{Ready: e.Conditions.Ready}})
	}
	return out, nil
}

func slimNamespace(o any) (any, error) {
	n, ok := o.(*corev1.Namespace)
	if !ok {
		return o, nil
	}
	return &corev1.Namespace{ObjectMeta: slimMeta(n.ObjectMeta)}, nil
}
