package workload

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
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
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/owned"
	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Deployments rolls each Deployment's ReplicaSets toward its template.
type Deployments struct {
	client   kubernetes.Interface
	deploys  appslisters.DeploymentLister
	sets     appslisters.ReplicaSetLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	now      func() time.Time
}

// NewDeployments wires the controller to informers from factory.
func NewDeployments(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Deployments {
	c := &Deployments{client: client, recorder: recorder, now: time.Now}
	c.loop = queue.New("deployment", c.sync, log)
	dInf, rsInf := factory.Apps().V1().Deployments(), factory.Apps().V1().ReplicaSets()
	c.deploys, c.sets = dInf.Lister(), rsInf.Lister()
	c.synced = []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced}
	_, _ = dInf.Informer().AddEventHandler(c.loop.ObjectHandler())
	_, _ = rsInf.Informer().AddEventHandler(owned.Handler("Deployment", c.loop.Add, nil))
	return c
}

// Run runs the controller until ctx ends.
func (c *Deployments) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// replicasAnnotations are the desired-replicas and max-replicas values for d's sets.
func replicasAnnotations(d *appsv1.Deployment) (desired, most string) {
	surge, _ := fenceposts(d)
	want := derefInt32(d.Spec.Replicas)
	return strconv.Itoa(int(want)), strconv.Itoa(int(want + surge))
}

func (c *Deployments) scale(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, n int32) error {
	from := derefInt32(rs.Spec.Replicas)
	desired, most := replicasAnnotations(d)
	if from == n && rs.Annotations[AnnotationDesiredReplicas] == desired && rs.Annotations[AnnotationMaxReplicas] == most {
		return nil
	}
	cp := rs.DeepCopy()
	cp.Spec.Replicas = &n
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	cp.Annotations[AnnotationDesiredReplicas], cp.Annotations[AnnotationMaxReplicas] = desired, most
	if _, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return err
	}
	if from == n {
		return nil // only the annotations
	}
	verb := "up"
	if n < from {
		verb = "down"
	}
	c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", verb, rs.Name, from, n)
	return nil
}

// claim returns the Deployment's ReplicaSets, adopting orphans its selector
// matches and releasing its sets it no longer matches, as Kubernetes does.
func (c *Deployments) claim(ctx context.Context, d *appsv1.Deployment, sets []*appsv1.ReplicaSet) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return owned.Controlled(sets, d.UID), err
	}
	ref := *metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))
	keep, adopt, release := owned.Claim(sets, sel, ref, true)
	for _, rs := range release {
		if err := owned.SetReplicaSetOwner(ctx, c.client, rs, ref, false); err != nil {
			return nil, err
		}
	}
	for _, rs := range adopt {
		if err := owned.SetReplicaSetOwner(ctx, c.client, rs, ref, true); err != nil {
			return nil, err
		}
		keep = append(keep, rs)
	}
	return keep, nil
}

func (c *Deployments) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	d, err := c.deploys.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || d.DeletionTimestamp != nil {
		return err
	}
	sets, err := c.sets.ReplicaSets(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	claimed, err := c.claim(ctx, d, sets)
	if err != nil {
		return err
	}
	var all, old []*appsv1.ReplicaSet
	var newRS *appsv1.ReplicaSet
	var maxRev int64
	for _, rs := range claimed {
		all = append(all, rs)
		maxRev = max(maxRev, revision(rs))
		if newRS == nil && sameTemplate(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
		} else {
			old = append(old, rs)
		}
	}
	want := derefInt32(d.Spec.Replicas)
	if !d.Spec.Paused {
		if newRS == nil {
			newRS, err = c.createReplicaSet(ctx, d, all, old, maxRev+1)
			if err != nil {
				return err
			}
			all = append(all, newRS)
		} else if revision(newRS) < maxRev && len(old) > 0 {
			// Rolled back to an older template: it becomes the newest revision.
			cp := newRS.DeepCopy()
			cp.Annotations[AnnotationRevision] = strconv.FormatInt(maxRev+1, 10)
			if newRS, err = c.client.AppsV1().ReplicaSets(ns).Update(ctx, cp, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType && len(old) > 0 && specSum(old) > 0 && scalingEvent(d, all) {
			// scaled during a rollout: every active set grows or shrinks in proportion
			for _, rs := range all {
				if n, ok := proportionalSizes(d, all)[rs.Name]; ok {
					if err := c.scale(ctx, d, rs, n); err != nil {
						return err
					}
				}
			}
		} else if err := c.rollout(ctx, d, all, old, newRS, want); err != nil {
			return err
		}
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.updateStatus(ctx, d, all, newRS)
}

func (c *Deployments) rollout(ctx context.Context, d *appsv1.Deployment, all, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, want int32) error {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		running := int32(0)
		for _, rs := range old {
			if err := c.scale(ctx, d, rs, 0); err != nil {
				return err
			}
			running += rs.Status.Replicas
		}
		if running > 0 {
			return nil // the new pods start once the old ones are gone
		}
		return c.scale(ctx, d, newRS, want)
	}
	if len(old) == 0 || specSum(old) == 0 {
		// Nothing to replace: the new set simply follows spec.replicas.
		return c.scale(ctx, d, newRS, want)
	}
	if n := newReplicas(d, all, newRS); n != derefInt32(newRS.Spec.Replicas) {
		return c.scale(ctx, d, newRS, n) // the next sync (on the new set's event) scales down
	}
	for _, rs := range old {
		if n, ok := scaleDownOld(d, all, old, newRS)[rs.Name]; ok {
			if err := c.scale(ctx, d, rs, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Deployments) createReplicaSet(ctx context.Context, d *appsv1.Deployment, all, old []*appsv1.ReplicaSet, rev int64) (*appsv1.ReplicaSet, error) {
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[LabelPodTemplateHash] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[LabelPodTemplateHash] = hash
	var replicas int32
	want := derefInt32(d.Spec.Replicas)
	switch {
	case d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType && specSum(old) > 0:
		replicas = 0
	case specSum(old) == 0:
		replicas = want
	default:
		surge, _ := fenceposts(d)
		replicas = max(0, min(want, want+surge-specSum(all)))
	}
	desired, most := replicasAnnotations(d)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: tmpl.Labels,
			Annotations:     map[string]string{AnnotationRevision: strconv.FormatInt(rev, 10), AnnotationDesiredReplicas: desired, AnnotationMaxReplicas: most},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	out, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// A set of that name but another template: a hash collision. Bump the count.
		cp := d.DeepCopy()
		n := int32(1)
		if cp.Status.CollisionCount != nil {
			n = *cp.Status.CollisionCount + 1
		}
		cp.Status.CollisionCount = &n
		_, _ = c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", out.Name, replicas)
	if d.Annotations[AnnotationRevision] != rs.Annotations[AnnotationRevision] {
		cp := d.DeepCopy()
		if cp.Annotations == nil {
			cp.Annotations = map[string]string{}
		}
		cp.Annotations[AnnotationRevision] = rs.Annotations[AnnotationRevision]
		if _, err := c.client.AppsV1().Deployments(d.Namespace).Update(ctx, cp, metav1.UpdateOptions{}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// cleanup deletes scaled-down old ReplicaSets beyond revisionHistoryLimit.
func (c *Deployments) cleanup(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet) error {
	limit := int32(10)
	if d.Spec.RevisionHistoryLimit != nil {
		limit = *d.Spec.RevisionHistoryLimit
	}
	var idle []*appsv1.ReplicaSet
	for _, rs := range old {
		if derefInt32(rs.Spec.Replicas) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			idle = append(idle, rs)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return revision(idle[i]) < revision(idle[j]) })
	for i := 0; i < len(idle)-int(limit); i++ {
		if err := c.client.AppsV1().ReplicaSets(d.Namespace).Delete(ctx, idle[i].Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func setCondition(conds []appsv1.DeploymentCondition, c appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	for i := range conds {
		if conds[i].Type == c.Type {
			if conds[i].Status == c.Status && conds[i].Reason == c.Reason {
				return conds
			}
			if conds[i].Status == c.Status {
				c.LastTransitionTime = conds[i].LastTransitionTime
			}
			conds[i] = c
			return conds
		}
	}
	return append(conds, c)
}

// DeploymentStatus computes what `kubectl get deploy` and `kubectl rollout
// status` read.
func DeploymentStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount,
		Conditions: append([]appsv1.DeploymentCondition(nil), d.Status.Conditions...)}
	for _, rs := range all {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	want := derefInt32(d.Spec.Replicas)
	st.UnavailableReplicas = max(0, want-st.AvailableReplicas)
	_, unavailable := fenceposts(d)
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		unavailable = 0
	}
	t := metav1.NewTime(now)
	if st.AvailableReplicas >= want-unavailable {
		st.Conditions = setCondition(st.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.", LastUpdateTime: t, LastTransitionTime: t})
	} else {
		st.Conditions = setCondition(st.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse,
			Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability.", LastUpdateTime: t, LastTransitionTime: t})
	}
	if newRS != nil {
		prog := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated",
			Message: fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name), LastUpdateTime: t, LastTransitionTime: t}
		if st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want {
			prog.Reason, prog.Message = "NewReplicaSetAvailable", fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)
		}
		st.Conditions = setCondition(st.Conditions, prog)
	}
	return st
}

func (c *Deployments) updateStatus(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	st := DeploymentStatus(d, all, newRS, c.now())
	if apiequality.Semantic.DeepEqual(st, d.Status) {
		return nil
	}
	cp := d.DeepCopy()
	cp.Status = st
	_, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	return err
}
