package workload

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/owned"
	"github.com/svcnet/svcnet/internal/controller/queue"
)

// burst is the most pods one ReplicaSet sync creates or deletes.
const burst = 500

// expectTimeout bounds how long a sync waits for its own pod writes to show up.
const expectTimeout = time.Minute

// podSet is what keeping a number of pods needs of their owner, a ReplicaSet or
// a ReplicationController, taken from the cached object at the edge.
type podSet struct {
	owner    runtime.Object // events are recorded on it
	meta     metav1.Object
	ref      metav1.OwnerReference // the controller reference of its pods
	selector labels.Selector
	template *corev1.PodTemplateSpec
	replicas int32
	minReady int32
	// setStatus writes the owner's status from the counted pods, if it changed.
	setStatus func(ctx context.Context, c replicaCounts) error
}

// replicaCounts are the pod counts both kinds report in their status.
type replicaCounts struct {
	replicas, fullyLabeled, ready, available int32
}

// keeper keeps each owner's number of active pods at its replicas; ReplicaSets
// and ReplicationControllers are two keepers over one pod informer.
type keeper struct {
	kind     string // the owner's Kind in its pods' controller references
	get      func(ns, name string) (*podSet, error)
	client   kubernetes.Interface
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
	expect   owned.Expectations // pod writes not yet in the cache, by owner key
}

// newKeeper wires a keeper for owners of kind watched by owners to the pod informer.
func newKeeper(kind, name string, owners cache.SharedIndexInformer, get func(ns, name string) (*podSet, error),
	client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *keeper {
	c := &keeper{kind: kind, get: get, client: client, recorder: recorder, now: time.Now, expect: owned.Expectations{Timeout: expectTimeout}}
	c.loop = queue.New(name, c.sync, log)
	podInf := factory.Core().V1().Pods()
	c.pods = podInf.Lister()
	c.synced = []cache.InformerSynced{owners.HasSynced, podInf.Informer().HasSynced}
	_, _ = owners.AddEventHandler(c.loop.ObjectHandler())
	// Unlike owned.Handler: an update queues the old owner too, a deletion is expected.
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if k, ok := owned.OwnerKey(o, kind); ok {
				c.expect.Observe(k, 1, 0)
				c.loop.Add(k)
			}
		},
		UpdateFunc: func(old, o any) {
			for _, x := range []any{old, o} {
				if k, ok := owned.OwnerKey(x, kind); ok {
					c.loop.Add(k)
				}
			}
		},
		DeleteFunc: func(o any) {
			if k, ok := owned.OwnerKey(o, kind); ok {
				c.expect.Observe(k, 0, 1)
				c.loop.Add(k)
			}
		},
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *keeper) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// ReplicaSets keeps each ReplicaSet's number of active pods at spec.replicas.
type ReplicaSets struct{ *keeper }

// NewReplicaSets wires the controller to informers from factory.
func NewReplicaSets(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *ReplicaSets {
	inf := factory.Apps().V1().ReplicaSets()
	sets := inf.Lister()
	get := func(ns, name string) (*podSet, error) {
		rs, err := sets.ReplicaSets(ns).Get(name)
		if err != nil {
			return nil, err
		}
		return replicaSetPods(client, rs)
	}
	return &ReplicaSets{newKeeper("ReplicaSet", "replicaset", inf.Informer(), get, client, factory, recorder, log)}
}

func replicaSetPods(client kubernetes.Interface, rs *appsv1.ReplicaSet) (*podSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return nil, err
	}
	return &podSet{owner: rs, meta: rs, ref: *metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet")), selector: sel, template: &rs.Spec.Template,
		replicas: derefInt32(rs.Spec.Replicas), minReady: rs.Spec.MinReadySeconds,
		setStatus: func(ctx context.Context, c replicaCounts) error {
			st := appsv1.ReplicaSetStatus{Replicas: c.replicas, FullyLabeledReplicas: c.fullyLabeled, ReadyReplicas: c.ready,
				AvailableReplicas: c.available, ObservedGeneration: rs.Generation, Conditions: rs.Status.Conditions}
			if apiequality.Semantic.DeepEqual(st, rs.Status) {
				return nil
			}
			cp := rs.DeepCopy()
			cp.Status = st
			_, err := client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
			return err
		}}, nil
}

func (c *keeper) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	s, err := c.get(ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || s.meta.GetDeletionTimestamp() != nil {
		return err
	}
	now := c.now()
	if !c.expect.Satisfied(key, now) {
		return nil // our last creates/deletes are not in the cache yet; their events requeue
	}
	if s.selector.Empty() {
		return nil // matches nothing to keep (validation refuses it anyway)
	}
	act, err := c.claim(ctx, ns, s)
	if err != nil {
		return err
	}
	var manageErr error
	control := owned.PodControl{Client: c.client, Recorder: c.recorder}
	switch diff := len(act) - int(s.replicas); {
	case diff < 0 && s.template != nil:
		manageErr = control.CreatePods(ctx, s.owner, key, min(-diff, burst), func(int) *corev1.Pod { return owned.NewPod(s.template, ns, s.ref) }, &c.expect, now)
	case diff > 0:
		n := min(diff, burst)
		deletionOrder(act)
		c.expect.Expect(key, 0, n, now)
		for i, p := range act[:n] {
			if err := control.Delete(ctx, s.owner, p); err != nil {
				c.expect.Observe(key, 0, n-i)
				manageErr = err
				break
			}
		}
	}
	var tmplLabels map[string]string
	if s.template != nil {
		tmplLabels = s.template.Labels
	}
	counts, wait := countReplicas(tmplLabels, s.minReady, act, now)
	if wait > 0 {
		c.loop.AddAfter(key, wait)
	}
	if err := s.setStatus(ctx, counts); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return manageErr
}

// claim returns the set's active pods, adopting the orphans its selector
// matches and releasing its pods the selector no longer matches, as
// Kubernetes' ReplicaSet controller does.
func (c *keeper) claim(ctx context.Context, ns string, s *podSet) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var act []*corev1.Pod
	for _, p := range all {
		if active(p) {
			act = append(act, p)
		}
	}
	return owned.ClaimPods(ctx, c.client, act, s.selector, s.ref)
}

// countReplicas counts the active pods for the status, and says when the next
// pod becomes available (minReadySeconds).
func countReplicas(tmplLabels map[string]string, minReady int32, act []*corev1.Pod, now time.Time) (replicaCounts, time.Duration) {
	c := replicaCounts{replicas: int32(len(act))}
	tmpl := labels.SelectorFromSet(tmplLabels)
	var wait time.Duration
	for _, p := range act {
		if tmpl.Matches(labels.Set(p.Labels)) {
			c.fullyLabeled++
		}
		if ready(p) {
			c.ready++
		}
		ok, w := available(p, minReady, now)
		if ok {
			c.available++
		} else if w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
	}
	return c, wait
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
