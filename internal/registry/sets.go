package registry

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// defaultStatefulSet applies apps/v1's StatefulSet defaults.
func defaultStatefulSet(obj runtime.Object) {
	s := &obj.(*appsv1.StatefulSet).Spec
	if s.Replicas == nil {
		s.Replicas = int32p(1)
	}
	if s.PodManagementPolicy == "" {
		s.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
	}
	if s.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
		if s.UpdateStrategy.RollingUpdate.Partition == nil {
			s.UpdateStrategy.RollingUpdate.Partition = int32p(0)
		}
	}
	if s.PersistentVolumeClaimRetentionPolicy == nil {
		s.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if s.PersistentVolumeClaimRetentionPolicy.WhenDeleted == "" {
		s.PersistentVolumeClaimRetentionPolicy.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if s.PersistentVolumeClaimRetentionPolicy.WhenScaled == "" {
		s.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = int32p(10)
	}
	DefaultPodSpec(&s.Template.Spec)
}

// validateOwnedPods checks the selector and template of a controller whose pods
// always restart (StatefulSet, DaemonSet), with Kubernetes' messages.
func validateOwnedPods(kind string, sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if sel == nil {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
		s, err := metav1.LabelSelectorAsSelector(sel)
		switch {
		case err != nil:
		case s.Empty():
			errs = append(errs, field.Invalid(spec.Child("selector"), sel, "empty selector is invalid for "+kind))
		case !s.Matches(labels.Set(tmpl.Labels)):
			errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), tmpl.Labels, "`selector` does not match template `labels`"))
		}
	}
	tp := spec.Child("template")
	errs = append(errs, metav1validation.ValidateLabels(tmpl.Labels, tp.Child("metadata", "labels"))...)
	errs = append(errs, ValidatePodSpec(&tmpl.Spec, tp.Child("spec"))...)
	if tmpl.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), tmpl.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	if tmpl.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

// validateStatefulSet checks the spec as Kubernetes' ValidateStatefulSetSpec does.
func validateStatefulSet(obj runtime.Object) field.ErrorList {
	s := &obj.(*appsv1.StatefulSet).Spec
	spec := field.NewPath("spec")
	var errs field.ErrorList
	switch s.PodManagementPolicy {
	case "":
		errs = append(errs, field.Required(spec.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		errs = append(errs, field.Invalid(spec.Child("podManagementPolicy"), s.PodManagementPolicy,
			"must be 'OrderedReady' or 'Parallel'"))
	}
	us := spec.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case "":
		errs = append(errs, field.Required(us, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.UpdateStrategy.RollingUpdate != nil {
			errs = append(errs, field.Invalid(us.Child("rollingUpdate"), s.UpdateStrategy.RollingUpdate,
				"only allowed for updateStrategy 'RollingUpdate'"))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			errs = append(errs, nonNegative(int64(*ru.Partition), us.Child("rollingUpdate", "partition"))...)
		}
	default:
		errs = append(errs, field.Invalid(us, s.UpdateStrategy, "must be 'RollingUpdate' or 'OnDelete'"))
	}
	if s.Replicas != nil {
		errs = append(errs, nonNegative(int64(*s.Replicas), spec.Child("replicas"))...)
	}
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), spec.Child("minReadySeconds"))...)
	if s.ServiceName != "" {
		for _, msg := range validation.IsDNS1123Label(s.ServiceName) {
			errs = append(errs, field.Invalid(spec.Child("serviceName"), s.ServiceName, msg))
		}
	}
	return append(errs, validateOwnedPods("statefulset", s.Selector, &s.Template)...)
}

// validateStatefulSetUpdate allows only the spec fields Kubernetes lets change.
func validateStatefulSetUpdate(obj, old runtime.Object) field.ErrorList {
	a, b := obj.(*appsv1.StatefulSet).Spec.DeepCopy(), old.(*appsv1.StatefulSet).Spec.DeepCopy()
	for _, s := range []*appsv1.StatefulSetSpec{a, b} {
		s.Replicas, s.Ordinals, s.Template, s.UpdateStrategy = nil, nil, corev1.PodTemplateSpec{}, appsv1.StatefulSetUpdateStrategy{}
		s.PersistentVolumeClaimRetentionPolicy, s.MinReadySeconds, s.RevisionHistoryLimit = nil, 0, nil
	}
	if !apiequality.Semantic.DeepEqual(a, b) {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")}
	}
	return nil
}

// defaultDaemonSet applies apps/v1's DaemonSet defaults.
func defaultDaemonSet(obj runtime.Object) {
	s := &obj.(*appsv1.DaemonSet).Spec
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		ru := s.UpdateStrategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			one := intstr.FromInt32(1)
			ru.MaxUnavailable = &one
		}
		if ru.MaxSurge == nil {
			zero := intstr.FromInt32(0)
			ru.MaxSurge = &zero
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = int32p(10)
	}
	DefaultPodSpec(&s.Template.Spec)
}

// validateDaemonSet checks the spec as Kubernetes' ValidateDaemonSetSpec does.
func validateDaemonSet(obj runtime.Object) field.ErrorList {
	s := &obj.(*appsv1.DaemonSet).Spec
	spec := field.NewPath("spec")
	errs := validateOwnedPods("daemonset", s.Selector, &s.Template)
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), spec.Child("minReadySeconds"))...)
	us := spec.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case "":
		errs = append(errs, field.Required(us.Child("type"), ""))
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
			errs = append(errs, validateIntOrPercent(ru.MaxUnavailable, us.Child("rollingUpdate", "maxUnavailable"))...)
			errs = append(errs, validateIntOrPercent(ru.MaxSurge, us.Child("rollingUpdate", "maxSurge"))...)
			unav, _ := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, 100, true)
			surge, _ := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 100, true)
			if unav == 0 && surge == 0 {
				errs = append(errs, field.Invalid(us.Child("rollingUpdate", "maxUnavailable"), ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
			}
		}
	default:
		errs = append(errs, field.NotSupported(us.Child("type"), s.UpdateStrategy.Type, []string{"OnDelete", "RollingUpdate"}))
	}
	return errs
}

func validateIntOrPercent(v *intstr.IntOrString, fp *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	if v.Type == intstr.String {
		n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, true)
		if err != nil {
			return field.ErrorList{field.Invalid(fp, v.StrVal, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")}
		}
		if n > 100 {
			return field.ErrorList{field.Invalid(fp, v.StrVal, "must not be greater than 100%")}
		}
		return nil
	}
	return nonNegative(int64(v.IntVal), fp)
}
