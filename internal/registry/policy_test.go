package registry

import (
	"strings"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidatePDB(t *testing.T) {
	v := func(x intstr.IntOrString) *intstr.IntOrString { return &x }
	bad := policyv1.UnhealthyPodEvictionPolicyType("Sometimes")
	for _, tc := range []struct {
		name string
		spec policyv1.PodDisruptionBudgetSpec
		want string // "" for valid
	}{
		{"minAvailable", policyv1.PodDisruptionBudgetSpec{MinAvailable: v(intstr.FromInt32(2))}, ""},
		{"maxUnavailable percent", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: v(intstr.FromString("25%"))}, ""},
		{"both", policyv1.PodDisruptionBudgetSpec{MinAvailable: v(intstr.FromInt32(1)), MaxUnavailable: v(intstr.FromInt32(1))},
			"spec: Invalid value"},
		{"negative", policyv1.PodDisruptionBudgetSpec{MinAvailable: v(intstr.FromInt32(-1))}, "spec.minAvailable: Invalid value: -1"},
		{"over 100%", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: v(intstr.FromString("120%"))}, "spec.maxUnavailable"},
		{"not a percentage", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: v(intstr.FromString("two"))}, "must be an integer or percentage"},
		{"bad selector", policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a b": "c"}}},
			"spec.selector.matchLabels"},
		{"bad policy", policyv1.PodDisruptionBudgetSpec{UnhealthyPodEvictionPolicy: &bad}, "spec.unhealthyPodEvictionPolicy: Unsupported value"},
	} {
		errs := validatePDB(&policyv1.PodDisruptionBudget{Spec: tc.spec})
		got := errs.ToAggregate()
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s: %v", tc.name, got)
		case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, got, tc.want)
		}
	}
}
