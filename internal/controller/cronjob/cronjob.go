package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
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
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/owned"
	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Controller starts CronJobs' Jobs on schedule.
type Controller struct {
	client   kubernetes.Interface
	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	cjInf, jobInf := factory.Batch().V1().CronJobs(), factory.Batch().V1().Jobs()
	c := &Controller{client: client, cronJobs: cjInf.Lister(), jobs: jobInf.Lister(), recorder: recorder, now: time.Now,
		synced: []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced}}
	c.loop = queue.New("cronjob", c.sync, log.With("controller", "cronjob"))
	_, _ = cjInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	_, _ = jobInf.Informer().AddEventHandler(owned.Handler("CronJob", c.loop.Add, nil))
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// newJob builds the Job of cj scheduled at t.
func newJob(cj *batchv1.CronJob, t time.Time) *batchv1.Job {
	yes := true
	tmpl := &cj.Spec.JobTemplate
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: jobName(cj, t), Namespace: cj.Namespace,
		Labels: maps.Clone(tmpl.Labels), Annotations: maps.Clone(tmpl.Annotations),
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
			Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: *tmpl.Spec.DeepCopy()}
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.Annotations[AnnotationScheduledTimestamp] = t.Format(time.RFC3339)
	return j
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	cj, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || cj.DeletionTimestamp != nil {
		return err
	}
	all, err := c.jobs.Jobs(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	d, err := plan(cj, owned.Controlled(all, cj.UID), c.now())
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "%v", err)
		return nil // nothing to retry until the spec changes
	}
	if d.requeue > 0 {
		c.loop.AddAfter(key, d.requeue)
	}
	policy := metav1.DeletePropagationBackground
	for _, j := range d.del {
		uid := j.UID
		err := c.client.BatchV1().Jobs(ns).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
			return err
		}
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
	}
	if d.create != nil {
		j, err := c.client.BatchV1().Jobs(ns).Create(ctx, newJob(cj, *d.create), metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			return nil // created by an earlier sync; the job's event requeues
		case err != nil:
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
			return err
		}
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", j.Name)
		d.status.Active = append(d.status.Active, ref(j))
	}
	if apiequality.Semantic.DeepEqual(d.status, cj.Status) {
		return nil
	}
	cp := cj.DeepCopy()
	cp.Status = d.status
	if _, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}
