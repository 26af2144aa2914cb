package registry

import (
	"maps"
	"math"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Labels Kubernetes puts on a Job's pod template when it generates the selector;
// each has a legacy name without the prefix, set too.
const (
	JobControllerUIDLabel = batchv1.ControllerUidLabel // "batch.kubernetes.io/controller-uid"
	JobNameLabel          = batchv1.JobNameLabel       // "batch.kubernetes.io/job-name"
)

// jobStrategy is the Job's Generic strategy plus the selector generated at
// creation, as Kubernetes' job strategy does (the uid is set by then).
type jobStrategy struct{ Generic }

// PrepareForCreate implements Strategy.
func (s jobStrategy) PrepareForCreate(obj runtime.Object) {
	j := obj.(*batchv1.Job)
	j.Status = batchv1.JobStatus{}
	if j.Spec.ManualSelector == nil || !*j.Spec.ManualSelector {
		generateJobSelector(j)
	}
	s.Generic.PrepareForCreate(obj)
}

// generateJobSelector labels the template with the job's name and uid and
// selects the uid, keeping labels the user set (validation rejects conflicts).
func generateJobSelector(j *batchv1.Job) {
	t := &j.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for _, k := range []string{"job-name", JobNameLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = j.Name
		}
	}
	for _, k := range []string{"controller-uid", JobControllerUIDLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = string(j.UID)
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[JobControllerUIDLabel]; !ok {
		j.Spec.Selector.MatchLabels[JobControllerUIDLabel] = string(j.UID)
	}
}

// defaultJob applies batch/v1's Job defaults; a Job without labels takes its
// template's (which, after generation, name the job and its uid).
func defaultJob(obj runtime.Object) {
	j := obj.(*batchv1.Job)
	s := &j.Spec
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions, s.Parallelism = int32p(1), int32p(1)
	}
	if s.Parallelism == nil {
		s.Parallelism = int32p(1)
	}
	if s.BackoffLimit == nil {
		if s.BackoffLimitPerIndex != nil {
			s.BackoffLimit = int32p(math.MaxInt32)
		} else {
			s.BackoffLimit = int32p(6)
		}
	}
	if s.CompletionMode == nil {
		m := batchv1.NonIndexedCompletion
		s.CompletionMode = &m
	}
	if s.Suspend == nil {
		f := false
		s.Suspend = &f
	}
	if s.PodReplacementPolicy == nil {
		p := batchv1.TerminatingOrFailed
		if s.PodFailurePolicy != nil {
			p = batchv1.Failed
		}
		s.PodReplacementPolicy = &p
	}
	if len(j.Labels) == 0 && len(s.Template.Labels) > 0 {
		j.Labels = maps.Clone(s.Template.Labels)
	}
	DefaultPodSpec(&s.Template.Spec)
}

// validateJob checks the spec as Kubernetes' ValidateJob does (the parts svcnet runs).
func validateJob(obj runtime.Object) field.ErrorList {
	j := obj.(*batchv1.Job)
	s := &j.Spec
	spec := field.NewPath("spec")
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		v    *int32
	}{{"parallelism", s.Parallelism}, {"completions", s.Completions}, {"backoffLimit", s.BackoffLimit}} {
		if f.v != nil {
			errs = append(errs, nonNegative(int64(*f.v), spec.Child(f.name))...)
		}
	}
	if v := s.ActiveDeadlineSeconds; v != nil && *v <= 0 {
		errs = append(errs, field.Invalid(spec.Child("activeDeadlineSeconds"), *v, "must be greater than 0"))
	}
	if s.TTLSecondsAfterFinished != nil {
		errs = append(errs, nonNegative(int64(*s.TTLSecondsAfterFinished), spec.Child("ttlSecondsAfterFinished"))...)
	}
	if m := s.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		errs = append(errs, field.NotSupported(spec.Child("completionMode"), *m, []string{string(batchv1.NonIndexedCompletion), string(batchv1.IndexedCompletion)}))
	} else if m != nil && *m == batchv1.IndexedCompletion {
		if s.Completions == nil {
			errs = append(errs, field.Required(spec.Child("completions"), "when completion mode is Indexed"))
		}
	}
	tp := spec.Child("template")
	if s.Selector == nil {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(s.Selector, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
		if sel, err := metav1.LabelSelectorAsSelector(s.Selector); err == nil && !sel.Matches(labels.Set(s.Template.Labels)) {
			errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), s.Template.Labels, "`selector` does not match template `labels`"))
		}
		if s.ManualSelector == nil || !*s.ManualSelector {
			errs = append(errs, validateGeneratedSelector(j)...)
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(s.Template.Labels, tp.Child("metadata", "labels"))...)
	errs = append(errs, ValidatePodSpec(&s.Template.Spec, tp.Child("spec"))...)
	if rp := s.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), rp, []string{string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}))
	}
	return errs
}

// validateGeneratedSelector checks a selector the server generated: it selects
// exactly the job's uid and the template carries the uid label.
func validateGeneratedSelector(j *batchv1.Job) field.ErrorList {
	if j.UID == "" {
		return nil // checked again once stored with its uid
	}
	spec := field.NewPath("spec")
	var errs field.ErrorList
	want := &metav1.LabelSelector{MatchLabels: map[string]string{JobControllerUIDLabel: string(j.UID)}}
	if !apiequality.Semantic.DeepEqual(j.Spec.Selector, want) {
		errs = append(errs, field.Invalid(spec.Child("selector"), j.Spec.Selector, "`selector` not auto-generated"))
	}
	if v, ok := j.Spec.Template.Labels[JobControllerUIDLabel]; !ok || v != string(j.UID) {
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), j.Spec.Template.Labels,
			"must be '"+JobControllerUIDLabel+"="+string(j.UID)+"'"))
	}
	return errs
}

// validateJobUpdate keeps the fields Kubernetes makes immutable.
func validateJobUpdate(obj, old runtime.Object) field.ErrorList {
	a, b := &obj.(*batchv1.Job).Spec, &old.(*batchv1.Job).Spec
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if !apiequality.Semantic.DeepEqual(a.Selector, b.Selector) {
		errs = append(errs, field.Invalid(spec.Child("selector"), a.Selector, "field is immutable"))
	}
	if !apiequality.Semantic.DeepEqual(a.Template, b.Template) {
		errs = append(errs, field.Invalid(spec.Child("template"), a.Template, "field is immutable"))
	}
	if !apiequality.Semantic.DeepEqual(a.Completions, b.Completions) {
		errs = append(errs, field.Invalid(spec.Child("completions"), a.Completions, "field is immutable"))
	}
	if !apiequality.Semantic.DeepEqual(a.CompletionMode, b.CompletionMode) {
		errs = append(errs, field.Invalid(spec.Child("completionMode"), a.CompletionMode, "field is immutable"))
	}
	return errs
}
