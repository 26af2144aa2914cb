package workload

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// burst is the most pods one ReplicaSet sync creates or deletes.
const burst = 500

// expectTimeout bounds how long a sync waits for its own pod writes to show up.
const expectTimeout = time.Minute

// podExpectations count pod creations and deletions a ReplicaSet is waiting to
// see in its cache, so a lagging cache never makes it create pods twice.
type podExpectations struct {
	mu sync.Mutex
	m  map[string]*expected
}

type expected struct {
	adds, dels int
	at         time.Time
}

func (e *podExpectations) set(key string, adds, dels int, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]*expected{}
	}
	e.m[key] = &expected{adds: adds, dels: dels, at: now}
}

func (e *podExpectations) observe(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.m[key]; x != nil {
		x.adds -= adds
		x.dels -= dels
	}
}

func (e *podExpectations) satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.m[key]
	if x == nil || (x.adds <= 0 && x.dels <= 0) || now.Sub(x.at) > expectTimeout {
		delete(e.m, key)
		return true
	}
	return false
}

// ReplicaSets keeps each ReplicaSet's number of active pods at spec.replicas.
type ReplicaSets struct {
	client   kubernetes.Interface
	sets     appslisters.ReplicaSetLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
	expect   podExpectations
}

// NewReplicaSets wires the controller to informers from factory.
func NewReplicaSets(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *ReplicaSets {
	c := &ReplicaSets{client: client, recorder: recorder, now: time.Now}
	c.loop = queue.New("replicaset", c.sync, log)
	rsInf, podInf := factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods()
	c.sets, c.pods = rsInf.Lister(), podInf.Lister()
	c.synced = []cache.InformerSynced{rsInf.Informer().HasSynced, podInf.Informer().HasSynced}
	_, _ = rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.loop.AddObject, UpdateFunc: func(_, o any) { c.loop.AddObject(o) }, DeleteFunc: c.loop.AddObject})
	owner := func(p *corev1.Pod) string {
		if r := controllerOf(p); r != nil && r.Kind == "ReplicaSet" {
			return p.Namespace + "/" + r.Name
		}
		return ""
	}
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if k := owner(o.(*corev1.Pod)); k != "" {
				c.expect.observe(k, 1, 0)
				c.loop.Add(k)
			}
		},
		UpdateFunc: func(old, o any) {
			for _, k := range []string{owner(old.(*corev1.Pod)), owner(o.(*corev1.Pod))} {
				if k != "" {
					c.loop.Add(k)
				}
			}
		},
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				if k := owner(p); k != "" {
					c.expect.observe(k, 0, 1)
					c.loop.Add(k)
				}
			}
		},
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *ReplicaSets) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// podFromTemplate builds a new pod of rs.
func podFromTemplate(rs *appsv1.ReplicaSet) *corev1.Pod {
	t := rs.Spec.Template
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: rs.Name + "-", Namespace: rs.Namespace,
		Labels: map[string]string{}, Annotations: map[string]string{},
		OwnerReferences: []metav1.OwnerReference{ownerRef("ReplicaSet", "apps/v1", rs)}}, Spec: *t.Spec.DeepCopy()}
	for k, v := range t.Labels {
		p.Labels[k] = v
	}
	for k, v := range t.Annotations {
		p.Annotations[k] = v
	}
	return p
}

// ownedPods returns the pods rs controls.
func ownedPods(pods corelisters.PodLister, ns string, sel *metav1.LabelSelector, uid string) ([]*corev1.Pod, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	all, err := pods.Pods(ns).List(s)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, p := range all {
		if r := controllerOf(p); r != nil && string(r.UID) == uid {
			out = append(out, p)
		}
	}
	return out, nil
}

func (c *ReplicaSets) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	rs, err := c.sets.ReplicaSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || rs.DeletionTimestamp != nil {
		return err
	}
	now := c.now()
	if !c.expect.satisfied(key, now) {
		return nil // our last creates/deletes are not in the cache yet; their events requeue
	}
	pods, err := ownedPods(c.pods, ns, rs.Spec.Selector, string(rs.UID))
	if err != nil {
		return err
	}
	var act []*corev1.Pod
	for _, p := range pods {
		if active(p) {
			act = append(act, p)
		}
	}
	want := int(derefInt32(rs.Spec.Replicas))
	var manageErr error
	switch diff := len(act) - want; {
	case diff < 0:
		n := min(-diff, burst)
		c.expect.set(key, n, 0, now)
		for i := 0; i < n; i++ {
			p, err := c.client.CoreV1().Pods(ns).Create(ctx, podFromTemplate(rs), metav1.CreateOptions{})
			if err != nil {
				c.expect.observe(key, n-i, 0)
				c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
				manageErr = err
				break
			}
			c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", p.Name)
		}
	case diff > 0:
		n := min(diff, burst)
		deletionOrder(act)
		c.expect.set(key, 0, n, now)
		for i, p := range act[:n] {
			uid := p.UID
			err := c.client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) {
				c.expect.observe(key, 0, n-i)
				c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
				manageErr = err
				break
			}
			c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		}
	}
	st, wait := replicaSetStatus(rs, act, now)
	if wait > 0 {
		c.loop.AddAfter(key, wait)
	}
	if !apiequality.Semantic.DeepEqual(st, rs.Status) {
		cp := rs.DeepCopy()
		cp.Status = st
		if _, err := c.client.AppsV1().ReplicaSets(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
	}
	return manageErr
}

// replicaSetStatus computes the status from the active pods, and when the next
// pod becomes available (minReadySeconds).
func replicaSetStatus(rs *appsv1.ReplicaSet, act []*corev1.Pod, now time.Time) (appsv1.ReplicaSetStatus, time.Duration) {
	st := appsv1.ReplicaSetStatus{Replicas: int32(len(act)), ObservedGeneration: rs.Generation, Conditions: rs.Status.Conditions}
	tmpl := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var wait time.Duration
	for _, p := range act {
		if tmpl.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if ready(p) {
			st.ReadyReplicas++
		}
		ok, w := available(p, rs.Spec.MinReadySeconds, now)
		if ok {
			st.AvailableReplicas++
		} else if w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
	}
	return st, wait
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
