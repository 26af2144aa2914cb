package statefulset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/history"
	"github.com/svcnet/svcnet/internal/controller/owned"
	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Controller keeps every StatefulSet's pods.
type Controller struct {
	client   kubernetes.Interface
	sets     appslisters.StatefulSetLister
	pods     corelisters.PodLister
	history  history.Store
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	setInf, podInf, revInf := factory.Apps().V1().StatefulSets(), factory.Core().V1().Pods(), factory.Apps().V1().ControllerRevisions()
	c := &Controller{client: client, sets: setInf.Lister(), pods: podInf.Lister(), recorder: recorder, now: time.Now,
		history: history.Store{Client: client, Revisions: revInf.Lister()},
		synced:  []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced, revInf.Informer().HasSynced}}
	c.loop = queue.New("statefulset", c.sync, log.With("controller", "statefulset"))
	_, _ = setInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	_, _ = revInf.Informer().AddEventHandler(history.DeleteHandler("StatefulSet", c.loop.Add))
	_, _ = podInf.Informer().AddEventHandler(owned.Handler("StatefulSet", c.loop.Add, nil))
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

func setOf(ss *appsv1.StatefulSet) set {
	s := set{replicas: 1, rolling: ss.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType,
		parallel: ss.Spec.PodManagementPolicy == appsv1.ParallelPodManagement,
		minReady: time.Duration(ss.Spec.MinReadySeconds) * time.Second}
	if ss.Spec.Replicas != nil {
		s.replicas = int(*ss.Spec.Replicas)
	}
	if ss.Spec.Ordinals != nil {
		s.start = int(ss.Spec.Ordinals.Start)
	}
	if ru := ss.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		s.partition = int(*ru.Partition)
	}
	return s
}

// ordinal parses <set>-<n>; ok is false for pods not named as the set's.
func ordinal(setName, podName string) (int, bool) {
	rest, found := strings.CutPrefix(podName, setName+"-")
	if !found {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0 && strconv.Itoa(n) == rest
}

// ownedPods returns the set's pods by ordinal.
func (c *Controller) ownedPods(ss *appsv1.StatefulSet) (map[int]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := owned.Pods(c.pods, ss.Namespace, sel, ss.UID)
	if err != nil {
		return nil, err
	}
	out := map[int]*corev1.Pod{}
	for _, p := range pods {
		if ord, ok := ordinal(ss.Name, p.Name); ok {
			out[ord] = p
		}
	}
	return out, nil
}

// newPod builds the pod of ordinal from the set's template.
func newPod(ss *appsv1.StatefulSet, ord int, rev string) *corev1.Pod {
	name := podName(ss.Name, ord)
	p := owned.NewPod(&ss.Spec.Template, ss.Namespace, *metav1.NewControllerRef(ss, appsv1.SchemeGroupVersion.WithKind("StatefulSet")))
	p.GenerateName, p.Name = "", name
	p.Labels[LabelPodName], p.Labels[LabelPodIndex], p.Labels[LabelRevision] = name, strconv.Itoa(ord), rev
	p.Spec.Hostname, p.Spec.Subdomain = name, ss.Spec.ServiceName
	return p
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	ss, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || ss.DeletionTimestamp != nil {
		return err
	}
	pods, err := c.ownedPods(ss)
	if err != nil {
		return err
	}
	s := setOf(ss)
	var current string
	if s.updateRev, current, err = c.syncHistory(ctx, ss, pods); err != nil {
		return err
	}
	var applyErr error
	for _, st := range plan(s, pods) {
		if st.del == nil {
			p, err := c.client.CoreV1().Pods(ns).Create(ctx, c.versionedPod(ss, s, current, st.create), metav1.CreateOptions{})
			if err != nil {
				c.recorder.Eventf(ss, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", podName(ss.Name, st.create), ss.Name, err)
				applyErr = err
				break
			}
			pods[st.create] = p
			c.recorder.Eventf(ss, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", p.Name, ss.Name)
			continue
		}
		uid := st.del.UID
		err := c.client.CoreV1().Pods(ns).Delete(ctx, st.del.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			c.recorder.Eventf(ss, corev1.EventTypeWarning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", st.del.Name, ss.Name, err)
			applyErr = err
			break
		}
		c.recorder.Eventf(ss, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", st.del.Name, ss.Name)
	}
	if err := c.updateStatus(ctx, ss, s, current, pods); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return applyErr
}

// updateStatus writes the counts; the current revision becomes the update
// revision once every wanted pod runs it and is Ready.
func (c *Controller) updateStatus(ctx context.Context, ss *appsv1.StatefulSet, s set, current string, pods map[int]*corev1.Pod) error {
	n := count(s, current, pods, c.now())
	if n.wait > 0 {
		c.loop.AddAfter(ss.Namespace+"/"+ss.Name, n.wait)
	}
	want := int32(s.replicas)
	if s.rolling && current != s.updateRev && n.updated == want && n.ready == want && n.replicas == want {
		current, n.current = s.updateRev, n.updated
	}
	st := ss.Status.DeepCopy()
	st.ObservedGeneration = ss.Generation
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas = n.replicas, n.ready, n.available
	st.CurrentReplicas, st.UpdatedReplicas = n.current, n.updated
	st.CurrentRevision, st.UpdateRevision = current, s.updateRev
	if apiequality.Semantic.DeepEqual(*st, ss.Status) {
		return nil
	}
	cp := ss.DeepCopy()
	cp.Status = *st
	_, err := c.client.AppsV1().StatefulSets(ss.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	return err
}

// versionedPod builds the pod of ordinal as Kubernetes does during a
// rollout: below the partition from the current revision's template, else
// from the set's own (the update revision).
func (c *Controller) versionedPod(ss *appsv1.StatefulSet, s set, current string, ord int) *corev1.Pod {
	if s.rolling && current != s.updateRev && ord < s.start+s.partition {
		if r, err := c.history.Revisions.ControllerRevisions(ss.Namespace).Get(current); err == nil {
			if t, err := history.Template(r); err == nil {
				old := ss.DeepCopy()
				old.Spec.Template = *t
				return newPod(old, ord, current)
			}
		}
	}
	return newPod(ss, ord, s.updateRev)
}

// syncHistory keeps the StatefulSet's ControllerRevisions and returns the
// update revision (its template's, which new pods get) and the current one
// (status.currentRevision while that revision exists, else the update one).
func (c *Controller) syncHistory(ctx context.Context, ss *appsv1.StatefulSet, pods map[int]*corev1.Pod) (update, current string, err error) {
	sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
	if err != nil {
		return "", "", err
	}
	data, err := history.Data(&ss.Spec.Template)
	if err != nil {
		return "", "", err
	}
	live := map[string]bool{ss.Status.CurrentRevision: true, ss.Status.UpdateRevision: true}
	for _, p := range pods {
		live[p.Labels[LabelRevision]] = true
	}
	limit := int32(10)
	if ss.Spec.RevisionHistoryLimit != nil {
		limit = *ss.Spec.RevisionHistoryLimit
	}
	s := history.Set{Name: ss.Name, Template: &ss.Spec.Template, Data: data, Collisions: ss.Status.CollisionCount, Limit: limit,
		Live: func(r *appsv1.ControllerRevision) bool { return live[r.Name] }}
	cur, err := c.history.Sync(ctx, ss, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), sel, s, nil)
	if errors.Is(err, history.ErrCollision) {
		cp := ss.DeepCopy()
		cp.Status.CollisionCount = history.BumpCollisions(cp.Status.CollisionCount)
		if _, uerr := c.client.AppsV1().StatefulSets(ss.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); uerr != nil {
			return "", "", uerr
		}
		return "", "", err // synced again with the new count
	}
	if err != nil {
		return "", "", err
	}
	current = cur.Name
	if name := ss.Status.CurrentRevision; name != "" && name != cur.Name {
		if _, gerr := c.history.Revisions.ControllerRevisions(ss.Namespace).Get(name); gerr == nil {
			current = name
		}
	}
	return cur.Name, current, nil
}
