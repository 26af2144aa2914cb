package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/queue"
	podstatus "github.com/svcnet/svcnet/internal/pod"
)

// Controller reconciles the EndpointSlices and Endpoints of every Service.
type Controller struct {
	client      kubernetes.Interface
	services    corelisters.ServiceLister
	pods        corelisters.PodLister
	nodes       corelisters.NodeLister
	slices      cache.Indexer // EndpointSlices, indexed byService
	endpoints   corelisters.EndpointsLister
	synced      []cache.InformerSynced
	loop        *queue.Loop
	recorder    record.EventRecorder
	log         *slog.Logger
	now         func() time.Time
	MaxPerSlice int

	mu       sync.Mutex
	triggers map[string]time.Time // first unsynced change per Service key
	expect   expectations
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	c := &Controller{client: client, recorder: recorder, log: log, now: time.Now, MaxPerSlice: DefaultMaxPerSlice,
		triggers: map[string]time.Time{}}
	c.loop = queue.New("endpoints", c.sync, log)
	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	epInf := factory.Core().V1().Endpoints()
	c.services, c.pods, c.nodes, c.endpoints = svcInf.Lister(), podInf.Lister(), nodeInf.Lister(), epInf.Lister()
	// A Service's slices by an index, not by a label selector over every slice
	// of its namespace: that is a scan per sync, quadratic when a namespace
	// holds many Services.
	_ = sliceInf.Informer().AddIndexers(cache.Indexers{byService: sliceService})
	c.slices = sliceInf.Informer().GetIndexer()
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, nodeInf.Informer().HasSynced,
		sliceInf.Informer().HasSynced, epInf.Informer().HasSynced}

	_, _ = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.enqueue(o, true) },
		UpdateFunc: func(_, o any) { c.enqueue(o, true) },
		DeleteFunc: func(o any) { c.enqueue(o, true) },
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { c.podChanged(nil, o.(*corev1.Pod)) },
		UpdateFunc: func(old, o any) {
			if podEndpointChanged(old.(*corev1.Pod), o.(*corev1.Pod)) {
				c.podChanged(old.(*corev1.Pod), o.(*corev1.Pod))
			}
		},
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				c.podChanged(nil, p)
			}
		},
	})
	_, _ = sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.sliceChanged(o) },
		UpdateFunc: func(_, o any) { c.sliceChanged(o) },
		DeleteFunc: func(o any) { c.sliceChanged(o) },
	})
	_, _ = epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.enqueue(o, false) },
		UpdateFunc: func(_, o any) { c.enqueue(o, false) },
		DeleteFunc: func(o any) { c.enqueue(o, false) },
	})
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, o any) {
			if old.(*corev1.Node).Labels[corev1.LabelTopologyZone] != o.(*corev1.Node).Labels[corev1.LabelTopologyZone] {
				c.enqueueAll()
			}
		},
	})
	return c
}

func (c *Controller) enqueueKey(key string, trigger bool) {
	if trigger {
		c.mu.Lock()
		if _, ok := c.triggers[key]; !ok {
			c.triggers[key] = c.now()
		}
		c.mu.Unlock()
	}
	c.loop.Add(key)
}

func (c *Controller) enqueue(o any, trigger bool) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o)
	if err == nil {
		c.enqueueKey(key, trigger)
	}
}

func (c *Controller) enqueueAll() {
	svcs, _ := c.services.List(labels.Everything())
	for _, s := range svcs {
		c.enqueue(s, true)
	}
}

// podEndpointChanged reports whether an update can change the pod's endpoints.
func podEndpointChanged(old, cur *corev1.Pod) bool {
	return old.Status.PodIP != cur.Status.PodIP || podstatus.Ready(old.Status) != podstatus.Ready(cur.Status) || old.Status.Phase != cur.Status.Phase ||
		(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) || old.Spec.NodeName != cur.Spec.NodeName ||
		!labels.Equals(old.Labels, cur.Labels) || old.Spec.Hostname != cur.Spec.Hostname || old.Spec.Subdomain != cur.Spec.Subdomain ||
		!apiequality.Semantic.DeepEqual(old.Status.PodIPs, cur.Status.PodIPs)
}

// podChanged enqueues every Service in the pod's namespace selecting it (before or after).
func (c *Controller) podChanged(old, cur *corev1.Pod) {
	svcs, err := c.services.Services(cur.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		if sel.Matches(labels.Set(cur.Labels)) || (old != nil && sel.Matches(labels.Set(old.Labels))) {
			c.enqueue(s, true)
		}
	}
}

func (c *Controller) sliceChanged(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	s, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if by := s.Labels[discoveryv1.LabelManagedBy]; by != ManagedBy && by != MirrorManagedBy {
		return
	}
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		c.enqueueKey(s.Namespace+"/"+name, false)
	}
}

// Run processes changes with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// takeTrigger returns and clears the first unsynced change time of key.
func (c *Controller) takeTrigger(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.triggers[key]
	if !ok {
		return ""
	}
	delete(c.triggers, key)
	return t.UTC().Format(time.RFC3339Nano)
}

// byService indexes EndpointSlices by the namespace/name of their Service
// (their kubernetes.io/service-name label).
const byService = "service"

func sliceService(o any) ([]string, error) {
	s, ok := o.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}, nil
}

// servicesSlices are the EndpointSlices of the Service key (namespace/name).
func servicesSlices(ix cache.Indexer, key string) ([]*discoveryv1.EndpointSlice, error) {
	objs, err := ix.ByIndex(byService, key)
	if err != nil {
		return nil, err
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*discoveryv1.EndpointSlice))
	}
	return out, nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	all, err := servicesSlices(c.slices, key)
	if err != nil {
		return err
	}
	if !c.expect.fresh(key, all) {
		return nil // our last writes are not in the cache yet; their events requeue key
	}
	var ours, mirrors []*discoveryv1.EndpointSlice
	for _, s := range all {
		switch s.Labels[discoveryv1.LabelManagedBy] {
		case ManagedBy:
			ours = append(ours, s)
		case MirrorManagedBy:
			mirrors = append(mirrors, s)
		}
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The Service is gone: so are the objects derived from it.
		c.takeTrigger(key)
		c.expect.forget(key)
		if err := c.apply(ctx, key, nil, Plan{Delete: append(ours, mirrors...)}); err != nil {
			return err
		}
		return c.deleteOurEndpoints(ctx, ep)
	}
	if err != nil {
		return err
	}
	if len(svc.Spec.Selector) == 0 {
		// Selectorless (including ExternalName): Endpoints belong to the user and
		// are mirrored; whatever we derived from an earlier selector goes.
		c.takeTrigger(key)
		if err := c.apply(ctx, key, svc, Plan{Delete: ours}); err != nil {
			return err
		}
		if ep == nil || ep.Labels[LabelEndpointsBy] == EndpointsManagedBy || ep.Labels[LabelSkipMirror] == "true" ||
			svc.Spec.Type == corev1.ServiceTypeExternalName {
			if err := c.apply(ctx, key, svc, Plan{Delete: mirrors}); err != nil {
				return err
			}
			return c.deleteOurEndpoints(ctx, ep)
		}
		return c.apply(ctx, key, svc, PlanMirrorSlices(svc, ep, mirrors, c.MaxPerSlice))
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	nodes := map[string]*corev1.Node{}
	for _, p := range pods {
		if n := p.Spec.NodeName; n != "" && nodes[n] == nil {
			if node, err := c.nodes.Get(n); err == nil {
				nodes[n] = node
			}
		}
	}
	trigger := c.takeTrigger(key)
	plan := PlanServiceSlices(svc, pods, nodes, ours, c.MaxPerSlice, trigger)
	plan.Delete = append(plan.Delete, mirrors...)
	if err := c.apply(ctx, key, svc, plan); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return err // a stale cache; retried, not worth an event
		}
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices", "Error updating Endpoint Slices for Service %s/%s: %v", ns, name, err)
		return err
	}
	if err := c.syncEndpoints(ctx, svc, ep, DesiredEndpoints(svc, pods), trigger); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return err
		}
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpoint", "Failed to update endpoint %s/%s: %v", ns, name, err)
		return err
	}
	return nil
}

func (c *Controller) deleteOurEndpoints(ctx context.Context, ep *corev1.Endpoints) error {
	if ep == nil || ep.Labels[LabelEndpointsBy] != EndpointsManagedBy {
		return nil
	}
	err := c.client.CoreV1().Endpoints(ep.Namespace).Delete(ctx, ep.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ep.UID}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// apply writes a plan: deletes first, then updates, then creates, and records
// what it wrote so the next sync waits for the cache to show it.
func (c *Controller) apply(ctx context.Context, key string, svc *corev1.Service, p Plan) (err error) {
	written := map[string]int64{}
	defer func() { c.expect.record(key, written) }()
	api := func(ns string) interface {
		Create(context.Context, *discoveryv1.EndpointSlice, metav1.CreateOptions) (*discoveryv1.EndpointSlice, error)
		Update(context.Context, *discoveryv1.EndpointSlice, metav1.UpdateOptions) (*discoveryv1.EndpointSlice, error)
		Delete(context.Context, string, metav1.DeleteOptions) error
	} {
		return c.client.DiscoveryV1().EndpointSlices(ns)
	}
	for _, s := range p.Delete {
		if err := api(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete slice %s: %w", s.Name, err)
		}
		written[s.Name] = -1
	}
	for _, s := range p.Update {
		out, err := api(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update slice %s: %w", s.Name, err)
		}
		written[out.Name] = rev(out)
	}
	for _, s := range p.Create {
		if svc != nil && svc.DeletionTimestamp != nil {
			break
		}
		out, err := api(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create slice for %s: %w", s.GenerateName, err)
		}
		written[out.Name] = rev(out)
	}
	return nil
}

// syncEndpoints writes the legacy Endpoints object when it differs.
func (c *Controller) syncEndpoints(ctx context.Context, svc *corev1.Service, cur, want *corev1.Endpoints, trigger string) error {
	if cur != nil && apiequality.Semantic.DeepEqual(cur.Subsets, want.Subsets) && labels.Equals(cur.Labels, want.Labels) &&
		cur.Annotations[AnnotationOverCap] == want.Annotations[AnnotationOverCap] {
		return nil
	}
	if want.Annotations == nil {
		want.Annotations = map[string]string{}
	}
	if trigger != "" {
		want.Annotations[AnnotationTrigger] = trigger
	}
	api := c.client.CoreV1().Endpoints(svc.Namespace)
	if cur == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// The cache had not seen it yet: compare with the stored object.
		if cur, err = api.Get(ctx, want.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		return c.syncEndpoints(ctx, svc, cur, want, trigger)
	}
	want.ResourceVersion = cur.ResourceVersion
	_, err := api.Update(ctx, want, metav1.UpdateOptions{})
	return err
}
