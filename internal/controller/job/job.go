package job

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/owned"
	"github.com/svcnet/svcnet/internal/controller/queue"
)

// DefaultBackoff is the first delay before a failed pod is replaced (Kubernetes: 10s).
const DefaultBackoff = 10 * time.Second

// expectTimeout bounds how long a sync waits to see the pods it created.
const expectTimeout = 30 * time.Second

// Controller runs Jobs' pods to completion.
type Controller struct {
	client   kubernetes.Interface
	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
	backoff  time.Duration
	expect   owned.Expectations // creations not yet in the pod cache, by Job key
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	jobInf, podInf := factory.Batch().V1().Jobs(), factory.Core().V1().Pods()
	c := &Controller{client: client, jobs: jobInf.Lister(), pods: podInf.Lister(), recorder: recorder, now: time.Now,
		backoff: DefaultBackoff, expect: owned.Expectations{Timeout: expectTimeout},
		synced: []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced}}
	c.loop = queue.New("job", c.sync, log.With("controller", "job"))
	_, _ = jobInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	_, _ = podInf.Informer().AddEventHandler(owned.Handler("Job", c.loop.Add, func(key string) { c.expect.Observe(key, 1, 0) }))
	// an orphan pod (no controller) syncs the Jobs whose selector matches it: they adopt it
	orphan := func(o any) {
		p, ok := o.(*corev1.Pod)
		if !ok || metav1.GetControllerOf(p) != nil {
			return
		}
		jobs, _ := c.jobs.Jobs(p.Namespace).List(labels.Everything())
		for _, j := range jobs {
			if sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
				c.loop.AddObject(j)
			}
		}
	}
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: orphan, UpdateFunc: func(_, o any) { orphan(o) }})
	return c
}

// claim returns the Job's pods, adopting orphans its selector matches and
// releasing its pods the selector no longer matches, as Kubernetes does.
func (c *Controller) claim(ctx context.Context, j *batchv1.Job, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(j.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return owned.ClaimPods(ctx, c.client, all, sel, *metav1.NewControllerRef(j, batchv1.SchemeGroupVersion.WithKind("Job")))
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// newPod builds a pod of j from its template; index >= 0 is its completion
// index (Indexed jobs), given as Kubernetes does.
func newPod(j *batchv1.Job, index int) *corev1.Pod {
	p := owned.NewPod(&j.Spec.Template, j.Namespace, *metav1.NewControllerRef(j, batchv1.SchemeGroupVersion.WithKind("Job")))
	if index < 0 {
		return p
	}
	ix := strconv.Itoa(index)
	p.GenerateName = j.Name + "-" + ix + "-"
	p.Labels[batchv1.JobCompletionIndexAnnotation], p.Annotations[batchv1.JobCompletionIndexAnnotation] = ix, ix
	p.Spec.Hostname = j.Name + "-" + ix
	env := corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"}}}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			cs[i].Env = append(cs[i].Env, env)
		}
	}
	return p
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	j, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || j.DeletionTimestamp != nil {
		return err
	}
	if !c.expect.Satisfied(key, c.now()) {
		return nil // the pods it created are not in the cache yet; their events requeue
	}
	sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
	if err != nil || sel.Empty() {
		return err
	}
	pods, err := c.claim(ctx, j, sel)
	if err != nil {
		return err
	}
	d := plan(j, pods, c.now(), c.backoff)
	if d.deleteJob {
		policy := metav1.DeletePropagationBackground
		uid := j.UID
		err := c.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if d.requeue > 0 {
		c.loop.AddAfter(key, d.requeue)
	}
	control := owned.PodControl{Client: c.client, Recorder: c.recorder}
	applyErr := control.CreatePods(ctx, j, key, d.create, func(i int) *corev1.Pod {
		index := -1
		if i < len(d.indexes) {
			index = d.indexes[i]
		}
		p := newPod(j, index)
		if i < len(d.failureCounts) {
			p.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(int(d.failureCounts[i][0]))
			if d.failureCounts[i][1] > 0 {
				p.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(int(d.failureCounts[i][1]))
			}
		}
		return p
	}, &c.expect, c.now())
	for _, p := range d.del {
		if err := control.Delete(ctx, j, p); err != nil {
			applyErr = err
			break
		}
	}
	if !apiequality.Semantic.DeepEqual(d.status, j.Status) {
		c.event(j, &d.status)
		cp := j.DeepCopy()
		cp.Status = d.status
		if _, err := c.client.BatchV1().Jobs(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
	}
	return applyErr
}

// event records the Job finishing, as Kubernetes does.
func (c *Controller) event(j *batchv1.Job, st *batchv1.JobStatus) {
	switch {
	case isTrue(st, batchv1.JobComplete) && !isTrue(&j.Status, batchv1.JobComplete):
		c.recorder.Event(j, corev1.EventTypeNormal, "Completed", "Job completed")
	case isTrue(st, batchv1.JobFailed) && !isTrue(&j.Status, batchv1.JobFailed):
		cond := condition(st, batchv1.JobFailed)
		c.recorder.Event(j, corev1.EventTypeWarning, cond.Reason, cond.Message)
	}
}
