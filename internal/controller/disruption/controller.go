package disruption

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Controller keeps the status of every PodDisruptionBudget.
type Controller struct {
	client  kubernetes.Interface
	pdbs    policylisters.PodDisruptionBudgetLister
	pods    corelisters.PodLister
	rcs     corelisters.ReplicationControllerLister
	rss     appslisters.ReplicaSetLister
	deploys appslisters.DeploymentLister
	sets    appslisters.StatefulSetLister
	synced  []cache.InformerSynced
	loop    *queue.Loop
	now     func() time.Time
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) *Controller {
	c := &Controller{client: client, now: time.Now}
	c.loop = queue.New("disruption", c.sync, log.With("controller", "disruption"))
	pdbInf := factory.Policy().V1().PodDisruptionBudgets()
	podInf := factory.Core().V1().Pods()
	rcInf, rsInf := factory.Core().V1().ReplicationControllers(), factory.Apps().V1().ReplicaSets()
	depInf, ssInf := factory.Apps().V1().Deployments(), factory.Apps().V1().StatefulSets()
	c.pdbs, c.pods, c.rcs, c.rss, c.deploys, c.sets = pdbInf.Lister(), podInf.Lister(), rcInf.Lister(), rsInf.Lister(), depInf.Lister(), ssInf.Lister()
	for _, inf := range []cache.SharedIndexInformer{pdbInf.Informer(), podInf.Informer(), rcInf.Informer(), rsInf.Informer(), depInf.Informer(), ssInf.Informer()} {
		c.synced = append(c.synced, inf.HasSynced)
	}
	_, _ = pdbInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	namespaceOf := func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		if m, ok := o.(metav1.Object); ok {
			c.enqueueNamespace(m.GetNamespace())
		}
	}
	byNamespace := cache.ResourceEventHandlerFuncs{AddFunc: namespaceOf, UpdateFunc: func(_, o any) { namespaceOf(o) }, DeleteFunc: namespaceOf}
	for _, inf := range []cache.SharedIndexInformer{podInf.Informer(), rcInf.Informer(), rsInf.Informer(), depInf.Informer(), ssInf.Informer()} {
		_, _ = inf.AddEventHandler(byNamespace)
	}
	return c
}

// enqueueNamespace queues every budget of namespace ns.
func (c *Controller) enqueueNamespace(ns string) {
	pdbs, _ := c.pdbs.PodDisruptionBudgets(ns).List(labels.Everything())
	for _, p := range pdbs {
		c.loop.AddObject(p)
	}
}

// Run runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.loop.Run(ctx, workers, c.synced...)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.pdbs.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var pods []*corev1.Pod
	for _, p := range all {
		if Selects(pdb, p) {
			pods = append(pods, p)
		}
	}
	scale, scaleOK := c.scale(pods)
	now := c.now()
	st, next := Status(pdb, pods, scale, scaleOK, now)
	if !next.IsZero() {
		c.loop.AddAfter(key, next.Sub(now)+time.Second)
	}
	if apiequality.Semantic.DeepEqual(st, pdb.Status) {
		return nil
	}
	upd := pdb.DeepCopy()
	upd.Status = st
	_, err = c.client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// scale sums the replicas of the pods' controllers, each counted once
// (a ReplicaSet owned by a Deployment counts as the Deployment); ok is false
// when a pod has no controller or one whose replicas are unknown.
func (c *Controller) scale(pods []*corev1.Pod) (int32, bool) {
	seen := map[types.UID]bool{}
	var sum int32
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil {
			return 0, false
		}
		uid, n, ok := c.controllerScale(p.Namespace, ref)
		if !ok {
			return 0, false
		}
		if !seen[uid] {
			seen[uid] = true
			sum += n
		}
	}
	return sum, true
}

// controllerScale finds a pod's controller by its reference: its UID and replicas.
func (c *Controller) controllerScale(ns string, ref *metav1.OwnerReference) (types.UID, int32, bool) {
	replicas := func(r *int32) int32 {
		if r == nil {
			return 1
		}
		return *r
	}
	switch ref.Kind {
	case "ReplicaSet":
		rs, err := c.rss.ReplicaSets(ns).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return "", 0, false
		}
		if d := metav1.GetControllerOf(rs); d != nil && d.Kind == "Deployment" {
			return c.controllerScale(ns, d)
		}
		return rs.UID, replicas(rs.Spec.Replicas), true
	case "Deployment":
		d, err := c.deploys.Deployments(ns).Get(ref.Name)
		if err != nil || d.UID != ref.UID {
			return "", 0, false
		}
		return d.UID, replicas(d.Spec.Replicas), true
	case "ReplicationController":
		rc, err := c.rcs.ReplicationControllers(ns).Get(ref.Name)
		if err != nil || rc.UID != ref.UID {
			return "", 0, false
		}
		return rc.UID, replicas(rc.Spec.Replicas), true
	case "StatefulSet":
		ss, err := c.sets.StatefulSets(ns).Get(ref.Name)
		if err != nil || ss.UID != ref.UID {
			return "", 0, false
		}
		return ss.UID, replicas(ss.Spec.Replicas), true
	}
	return "", 0, false
}
