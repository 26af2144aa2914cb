package printers

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// StatefulSets, DaemonSets, Jobs and CronJobs, with the columns of Kubernetes' printers.
func init() {
	register("StatefulSet", []column{{"Name", "string", false}, {"Ready", "string", false}, {"Age", "string", false},
		{"Containers", "string", true}, {"Images", "string", true}},
		func(o runtime.Object, now time.Time) []any {
			s := o.(*appsv1.StatefulSet)
			want := int32(0)
			if s.Spec.Replicas != nil {
				want = *s.Spec.Replicas
			}
			c, i := containersAndImages(s.Spec.Template.Spec.Containers)
			return []any{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, want), age(s.CreationTimestamp, now), c, i}
		})
	register("DaemonSet", []column{{"Name", "string", false}, {"Desired", "integer", false}, {"Current", "integer", false},
		{"Ready", "integer", false}, {"Up-to-date", "integer", false}, {"Available", "integer", false},
		{"Node Selector", "string", false}, {"Age", "string", false},
		{"Containers", "string", true}, {"Images", "string", true}, {"Selector", "string", true}},
		func(o runtime.Object, now time.Time) []any {
			d := o.(*appsv1.DaemonSet)
			st := d.Status
			c, i := containersAndImages(d.Spec.Template.Spec.Containers)
			return []any{d.Name, int64(st.DesiredNumberScheduled), int64(st.CurrentNumberScheduled), int64(st.NumberReady),
				int64(st.UpdatedNumberScheduled), int64(st.NumberAvailable), labels.FormatLabels(d.Spec.Template.Spec.NodeSelector),
				age(d.CreationTimestamp, now), c, i, selectorString(d.Spec.Selector)}
		})
	register("Job", []column{{"Name", "string", false}, {"Status", "string", false}, {"Completions", "string", false},
		{"Duration", "string", false}, {"Age", "string", false},
		{"Containers", "string", true}, {"Images", "string", true}, {"Selector", "string", true}},
		func(o runtime.Object, now time.Time) []any {
			j := o.(*batchv1.Job)
			c, i := containersAndImages(j.Spec.Template.Spec.Containers)
			return []any{j.Name, jobStatus(j), jobCompletions(j), jobDuration(j, now), age(j.CreationTimestamp, now), c, i, selectorString(j.Spec.Selector)}
		})
	register("CronJob", []column{{"Name", "string", false}, {"Schedule", "string", false}, {"Timezone", "string", false},
		{"Suspend", "boolean", false}, {"Active", "integer", false}, {"Last Schedule", "string", false}, {"Age", "string", false},
		{"Containers", "string", true}, {"Images", "string", true}, {"Selector", "string", true}},
		func(o runtime.Object, now time.Time) []any {
			cj := o.(*batchv1.CronJob)
			tz, suspend, last := none, "<unset>", none
			if cj.Spec.TimeZone != nil {
				tz = *cj.Spec.TimeZone
			}
			if cj.Spec.Suspend != nil {
				suspend = "False"
				if *cj.Spec.Suspend {
					suspend = "True"
				}
			}
			if cj.Status.LastScheduleTime != nil {
				last = age(*cj.Status.LastScheduleTime, now)
			}
			t := &cj.Spec.JobTemplate.Spec
			c, i := containersAndImages(t.Template.Spec.Containers)
			sel := none
			if t.Selector != nil {
				sel = selectorString(t.Selector)
			}
			return []any{cj.Name, cj.Spec.Schedule, tz, suspend, int64(len(cj.Status.Active)), last, age(cj.CreationTimestamp, now), c, i, sel}
		})
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// jobStatus is the STATUS column: the first of these that holds.
func jobStatus(j *batchv1.Job) string {
	switch {
	case jobCondition(j, batchv1.JobComplete):
		return "Complete"
	case jobCondition(j, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case jobCondition(j, batchv1.JobSuspended):
		return "Suspended"
	case jobCondition(j, batchv1.JobFailureTarget):
		return "FailureTarget"
	}
	return "Running"
}

// jobCompletions is "succeeded/completions", or for a work queue "succeeded/1"
// with "of <parallelism>" when more than one pod runs at once.
func jobCompletions(j *batchv1.Job) string {
	if j.Spec.Completions != nil {
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	}
	if p := j.Spec.Parallelism; p != nil && *p > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *p)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

// jobDuration runs from startTime to completionTime, or to now while running.
func jobDuration(j *batchv1.Job, now time.Time) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	}
	return duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
}
