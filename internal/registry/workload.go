package registry

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func int32p(v int32) *int32 { return &v }

func defaultDeployment(obj runtime.Object) {
	d := obj.(*appsv1.Deployment)
	s := &d.Spec
	if s.Replicas == nil {
		s.Replicas = int32p(1)
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		q := intstr.FromString("25%")
		if s.Strategy.RollingUpdate.MaxSurge == nil {
			s.Strategy.RollingUpdate.MaxSurge = &q
		}
		if s.Strategy.RollingUpdate.MaxUnavailable == nil {
			s.Strategy.RollingUpdate.MaxUnavailable = &q
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = int32p(10)
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = int32p(600)
	}
	DefaultPodSpec(&s.Template.Spec)
}

func defaultReplicaSet(obj runtime.Object) {
	rs := obj.(*appsv1.ReplicaSet)
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = int32p(1)
	}
	DefaultPodSpec(&rs.Spec.Template.Spec)
}

// validateSelectorTemplate checks the selector/template pair shared by Deployments
// and ReplicaSets.
func validateSelectorTemplate(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, replicas *int32) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if replicas != nil && *replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), *replicas, "must be greater than or equal to 0"))
	}
	if sel == nil {
		return append(errs, field.Required(spec.Child("selector"), ""))
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(spec.Child("selector"), sel, "empty selector is invalid for deployment"))
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err == nil && !s.Empty() && !s.Matches(labels.Set(tmpl.Labels)) {
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), tmpl.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, metav1validation.ValidateLabels(tmpl.Labels, spec.Child("template", "metadata", "labels"))...)
	return append(errs, ValidatePodSpec(&tmpl.Spec, spec.Child("template", "spec"))...)
}

func validateDeployment(obj runtime.Object) field.ErrorList {
	d := obj.(*appsv1.Deployment)
	errs := validateSelectorTemplate(d.Spec.Selector, &d.Spec.Template, d.Spec.Replicas)
	if t := d.Spec.Strategy.Type; t != appsv1.RollingUpdateDeploymentStrategyType && t != appsv1.RecreateDeploymentStrategyType {
		errs = append(errs, field.NotSupported(field.NewPath("spec", "strategy", "type"), t, []string{"Recreate", "RollingUpdate"}))
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		surge, _ := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 100, true)
		unav, _ := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, 100, false)
		if surge == 0 && unav == 0 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "strategy", "rollingUpdate", "maxUnavailable"), ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
		}
	}
	return errs
}

func validateReplicaSet(obj runtime.Object) field.ErrorList {
	rs := obj.(*appsv1.ReplicaSet)
	return validateSelectorTemplate(rs.Spec.Selector, &rs.Spec.Template, rs.Spec.Replicas)
}

func immutableSelector(sel, old *metav1.LabelSelector) field.ErrorList {
	if !apiequality.Semantic.DeepEqual(sel, old) {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), sel, "field is immutable")}
	}
	return nil
}

// deprecation warnings Kubernetes gave for the old Deployment versions.
const (
	appsV1beta1Warning       = "apps/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment"
	extensionsV1beta1Warning = "extensions/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment"
)

// convertJSON moves an object between versions whose JSON shapes agree, dropping
// the fields named in drop (paths of keys) that the target does not have.
func convertJSON(in runtime.Object, out runtime.Object, gvk schema.GroupVersionKind, drop ...[]string) (runtime.Object, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for _, path := range drop {
		cur := m
		for i, k := range path {
			if i == len(path)-1 {
				delete(cur, k)
				break
			}
			next, ok := cur[k].(map[string]any)
			if !ok {
				break
			}
			cur = next
		}
	}
	m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
	raw, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("convert to %s: %w", gvk, err)
	}
	return out, nil
}

var deploymentV1 = appsv1.SchemeGroupVersion.WithKind("Deployment")

// legacyDeployment converts an old Deployment version to apps/v1: the shapes agree
// except rollbackTo (dropped) and the selector, defaulted from the template labels.
func legacyDeployment(gv schema.GroupVersion, newObj func() runtime.Object, warning string) Legacy {
	return Legacy{
		GroupVersion: gv,
		New:          newObj,
		Warning:      warning,
		ToStorage: func(in runtime.Object) (runtime.Object, error) {
			out, err := convertJSON(in, &appsv1.Deployment{}, deploymentV1, []string{"spec", "rollbackTo"})
			if err != nil {
				return nil, err
			}
			d := out.(*appsv1.Deployment)
			if d.Spec.Selector == nil && len(d.Spec.Template.Labels) > 0 {
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{}}
				for k, v := range d.Spec.Template.Labels {
					d.Spec.Selector.MatchLabels[k] = v
				}
			}
			return d, nil
		},
		FromStorage: func(in runtime.Object) (runtime.Object, error) {
			return convertJSON(in, newObj(), gv.WithKind("Deployment"))
		},
	}
}

var deploymentLegacy = []Legacy{
	legacyDeployment(appsv1beta1.SchemeGroupVersion, func() runtime.Object { return &appsv1beta1.Deployment{} }, appsV1beta1Warning),
	legacyDeployment(extensionsv1beta1.SchemeGroupVersion, func() runtime.Object { return &extensionsv1beta1.Deployment{} }, extensionsV1beta1Warning),
}
