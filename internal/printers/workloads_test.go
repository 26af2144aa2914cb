package printers

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func columnNames(kind string, wide bool) string {
	var names []string
	for _, c := range Columns(kind) {
		if wide || c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	return fmt.Sprint(names)
}

func TestWorkloadColumns(t *testing.T) {
	for kind, want := range map[string]string{
		"StatefulSet": "[Name Ready Age]",
		"DaemonSet":   "[Name Desired Current Ready Up-to-date Available Node Selector Age]",
		"Job":         "[Name Status Completions Duration Age]",
	} {
		if got := columnNames(kind, false); got != want {
			t.Errorf("%s columns %s, want %s", kind, got, want)
		}
	}
	if got := columnNames("StatefulSet", true); got != "[Name Ready Age Containers Images]" {
		t.Errorf("statefulset wide columns %s", got)
	}
}

func TestWorkloadCells(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-3 * time.Minute))
	n := int32(3)
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"},
		Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: created},
		Spec: appsv1.StatefulSetSpec{Replicas: &n, Template: tmpl}, Status: appsv1.StatefulSetStatus{ReadyReplicas: 2}}
	if got := fmt.Sprint(cells(t, "StatefulSet", ss)); got != "[web 2/3 3m web nginx]" {
		t.Errorf("statefulset row %s", got)
	}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", CreationTimestamp: created},
		Spec:   appsv1.DaemonSetSpec{Selector: sel, Template: tmpl},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2}}
	if got := fmt.Sprint(cells(t, "DaemonSet", ds)); got != "[agent 3 3 2 1 2 disk=ssd 3m web nginx app=web]" {
		t.Errorf("daemonset row %s", got)
	}
	start := metav1.NewTime(created.Add(10 * time.Second))
	end := metav1.NewTime(start.Add(42 * time.Second))
	two := int32(2)
	cases := []struct {
		name string
		job  batchv1.Job
		want string
	}{
		{"complete", batchv1.Job{Spec: batchv1.JobSpec{Completions: &n},
			Status: batchv1.JobStatus{Succeeded: 3, StartTime: &start, CompletionTime: &end,
				Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: "True"}, {Type: batchv1.JobComplete, Status: "True"}}}},
			"[j Complete 3/3 42s 3m web nginx app=web]"},
		{"work queue running", batchv1.Job{Spec: batchv1.JobSpec{Parallelism: &two}, Status: batchv1.JobStatus{Succeeded: 0}},
			"[j Running 0/1 of 2  3m web nginx app=web]"},
		{"failed", batchv1.Job{Spec: batchv1.JobSpec{Completions: &n},
			Status: batchv1.JobStatus{Failed: 7, Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: "True"}, {Type: batchv1.JobFailed, Status: "True"}}}},
			"[j Failed 0/3  3m web nginx app=web]"},
		{"suspended", batchv1.Job{Spec: batchv1.JobSpec{Completions: &n},
			Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: "True"}}}},
			"[j Suspended 0/3  3m web nginx app=web]"},
	}
	for _, c := range cases {
		c.job.Name, c.job.CreationTimestamp, c.job.Spec.Template, c.job.Spec.Selector = "j", created, tmpl, sel
		if got := fmt.Sprint(cells(t, "Job", &c.job)); got != c.want {
			t.Errorf("%s: job row %s, want %s", c.name, got, c.want)
		}
	}
}

func TestCronJobCells(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-10 * time.Minute))
	last := metav1.NewTime(time.Now().Add(-2 * time.Minute))
	f, tz := false, "Europe/Paris"
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick", CreationTimestamp: created},
		Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", Suspend: &f, JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}},
		Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "tick-1"}}, LastScheduleTime: &last}}
	if got := fmt.Sprint(cells(t, "CronJob", cj)); got != "[tick */5 * * * * <none> False 1 2m 10m c busybox <none>]" {
		t.Errorf("cronjob row %s", got)
	}
	cj.Spec.TimeZone, cj.Status = &tz, batchv1.CronJobStatus{}
	if got := fmt.Sprint(cells(t, "CronJob", cj)[2:6]); got != "[Europe/Paris False 0 <none>]" {
		t.Errorf("cronjob cells %s", got)
	}
	if got := columnNames("CronJob", false); got != "[Name Schedule Timezone Suspend Active Last Schedule Age]" {
		t.Errorf("cronjob columns %s", got)
	}
}
