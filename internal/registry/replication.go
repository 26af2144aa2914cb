package registry

import (
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// defaultServiceAccount keeps only the names of referenced secrets, as
// Kubernetes' ServiceAccount strategy does.
func defaultServiceAccount(obj runtime.Object) {
	sa := obj.(*corev1.ServiceAccount)
	for i, s := range sa.Secrets {
		sa.Secrets[i] = corev1.ObjectReference{Name: s.Name}
	}
}

// defaultReplicationController applies Kubernetes' v1 defaults: the selector and
// the object's labels from the template's labels when empty, one replica.
func defaultReplicationController(obj runtime.Object) {
	rc := obj.(*corev1.ReplicationController)
	if t := rc.Spec.Template; t != nil {
		if len(t.Labels) > 0 {
			if len(rc.Spec.Selector) == 0 {
				rc.Spec.Selector = maps.Clone(t.Labels)
			}
			if len(rc.Labels) == 0 {
				rc.Labels = maps.Clone(t.Labels)
			}
		}
		DefaultPodSpec(&t.Spec)
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = int32p(1)
	}
}

func nonNegative(v int64, fp *field.Path) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(fp, v, "must be greater than or equal to 0")}
	}
	return nil
}

// validateReplicationController checks the spec as Kubernetes'
// ValidateReplicationControllerSpec does (the selector stays mutable).
func validateReplicationController(obj runtime.Object) field.ErrorList {
	rc := obj.(*corev1.ReplicationController)
	spec := field.NewPath("spec")
	errs := nonNegative(int64(rc.Spec.MinReadySeconds), spec.Child("minReadySeconds"))
	sel := labels.Set(rc.Spec.Selector).AsSelector()
	if sel.Empty() {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	}
	errs = append(errs, metav1validation.ValidateLabels(rc.Spec.Selector, spec.Child("selector"))...)
	if rc.Spec.Replicas == nil {
		errs = append(errs, field.Required(spec.Child("replicas"), ""))
	} else {
		errs = append(errs, nonNegative(int64(*rc.Spec.Replicas), spec.Child("replicas"))...)
	}
	tp := spec.Child("template")
	t := rc.Spec.Template
	if t == nil {
		return append(errs, field.Required(tp, ""))
	}
	if !sel.Empty() && !sel.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, metav1validation.ValidateLabels(t.Labels, tp.Child("labels"))...)
	errs = append(errs, ValidatePodSpec(&t.Spec, tp.Child("spec"))...)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicationController is not Supported"))
	}
	return errs
}

func replicationControllerFields(obj runtime.Object) fields.Set {
	return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*corev1.ReplicationController).Status.Replicas))}
}
