// Package disruption keeps the status of PodDisruptionBudgets (how many of the
// pods they select are healthy, how many must be, how many may be disrupted
// now) and decides evictions against them, as kube-controller-manager's
// disruption controller and the API server's pods/eviction subresource do. The
// arithmetic is pure functions (this file); controller.go watches and writes.
package disruption

import (
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	podstatus "github.com/svcnet/svcnet/internal/pod"
)

// DeletionTimeout is how long an evicted pod counts as disrupted (not healthy)
// before it is gone; afterwards the eviction is taken as lost.
const DeletionTimeout = 2 * time.Minute

// Condition reasons of the DisruptionAllowed condition.
const (
	ReasonSufficientPods   = "SufficientPods"
	ReasonInsufficientPods = "InsufficientPods"
	ReasonSyncFailed       = "SyncFailed"
)

// Selects says whether a budget's selector selects pod (pods of its namespace;
// an empty selector selects every pod, as policy/v1 defines).
func Selects(pdb *policyv1.PodDisruptionBudget, pod *corev1.Pod) bool {
	if pdb.Namespace != pod.Namespace {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(pod.Labels))
}

// Healthy counts the ready pods not being deleted and not evicted within
// DeletionTimeout.
func Healthy(pods []*corev1.Pod, disrupted map[string]metav1.Time, now time.Time) int32 {
	var n int32
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if t, ok := disrupted[p.Name]; ok && t.Add(DeletionTimeout).After(now) {
			continue
		}
		if podstatus.Ready(p.Status) {
			n++
		}
	}
	return n
}

// Desired computes expectedPods and desiredHealthy. scale is the sum of the
// replicas of the pods' controllers (needed for maxUnavailable and a
// minAvailable percentage; ok false when some pod has none that scales).
func Desired(spec policyv1.PodDisruptionBudgetSpec, pods int32, scale int32, scaleOK bool) (expected, desired int32, err error) {
	switch {
	case spec.MaxUnavailable != nil:
		if !scaleOK {
			return 0, 0, fmt.Errorf("maxUnavailable needs every selected pod to have a controller with a scale")
		}
		n, err := intstr.GetScaledValueFromIntOrPercent(spec.MaxUnavailable, int(scale), true)
		if err != nil {
			return 0, 0, err
		}
		return scale, int32(math.Max(0, float64(scale)-float64(n))), nil
	case spec.MinAvailable != nil && spec.MinAvailable.Type == intstr.Int:
		return pods, spec.MinAvailable.IntVal, nil
	case spec.MinAvailable != nil:
		if !scaleOK {
			return 0, 0, fmt.Errorf("a minAvailable percentage needs every selected pod to have a controller with a scale")
		}
		n, err := intstr.GetScaledValueFromIntOrPercent(spec.MinAvailable, int(scale), true)
		if err != nil {
			return 0, 0, err
		}
		return scale, int32(n), nil
	}
	return pods, 0, nil // neither set: nothing is required
}

// Status computes a budget's status from its pods: healthy, desired and
// expected counts, disruptions allowed, the DisruptionAllowed condition, and
// the disrupted pods still pending deletion (expired or deleted ones dropped).
// It also returns when the next disrupted entry expires (zero if none).
func Status(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, scale int32, scaleOK bool, now time.Time) (policyv1.PodDisruptionBudgetStatus, time.Time) {
	st := pdb.Status
	st.ObservedGeneration = pdb.Generation
	live := map[string]bool{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			live[p.Name] = true
		}
	}
	var next time.Time
	disrupted := map[string]metav1.Time{}
	for name, t := range pdb.Status.DisruptedPods {
		if !live[name] || !t.Add(DeletionTimeout).After(now) {
			continue
		}
		disrupted[name] = t
		if exp := t.Add(DeletionTimeout); next.IsZero() || exp.Before(next) {
			next = exp
		}
	}
	if len(disrupted) == 0 {
		disrupted = nil
	}
	st.DisruptedPods = disrupted
	expected, desired, err := Desired(pdb.Spec, int32(len(pods)), scale, scaleOK)
	healthy := Healthy(pods, disrupted, now)
	cond := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, ObservedGeneration: pdb.Generation}
	if err != nil {
		st.DisruptionsAllowed = 0
		st.CurrentHealthy = healthy
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonSyncFailed, err.Error()
	} else {
		st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy = expected, desired, healthy
		st.DisruptionsAllowed = max(healthy-desired, 0)
		if st.DisruptionsAllowed > 0 {
			cond.Status, cond.Reason = metav1.ConditionTrue, ReasonSufficientPods
		} else {
			cond.Status, cond.Reason = metav1.ConditionFalse, ReasonInsufficientPods
		}
	}
	cond.LastTransitionTime = metav1.NewTime(now)
	for _, old := range pdb.Status.Conditions {
		if old.Type == cond.Type && old.Status == cond.Status {
			cond.LastTransitionTime = old.LastTransitionTime
		}
	}
	var conds []metav1.Condition
	for _, c := range pdb.Status.Conditions {
		if c.Type != cond.Type {
			conds = append(conds, c)
		}
	}
	st.Conditions = append(conds, cond)
	return st, next
}

// CanIgnoreBudgets says whether a pod is evicted without looking at budgets:
// it has finished, has not started, or is already being deleted.
func CanIgnoreBudgets(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// Verdict is what an eviction does to a budget.
type Verdict int

// The verdicts: delete without touching the budget, or take one of its
// allowed disruptions first.
const (
	DeleteOnly Verdict = iota
	Decrement
)

// Decide checks an eviction of pod against its one budget. An unready pod is
// evicted without using up a disruption when the budget's policy is
// AlwaysAllow, or (IfHealthyBudget, the default) when the budget already has
// the healthy pods it wants. Otherwise the budget must be processed and allow a
// disruption; else 429 TooManyRequests in Kubernetes' words.
func Decide(pod *corev1.Pod, pdb *policyv1.PodDisruptionBudget) (Verdict, error) {
	if !podstatus.Ready(pod.Status) {
		policy := policyv1.IfHealthyBudget
		if pdb.Spec.UnhealthyPodEvictionPolicy != nil {
			policy = *pdb.Spec.UnhealthyPodEvictionPolicy
		}
		if policy == policyv1.AlwaysAllow {
			return DeleteOnly, nil
		}
		if pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0 {
			return DeleteOnly, nil
		}
	}
	if pdb.Status.ObservedGeneration < pdb.Generation {
		return 0, tooMany(fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdb.Name))
	}
	if pdb.Status.DisruptionsAllowed < 0 {
		return 0, apierrors.NewForbidden(policyv1.Resource("poddisruptionbudget"), pdb.Name, fmt.Errorf("pdb disruptions allowed is negative"))
	}
	if pdb.Status.DisruptionsAllowed == 0 {
		return 0, tooMany(fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
	}
	return Decrement, nil
}

// tooMany is Kubernetes' refusal of an eviction that would break a budget.
func tooMany(cause string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: cause})
	return err
}
