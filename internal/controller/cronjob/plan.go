// Package cronjob runs the batch/v1 CronJob controller: at each scheduled time
// (spec.schedule in spec.timeZone, the most recent one only when several were
// missed, none older than startingDeadlineSeconds) it creates the Job
// <cronjob>-<minutes since the epoch> from jobTemplate, as Kubernetes does,
// honouring suspend and concurrencyPolicy (Allow, Forbid, Replace), and keeps
// successfulJobsHistoryLimit / failedJobsHistoryLimit finished Jobs. The plan is a
// pure function; the controller applies it.
package cronjob

import (
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/internal/cron"
)

// AnnotationScheduledTimestamp records on a Job the time it was scheduled for.
const AnnotationScheduledTimestamp = batchv1.CronJobScheduledTimestampAnnotation

// maxMissed bounds the search for missed schedules (Kubernetes gives up at 100
// and starts the latest; so does this, after more).
const maxMissed = 100000

// decision is what one sync does.
type decision struct {
	create  *time.Time // the scheduled time of a Job to create
	del     []*batchv1.Job
	status  batchv1.CronJobStatus
	requeue time.Duration // until the next scheduled time
}

func finished(j *batchv1.Job) (batchv1.JobConditionType, bool) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, true
		}
	}
	return "", false
}

// jobName is the name of the Job for scheduled time t.
func jobName(cj *batchv1.CronJob, t time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, t.Unix()/60)
}

func ref(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: j.Namespace, Name: j.Name, UID: j.UID}
}

// plan decides a sync of cj whose Jobs are jobs.
func plan(cj *batchv1.CronJob, jobs []*batchv1.Job, now time.Time) (decision, error) {
	d := decision{status: *cj.Status.DeepCopy()}
	st := &d.status
	var active, succeeded, failed []*batchv1.Job
	names := map[string]bool{}
	for _, j := range jobs {
		names[j.Name] = true
		switch t, done := finished(j); {
		case !done:
			active = append(active, j)
		case t == batchv1.JobComplete:
			succeeded = append(succeeded, j)
			if c := j.Status.CompletionTime; c != nil && (st.LastSuccessfulTime == nil || st.LastSuccessfulTime.Before(c)) {
				st.LastSuccessfulTime = c.DeepCopy()
			}
		default:
			failed = append(failed, j)
		}
	}
	sort.Slice(active, func(a, b int) bool { return active[a].Name < active[b].Name })
	st.Active = nil
	for _, j := range active {
		st.Active = append(st.Active, ref(j))
	}
	oldestFirst := func(js []*batchv1.Job) {
		sort.Slice(js, func(a, b int) bool {
			if !js[a].CreationTimestamp.Equal(&js[b].CreationTimestamp) {
				return js[a].CreationTimestamp.Before(&js[b].CreationTimestamp)
			}
			return js[a].Name < js[b].Name
		})
	}
	for _, h := range []struct {
		js    []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit != nil && len(h.js) > int(*h.limit) {
			oldestFirst(h.js)
			d.del = append(d.del, h.js[:len(h.js)-int(*h.limit)]...)
		}
	}

	sched, err := cron.Parse(cj.Spec.Schedule)
	if err != nil {
		return d, fmt.Errorf("unparseable schedule %q: %w", cj.Spec.Schedule, err)
	}
	loc := time.UTC
	if tz := cj.Spec.TimeZone; tz != nil {
		if loc, err = time.LoadLocation(*tz); err != nil {
			return d, fmt.Errorf("invalid timeZone %q: %w", *tz, err)
		}
	}
	if next := sched.Next(now.In(loc)); !next.IsZero() {
		d.requeue = next.Sub(now) + 100*time.Millisecond
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return d, nil
	}
	earliest := cj.CreationTimestamp.Time
	if st.LastScheduleTime != nil {
		earliest = st.LastScheduleTime.Time
	}
	if dl := cj.Spec.StartingDeadlineSeconds; dl != nil {
		if e := now.Add(-time.Duration(*dl) * time.Second); e.After(earliest) {
			earliest = e
		}
	}
	var due time.Time
	for t, n := sched.Next(earliest.In(loc)), 0; !t.IsZero() && !t.After(now) && n < maxMissed; t, n = sched.Next(t), n+1 {
		due = t
	}
	if due.IsZero() {
		return d, nil
	}
	at := metav1.NewTime(due)
	if names[jobName(cj, due)] {
		if st.LastScheduleTime == nil || st.LastScheduleTime.Before(&at) {
			st.LastScheduleTime = &at // created by a sync whose status write was lost
		}
		return d, nil
	}
	if len(active) > 0 {
		switch cj.Spec.ConcurrencyPolicy {
		case batchv1.ForbidConcurrent:
			return d, nil // tried again at the next sync, while still due
		case batchv1.ReplaceConcurrent:
			d.del = append(d.del, active...)
			st.Active = nil
		}
	}
	d.create = &due
	st.LastScheduleTime = &at
	return d, nil
}
