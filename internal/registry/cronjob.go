package registry

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/svcnet/svcnet/internal/cron"
)

// defaultCronJob applies batch/v1's CronJob defaults.
func defaultCronJob(obj runtime.Object) {
	s := &obj.(*batchv1.CronJob).Spec
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if s.Suspend == nil {
		f := false
		s.Suspend = &f
	}
	if s.SuccessfulJobsHistoryLimit == nil {
		s.SuccessfulJobsHistoryLimit = int32p(3)
	}
	if s.FailedJobsHistoryLimit == nil {
		s.FailedJobsHistoryLimit = int32p(1)
	}
	DefaultPodSpec(&s.JobTemplate.Spec.Template.Spec)
}

// validateCronJob checks the spec as Kubernetes' ValidateCronJobCreate does.
func validateCronJob(obj runtime.Object) field.ErrorList {
	cj := obj.(*batchv1.CronJob)
	s := &cj.Spec
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if len(cj.Name) > 52 {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, "must be no more than 52 characters"))
	}
	if s.Schedule == "" {
		errs = append(errs, field.Required(spec.Child("schedule"), ""))
	} else if _, err := cron.Parse(s.Schedule); err != nil {
		errs = append(errs, field.Invalid(spec.Child("schedule"), s.Schedule, err.Error()))
	}
	if tz := s.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil || *tz == "" || *tz == "Local" {
			errs = append(errs, field.Invalid(spec.Child("timeZone"), *tz, "unknown time zone "+*tz))
		}
	}
	switch s.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		errs = append(errs, field.Required(spec.Child("concurrencyPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(spec.Child("concurrencyPolicy"), s.ConcurrencyPolicy, []string{"Allow", "Forbid", "Replace"}))
	}
	if v := s.SuccessfulJobsHistoryLimit; v != nil {
		errs = append(errs, nonNegative(int64(*v), spec.Child("successfulJobsHistoryLimit"))...)
	}
	if v := s.FailedJobsHistoryLimit; v != nil {
		errs = append(errs, nonNegative(int64(*v), spec.Child("failedJobsHistoryLimit"))...)
	}
	if v := s.StartingDeadlineSeconds; v != nil {
		errs = append(errs, nonNegative(*v, spec.Child("startingDeadlineSeconds"))...)
	}
	jt := spec.Child("jobTemplate", "spec")
	js := &s.JobTemplate.Spec
	if js.Selector != nil {
		if sel, err := metav1.LabelSelectorAsSelector(js.Selector); err == nil && !sel.Matches(labels.Set(js.Template.Labels)) {
			errs = append(errs, field.Invalid(jt.Child("template", "metadata", "labels"), js.Template.Labels, "`selector` does not match template `labels`"))
		}
	}
	errs = append(errs, ValidatePodSpec(&js.Template.Spec, jt.Child("template", "spec"))...)
	if rp := js.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.NotSupported(jt.Child("template", "spec", "restartPolicy"), rp, []string{string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}))
	}
	return errs
}
