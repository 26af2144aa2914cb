package disruption

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(name string, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func budget(min, max *intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb", Namespace: "ns", Generation: 1},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: min, MaxUnavailable: max,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
}

func TestDesired(t *testing.T) {
	i, pc := intstr.FromInt32, intstr.FromString
	for _, tc := range []struct {
		name                string
		min, max            *intstr.IntOrString
		pods, scale         int32
		scaleOK             bool
		wantExp, wantDesire int32
		wantErr             bool
	}{
		{"minAvailable 2 of 3 pods", ptr(i(2)), nil, 3, 0, false, 3, 2, false},
		{"minAvailable 50% of scale 3 rounds up", ptr(pc("50%")), nil, 3, 3, true, 3, 2, false},
		{"maxUnavailable 1 of scale 3", nil, ptr(i(1)), 3, 3, true, 3, 2, false},
		{"maxUnavailable 10% of scale 3 rounds up", nil, ptr(pc("10%")), 3, 3, true, 3, 2, false},
		{"maxUnavailable beyond scale", nil, ptr(i(5)), 3, 3, true, 3, 0, false},
		{"maxUnavailable without controllers", nil, ptr(i(1)), 3, 0, false, 0, 0, true},
	} {
		exp, des, err := Desired(policyv1.PodDisruptionBudgetSpec{MinAvailable: tc.min, MaxUnavailable: tc.max}, tc.pods, tc.scale, tc.scaleOK)
		if exp != tc.wantExp || des != tc.wantDesire || (err != nil) != tc.wantErr {
			t.Errorf("%s: expected %d desired %d err %v; want %d %d err %v", tc.name, exp, des, err, tc.wantExp, tc.wantDesire, tc.wantErr)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pods := []*corev1.Pod{pod("a", true), pod("b", true), pod("c", false)}
	st, next := Status(budget(ptr(intstr.FromInt32(1)), nil), pods, 0, false, now)
	if st.ObservedGeneration != 1 || st.CurrentHealthy != 2 || st.DesiredHealthy != 1 || st.ExpectedPods != 3 || st.DisruptionsAllowed != 1 || !next.IsZero() {
		t.Errorf("status %+v", st)
	}
	if c := st.Conditions; len(c) != 1 || c[0].Status != metav1.ConditionTrue || c[0].Reason != ReasonSufficientPods {
		t.Errorf("conditions %+v", c)
	}
	// a recently evicted pod is not healthy until DeletionTimeout has passed; old
	// entries and deleted pods leave disruptedPods
	b := budget(ptr(intstr.FromInt32(1)), nil)
	b.Status.DisruptedPods = map[string]metav1.Time{"a": metav1.NewTime(now.Add(-time.Minute)),
		"b": metav1.NewTime(now.Add(-3 * time.Minute)), "gone": metav1.NewTime(now)}
	st, next = Status(b, pods, 0, false, now)
	if st.CurrentHealthy != 1 || st.DisruptionsAllowed != 0 || len(st.DisruptedPods) != 1 || !next.Equal(now.Add(time.Minute)) {
		t.Errorf("with disrupted pods: %+v, next %v", st, next)
	}
	if c := st.Conditions; c[0].Status != metav1.ConditionFalse || c[0].Reason != ReasonInsufficientPods {
		t.Errorf("conditions %+v", c)
	}
	st, _ = Status(budget(nil, ptr(intstr.FromInt32(1))), pods, 0, false, now)
	if st.DisruptionsAllowed != 0 || st.Conditions[0].Reason != ReasonSyncFailed {
		t.Errorf("maxUnavailable without controllers: %+v", st)
	}
}

func TestDecide(t *testing.T) {
	processed := func(allowed, healthy, desired int32, policy *policyv1.UnhealthyPodEvictionPolicyType) *policyv1.PodDisruptionBudget {
		b := budget(ptr(intstr.FromInt32(desired)), nil)
		b.Spec.UnhealthyPodEvictionPolicy = policy
		b.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: allowed, CurrentHealthy: healthy, DesiredHealthy: desired}
		return b
	}
	unprocessed := processed(1, 3, 2, nil)
	unprocessed.Generation = 2
	always := policyv1.AlwaysAllow
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		pdb     *policyv1.PodDisruptionBudget
		want    Verdict
		wantErr func(error) bool
	}{
		{"ready pod, a disruption allowed", pod("a", true), processed(1, 3, 2, nil), Decrement, nil},
		{"ready pod, none allowed: 429", pod("a", true), processed(0, 2, 2, nil), 0, apierrors.IsTooManyRequests},
		{"budget not processed yet: 429", pod("a", true), unprocessed, 0, apierrors.IsTooManyRequests},
		{"unready pod, budget healthy (IfHealthyBudget)", pod("a", false), processed(0, 2, 2, nil), DeleteOnly, nil},
		{"unready pod, budget short (IfHealthyBudget)", pod("a", false), processed(0, 1, 2, nil), 0, apierrors.IsTooManyRequests},
		{"unready pod, AlwaysAllow", pod("a", false), processed(0, 0, 2, &always), DeleteOnly, nil},
		{"negative allowed: forbidden", pod("a", true), processed(-1, 1, 2, nil), 0, apierrors.IsForbidden},
	} {
		got, err := Decide(tc.pod, tc.pdb)
		if tc.wantErr != nil {
			if err == nil || !tc.wantErr(err) {
				t.Errorf("%s: err %v", tc.name, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
	err := tooMany("x")
	if s := err.(*apierrors.StatusError).ErrStatus; s.Details.Causes[0].Type != policyv1.DisruptionBudgetCause || s.Message != "Cannot evict pod as it would violate the pod's disruption budget." {
		t.Errorf("429 status %+v", s)
	}
}

func TestCanIgnoreBudgets(t *testing.T) {
	p := pod("a", true)
	if CanIgnoreBudgets(p) {
		t.Error("a running pod is checked")
	}
	for _, ph := range []corev1.PodPhase{corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed} {
		p.Status.Phase = ph
		if !CanIgnoreBudgets(p) {
			t.Errorf("%s pod goes at once", ph)
		}
	}
}
