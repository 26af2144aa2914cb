package daemonset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/history"
	"github.com/svcnet/svcnet/internal/controller/owned"
	"github.com/svcnet/svcnet/internal/controller/queue"
	"github.com/svcnet/svcnet/internal/controller/workload"
)

// expectTimeout bounds how long a sync waits to see the pods it created.
const expectTimeout = 30 * time.Second

// Controller keeps one pod of every DaemonSet on each node that fits it.
type Controller struct {
	client   kubernetes.Interface
	sets     appslisters.DaemonSetLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	history  history.Store
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
	expect   owned.Expectations // creations not yet in the pod cache, by DaemonSet key
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	dsInf, podInf, nodeInf := factory.Apps().V1().DaemonSets(), factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	revInf := factory.Apps().V1().ControllerRevisions()
	c := &Controller{client: client, sets: dsInf.Lister(), pods: podInf.Lister(), nodes: nodeInf.Lister(), recorder: recorder,
		now: time.Now, expect: owned.Expectations{Timeout: expectTimeout},
		history: history.Store{Client: client, Revisions: revInf.Lister()},
		synced: []cache.InformerSynced{dsInf.Informer().HasSynced, podInf.Informer().HasSynced, nodeInf.Informer().HasSynced,
			revInf.Informer().HasSynced}}
	c.loop = queue.New("daemonset", c.sync, log.With("controller", "daemonset"))
	_, _ = dsInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	_, _ = revInf.Informer().AddEventHandler(history.DeleteHandler("DaemonSet", c.loop.Add))
	_, _ = podInf.Informer().AddEventHandler(owned.Handler("DaemonSet", c.loop.Add, func(key string) { c.expect.Observe(key, 1, 0) }))
	all := func(any) {
		sets, _ := c.sets.List(labels.Everything())
		for _, ds := range sets {
			c.loop.AddObject(ds)
		}
	}
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: all, DeleteFunc: all,
		UpdateFunc: func(old, cur any) {
			a, b := old.(*corev1.Node), cur.(*corev1.Node)
			if !maps.Equal(a.Labels, b.Labels) || !apiequality.Semantic.DeepEqual(a.Spec.Taints, b.Spec.Taints) ||
				a.Spec.Unschedulable != b.Spec.Unschedulable || nodeReady(a) != nodeReady(b) {
				all(cur)
			}
		}})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

func daemonOf(ds *appsv1.DaemonSet) daemon {
	d := daemon{spec: &ds.Spec.Template.Spec, tolerations: podTolerations(&ds.Spec.Template.Spec),
		hash:     workload.TemplateHash(&ds.Spec.Template, ds.Status.CollisionCount),
		rolling:  ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType,
		minReady: time.Duration(ds.Spec.MinReadySeconds) * time.Second, maxUnavailable: intstr.FromInt32(1)}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		d.maxUnavailable = *ru.MaxUnavailable
	}
	return d
}

// newPod builds the daemon pod for node.
func newPod(ds *appsv1.DaemonSet, d daemon, node string) *corev1.Pod {
	p := owned.NewPod(&ds.Spec.Template, ds.Namespace, *metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet")))
	p.Labels[appsv1.ControllerRevisionHashLabelKey] = d.hash
	p.Labels[appsv1.DeprecatedTemplateGeneration] = strconv.FormatInt(ds.Generation, 10)
	p.Spec.NodeName = node
	p.Spec.Tolerations = d.tolerations
	return p
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	ds, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || ds.DeletionTimestamp != nil {
		return err
	}
	if !c.expect.Satisfied(key, c.now()) {
		return nil // the pods it created are not in the cache yet; their events requeue
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() {
		return err
	}
	pods, err := owned.Pods(c.pods, ns, sel, ds.UID)
	if err != nil {
		return err
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	d := daemonOf(ds)
	if d.hash, err = c.syncHistory(ctx, ds, sel, pods); err != nil {
		return err
	}
	dec := plan(d, nodes, byNode, c.now())
	if dec.wait > 0 {
		c.loop.AddAfter(key, dec.wait)
	}
	control := owned.PodControl{Client: c.client, Recorder: c.recorder}
	applyErr := control.CreatePods(ctx, ds, key, len(dec.create), func(i int) *corev1.Pod { return newPod(ds, d, dec.create[i]) }, &c.expect, c.now())
	for _, p := range dec.del {
		if err := control.Delete(ctx, ds, p); err != nil {
			applyErr = err
			break
		}
	}
	st := dec.status
	st.ObservedGeneration, st.CollisionCount, st.Conditions = ds.Generation, ds.Status.CollisionCount, ds.Status.Conditions
	if !apiequality.Semantic.DeepEqual(st, ds.Status) {
		cp := ds.DeepCopy()
		cp.Status = st
		if _, err := c.client.AppsV1().DaemonSets(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
	}
	return applyErr
}

// syncHistory keeps the DaemonSet's ControllerRevisions and returns the hash
// of the current one, which its up-to-date pods carry.
func (c *Controller) syncHistory(ctx context.Context, ds *appsv1.DaemonSet, sel labels.Selector, pods []*corev1.Pod) (string, error) {
	data, err := history.Data(&ds.Spec.Template)
	if err != nil {
		return "", err
	}
	running := map[string]bool{}
	for _, p := range pods {
		running[p.Labels[history.HashLabel]] = true
	}
	limit := int32(10)
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = *ds.Spec.RevisionHistoryLimit
	}
	s := history.Set{Name: ds.Name, Template: &ds.Spec.Template, Data: data, Collisions: ds.Status.CollisionCount, Limit: limit,
		Live: func(r *appsv1.ControllerRevision) bool { return running[r.Labels[history.HashLabel]] }, Dedupe: true}
	relabel := func(from, to string) error {
		for _, p := range pods {
			if p.Labels[history.HashLabel] != from {
				continue
			}
			patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, history.HashLabel, to)
			if _, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		return nil
	}
	cur, err := c.history.Sync(ctx, ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"), sel, s, relabel)
	if errors.Is(err, history.ErrCollision) {
		cp := ds.DeepCopy()
		cp.Status.CollisionCount = history.BumpCollisions(cp.Status.CollisionCount)
		if _, uerr := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); uerr != nil {
			return "", uerr
		}
		return "", err // synced again with the new count
	}
	if err != nil {
		return "", err
	}
	if h := cur.Labels[history.HashLabel]; h != "" {
		return h, nil
	}
	return cur.Name, nil
}
