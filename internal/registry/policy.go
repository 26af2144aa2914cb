package registry

import (
	"strconv"
	"strings"

	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// policyResources lists PodDisruptionBudget (policy/v1): how many of a set of
// pods must stay up when they are evicted (pods/eviction checks it; the
// disruption controller keeps its status).
func policyResources() []*Resource {
	return []*Resource{
		{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets", Singular: "poddisruptionbudget", Kind: "PodDisruptionBudget",
			Namespaced: true, ShortNames: []string{"pdb"}, HasStatus: true, HasSpec: true,
			New:      func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
			NewList:  func() runtime.Object { return &policyv1.PodDisruptionBudgetList{} },
			Strategy: Generic{Namespaced: true, Name: apivalidation.NameIsDNSSubdomain, Check: validatePDB}},
	}
}

// validatePDB checks a PodDisruptionBudget as Kubernetes does.
func validatePDB(obj runtime.Object) field.ErrorList {
	pdb := obj.(*policyv1.PodDisruptionBudget)
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(spec, pdb.Spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	if v := pdb.Spec.MinAvailable; v != nil {
		errs = append(errs, validatePDBValue(*v, spec.Child("minAvailable"))...)
	}
	if v := pdb.Spec.MaxUnavailable; v != nil {
		errs = append(errs, validatePDBValue(*v, spec.Child("maxUnavailable"))...)
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(pdb.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p != policyv1.IfHealthyBudget && *p != policyv1.AlwaysAllow {
		errs = append(errs, field.NotSupported(spec.Child("unhealthyPodEvictionPolicy"), *p, []string{string(policyv1.IfHealthyBudget), string(policyv1.AlwaysAllow)}))
	}
	return errs
}

// validatePDBValue checks minAvailable or maxUnavailable: a non-negative
// integer or a percentage from 0% to 100%.
func validatePDBValue(v intstr.IntOrString, p *field.Path) field.ErrorList {
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			return field.ErrorList{field.Invalid(p, v.IntVal, "must be greater than or equal to 0")}
		}
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if !strings.HasSuffix(v.StrVal, "%") || err != nil {
		return field.ErrorList{field.Invalid(p, v.StrVal, "must be an integer or percentage (e.g '5%')")}
	}
	if n < 0 || n > 100 {
		return field.ErrorList{field.Invalid(p, v.StrVal, "must not be greater than 100%")}
	}
	return nil
}
