package registry

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func template(restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{RestartPolicy: restart, Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
}

func strategy(resource string) Strategy {
	group := "apps"
	if resource == "jobs" || resource == "cronjobs" {
		group = "batch"
	}
	return Default().Get(schema.GroupResource{Group: group, Resource: resource}).Strategy
}

// checkErrors validates obj and compares the aggregate message with want ("" = valid).
func checkErrors(t *testing.T, name string, s Strategy, obj runtime.Object, want string) {
	t.Helper()
	errs := s.Validate(obj).ToAggregate()
	if (want == "") != (errs == nil) || (errs != nil && !strings.Contains(errs.Error(), want)) {
		t.Errorf("%s: errors = %v, want %q", name, errs, want)
	}
}

func TestStatefulSetDefaultsAndValidation(t *testing.T) {
	s := strategy("statefulsets")
	base := func() *appsv1.StatefulSet {
		ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "x"},
			Spec: appsv1.StatefulSetSpec{ServiceName: "web", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: template("")}}
		s.PrepareForCreate(ss)
		return ss
	}
	d := base().Spec
	if *d.Replicas != 1 || d.PodManagementPolicy != appsv1.OrderedReadyPodManagement || d.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType ||
		*d.UpdateStrategy.RollingUpdate.Partition != 0 || *d.RevisionHistoryLimit != 10 ||
		d.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType ||
		d.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("defaults: %+v", d)
	}
	cases := []struct {
		name string
		mut  func(*appsv1.StatefulSet)
		want string
	}{
		{"valid", func(*appsv1.StatefulSet) {}, ""},
		{"selector mismatch", func(ss *appsv1.StatefulSet) { ss.Spec.Template.Labels = map[string]string{"app": "db"} },
			"spec.template.metadata.labels: Invalid value: {\"app\":\"db\"}: `selector` does not match template `labels`"},
		{"empty selector", func(ss *appsv1.StatefulSet) { ss.Spec.Selector = &metav1.LabelSelector{} }, "empty selector is invalid for statefulset"},
		{"no selector", func(ss *appsv1.StatefulSet) { ss.Spec.Selector = nil }, "spec.selector: Required value"},
		{"bad policy", func(ss *appsv1.StatefulSet) { ss.Spec.PodManagementPolicy = "Random" },
			"spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"},
		{"negative partition", func(ss *appsv1.StatefulSet) { *ss.Spec.UpdateStrategy.RollingUpdate.Partition = -1 },
			"spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"},
		{"on delete with rolling update", func(ss *appsv1.StatefulSet) { ss.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType },
			"only allowed for updateStrategy 'RollingUpdate'"},
		{"restart never", func(ss *appsv1.StatefulSet) { ss.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`},
		{"negative replicas", func(ss *appsv1.StatefulSet) { ss.Spec.Replicas = int32p(-2) }, "spec.replicas: Invalid value: -2"},
	}
	for _, c := range cases {
		ss := base()
		c.mut(ss)
		checkErrors(t, c.name, s, ss, c.want)
	}
	old, ss := base(), base()
	old.ResourceVersion, ss.ResourceVersion = "1", "1"
	ss.Spec.Replicas, ss.Spec.Template.Spec.Containers[0].Image = int32p(5), "v2"
	if errs := s.ValidateUpdate(ss, old); len(errs) > 0 {
		t.Errorf("replicas and template update refused: %v", errs)
	}
	ss.Spec.ServiceName = "other"
	if errs := s.ValidateUpdate(ss, old).ToAggregate(); errs == nil || !strings.Contains(errs.Error(), "updates to statefulset spec for fields other than 'replicas'") {
		t.Errorf("serviceName update: %v", errs)
	}
}

func TestDaemonSetDefaultsAndValidation(t *testing.T) {
	s := strategy("daemonsets")
	base := func() *appsv1.DaemonSet {
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "x"},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template("")}}
		s.PrepareForCreate(ds)
		return ds
	}
	d := base().Spec
	if d.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || d.UpdateStrategy.RollingUpdate.MaxUnavailable.IntValue() != 1 ||
		d.UpdateStrategy.RollingUpdate.MaxSurge.IntValue() != 0 || *d.RevisionHistoryLimit != 10 {
		t.Errorf("defaults: %+v", d.UpdateStrategy)
	}
	zero := intstr.FromInt32(0)
	cases := []struct {
		name string
		mut  func(*appsv1.DaemonSet)
		want string
	}{
		{"valid", func(*appsv1.DaemonSet) {}, ""},
		{"empty selector", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = &metav1.LabelSelector{} }, "empty selector is invalid for daemonset"},
		{"zero unavailable and surge", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &zero },
			"spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"},
		{"bad strategy", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Later" },
			`spec.updateStrategy.type: Unsupported value: "Later": supported values: "OnDelete", "RollingUpdate"`},
		{"active deadline", func(ds *appsv1.DaemonSet) { v := int64(3); ds.Spec.Template.Spec.ActiveDeadlineSeconds = &v },
			"spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in daemonset is not Supported"},
	}
	for _, c := range cases {
		ds := base()
		c.mut(ds)
		checkErrors(t, c.name, s, ds, c.want)
	}
}

func TestJobDefaultsSelectorAndValidation(t *testing.T) {
	s := strategy("jobs")
	// What `kubectl create job hello --image=busybox -- echo hi` sends.
	base := func() *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "x", UID: "u-1"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "hello", Image: "busybox", Command: []string{"echo", "hi"}}}}}}}
		s.PrepareForCreate(j)
		return j
	}
	j := base()
	want := map[string]string{"batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "hello", "controller-uid": "u-1", "job-name": "hello"}
	if !equalMaps(j.Spec.Template.Labels, want) || !equalMaps(j.Labels, want) ||
		!equalMaps(j.Spec.Selector.MatchLabels, map[string]string{"batch.kubernetes.io/controller-uid": "u-1"}) {
		t.Errorf("generated labels %v, job labels %v, selector %v", j.Spec.Template.Labels, j.Labels, j.Spec.Selector)
	}
	if *j.Spec.Completions != 1 || *j.Spec.Parallelism != 1 || *j.Spec.BackoffLimit != 6 || *j.Spec.CompletionMode != batchv1.NonIndexedCompletion ||
		*j.Spec.Suspend || *j.Spec.PodReplacementPolicy != batchv1.TerminatingOrFailed {
		t.Errorf("defaults: %+v", j.Spec)
	}
	cases := []struct {
		name string
		mut  func(*batchv1.Job)
		want string
	}{
		{"valid", func(*batchv1.Job) {}, ""},
		{"restart always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			`spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`},
		{"negative backoff", func(j *batchv1.Job) { j.Spec.BackoffLimit = int32p(-1) }, "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"},
		{"selector not generated", func(j *batchv1.Job) { j.Spec.Selector.MatchLabels["app"] = "x"; j.Spec.Template.Labels["app"] = "x" },
			"`selector` not auto-generated"},
		{"manual selector mismatch", func(j *batchv1.Job) {
			t := true
			j.Spec.ManualSelector = &t
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
		}, "`selector` does not match template `labels`"},
		{"zero deadline", func(j *batchv1.Job) { v := int64(0); j.Spec.ActiveDeadlineSeconds = &v },
			"spec.activeDeadlineSeconds: Invalid value: 0: must be greater than 0"},
	}
	for _, c := range cases {
		j := base()
		c.mut(j)
		checkErrors(t, c.name, s, j, c.want)
	}
	old, j := base(), base()
	old.ResourceVersion, j.ResourceVersion = "1", "1"
	j.Spec.Parallelism = int32p(3)
	if errs := s.ValidateUpdate(j, old); len(errs) > 0 {
		t.Errorf("parallelism update refused: %v", errs)
	}
	j.Spec.Template.Spec.Containers[0].Image = "other"
	if errs := s.ValidateUpdate(j, old).ToAggregate(); errs == nil || !strings.Contains(errs.Error(), "spec.template: Invalid value") ||
		!strings.Contains(errs.Error(), "field is immutable") {
		t.Errorf("template update: %v", errs)
	}
}

func TestCronJobDefaultsAndValidation(t *testing.T) {
	s := strategy("cronjobs")
	base := func() *batchv1.CronJob {
		cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "x"},
			Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(corev1.RestartPolicyOnFailure)}}}}
		s.PrepareForCreate(cj)
		return cj
	}
	d := base().Spec
	if d.ConcurrencyPolicy != batchv1.AllowConcurrent || *d.Suspend || *d.SuccessfulJobsHistoryLimit != 3 || *d.FailedJobsHistoryLimit != 1 {
		t.Errorf("defaults: %+v", d)
	}
	cases := []struct {
		name string
		mut  func(*batchv1.CronJob)
		want string
	}{
		{"valid", func(*batchv1.CronJob) {}, ""},
		{"bad schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "* * *" }, `spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]`},
		{"no schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "" }, "spec.schedule: Required value"},
		{"long name", func(cj *batchv1.CronJob) { cj.Name = strings.Repeat("a", 53) }, "must be no more than 52 characters"},
		{"bad policy", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = "Sometimes" },
			`spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"`},
		{"restart always", func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		},
			`spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always"`},
	}
	for _, c := range cases {
		cj := base()
		c.mut(cj)
		checkErrors(t, c.name, s, cj, c.want)
	}
}
