package statefulset

import (
	"context"
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

	"github.com/svcnet/svcnet/internal/controller/owned"
	"github.com/svcnet/svcnet/internal/controller/queue"
	"github.com/svcnet/svcnet/internal/controller/workload"
)

// Controller keeps every StatefulSet's pods.
type Controller struct {
	client   kubernetes.Interface
	sets     appslisters.StatefulSetLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	setInf, podInf := factory.Apps().V1().StatefulSets(), factory.Core().V1().Pods()
	c := &Controller{client: client, sets: setInf.Lister(), pods: podInf.Lister(), recorder: recorder, now: time.Now,
		synced: []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced}}
	c.loop = queue.New("statefulset", c.sync, log.With("controller", "statefulset"))
	_, _ = setInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	_, _ = podInf.Informer().AddEventHandler(owned.Handler("StatefulSet", c.loop.Add, nil))
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// revision names a template as Kubernetes names ControllerRevisions: <set>-<hash>.
func revision(ss *appsv1.StatefulSet) string {
	return ss.Name + "-" + workload.TemplateHash(&ss.Spec.Template, ss.Status.CollisionCount)
}

func setOf(ss *appsv1.StatefulSet) set {
	s := set{replicas: 1, rolling: ss.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType,
		parallel: ss.Spec.PodManagementPolicy == appsv1.ParallelPodManagement, updateRev: revision(ss),
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
	var applyErr error
	for _, st := range plan(s, pods) {
		if st.del == nil {
			p, err := c.client.CoreV1().Pods(ns).Create(ctx, newPod(ss, st.create, s.updateRev), metav1.CreateOptions{})
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
	if err := c.updateStatus(ctx, ss, s, pods); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return applyErr
}

// updateStatus writes the counts; the current revision becomes the update
// revision once every wanted pod runs it and is Ready.
func (c *Controller) updateStatus(ctx context.Context, ss *appsv1.StatefulSet, s set, pods map[int]*corev1.Pod) error {
	current := ss.Status.CurrentRevision
	if current == "" {
		current = s.updateRev
	}
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
