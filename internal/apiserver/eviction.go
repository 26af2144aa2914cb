package apiserver

import (
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/svcnet/svcnet/internal/controller/disruption"
)

// handleEviction serves POST pods/NAME/eviction (policy/v1 Eviction): the pod
// is deleted with the Eviction's deleteOptions unless that would break its
// PodDisruptionBudget, as Kubernetes' eviction subresource decides: finished,
// pending and terminating pods go at once; a pod selected by more than one
// budget is refused (500); one budget must allow a disruption (else 429), which
// the eviction takes (status.disruptionsAllowed-1, the pod in disruptedPods)
// before the delete.
func (s *Server) handleEviction(q *request) error {
	if q.verb != "create" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), q.r.Method)
	}
	body, err := readBody(q.r)
	if err != nil {
		return err
	}
	ev := &policyv1.Eviction{}
	if _, err := decodeInto(body, mediaType(q.r), policyv1.SchemeGroupVersion.WithKind("Eviction"), ev, q.r.URL.Query().Get("fieldValidation")); err != nil {
		return err
	}
	if ev.Name != "" && ev.Name != q.name {
		return apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	wo := writeOpts(q)
	wo.sub = ""
	if len(opts.DryRun) > 0 && opts.DryRun[0] == metav1.DryRunAll {
		wo.dryRun = true
	}
	ctx := q.r.Context()
	for attempt := 0; ; attempt++ {
		obj, _, err := s.get(ctx, q.res, q.ns, q.name)
		if err != nil {
			return err
		}
		pod := obj.(*corev1.Pod)
		if !disruption.CanIgnoreBudgets(pod) {
			err := s.takeDisruption(q, pod, wo)
			if apierrors.IsConflict(err) && attempt < 5 {
				continue // the budget changed under us: decide again
			}
			if err != nil {
				return err
			}
		}
		break
	}
	if !wo.dryRun {
		if err := s.markDisruptionTarget(q); err != nil {
			return err
		}
	}
	if _, _, err := s.deleteObject(ctx, q.res, q.ns, q.name, opts, wo); err != nil {
		return err
	}
	writeEncoded(q.w, http.StatusCreated, q.accept, statusSuccess(nil))
	return nil
}

// markDisruptionTarget gives the pod the DisruptionTarget condition before its
// delete, as Kubernetes' eviction does: a Job's podFailurePolicy can tell an
// evicted pod's failure from its own.
func (s *Server) markDisruptionTarget(q *request) error {
	_, _, err := s.update(q.r.Context(), q.res, q.ns, q.name, func(old runtime.Object) (runtime.Object, error) {
		p, ok := old.(*corev1.Pod)
		if !ok {
			return nil, apierrors.NewInternalError(errNotPod)
		}
		c := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI",
			Message: "Eviction API: evicting", LastTransitionTime: metav1.Now()}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == c.Type {
				if p.Status.Conditions[i].Status == c.Status {
					c.LastTransitionTime = p.Status.Conditions[i].LastTransitionTime
				}
				p.Status.Conditions[i] = c
				return p, nil
			}
		}
		p.Status.Conditions = append(p.Status.Conditions, c)
		return p, nil
	}, writeOptions{sub: "status"})
	return err
}

// takeDisruption checks pod against its budget and records the disruption.
func (s *Server) takeDisruption(q *request, pod *corev1.Pod, wo writeOptions) error {
	ctx := q.r.Context()
	res := s.res(policyv1.GroupName, "poddisruptionbudgets")
	kvs, _, err := listAll(ctx, s.store, s.listPrefix(res, pod.Namespace), 0)
	if err != nil {
		return err
	}
	var match []*policyv1.PodDisruptionBudget
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv)
		if err != nil {
			continue
		}
		if pdb := obj.(*policyv1.PodDisruptionBudget); disruption.Selects(pdb, pod) {
			match = append(match, pdb)
		}
	}
	switch {
	case len(match) == 0:
		return nil
	case len(match) > 1:
		return apierrors.NewInternalError(errMultipleBudgets)
	}
	pdb := match[0]
	verdict, err := disruption.Decide(pod, pdb)
	if err != nil || verdict == disruption.DeleteOnly || wo.dryRun {
		return err
	}
	rv := pdb.ResourceVersion
	_, _, err = s.update(ctx, res, pdb.Namespace, pdb.Name, func(old runtime.Object) (runtime.Object, error) {
		cur, ok := old.(*policyv1.PodDisruptionBudget)
		if !ok || cur.ResourceVersion != rv {
			return nil, apierrors.NewConflict(res.GroupResource(), pdb.Name, errBudgetChanged)
		}
		cur.Status.DisruptionsAllowed--
		if cur.Status.DisruptionsAllowed == 0 {
			for i := range cur.Status.Conditions {
				if c := &cur.Status.Conditions[i]; c.Type == policyv1.DisruptionAllowedCondition {
					c.Status, c.Reason, c.LastTransitionTime = metav1.ConditionFalse, disruption.ReasonInsufficientPods, metav1.Now()
				}
			}
		}
		if cur.Status.DisruptedPods == nil {
			cur.Status.DisruptedPods = map[string]metav1.Time{}
		}
		cur.Status.DisruptedPods[pod.Name] = metav1.NewTime(time.Now())
		return cur, nil
	}, writeOptions{sub: "status"})
	return err
}

var (
	errMultipleBudgets = evictionError("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
	errBudgetChanged   = evictionError("the PodDisruptionBudget changed while the eviction was decided")
	errNotPod          = evictionError("the eviction's object is not a pod")
)

type evictionError string

func (e evictionError) Error() string { return string(e) }
