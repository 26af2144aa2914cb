package cronjob

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

var t0 = time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)

func cronJob(mut ...func(*batchv1.CronJob)) *batchv1.CronJob {
	three, one := int32(3), int32(1)
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "ns", UID: "cj-uid", CreationTimestamp: metav1.NewTime(t0)},
		Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", ConcurrencyPolicy: batchv1.AllowConcurrent,
			SuccessfulJobsHistoryLimit: &three, FailedJobsHistoryLimit: &one,
			JobTemplate: batchv1.JobTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "tick"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}}}
	for _, m := range mut {
		m(cj)
	}
	return cj
}

func job(name string, at time.Time, state string) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(at)}}
	switch state {
	case "complete":
		done := metav1.NewTime(at.Add(time.Second))
		j.Status.CompletionTime = &done
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	case "failed":
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
	}
	return j
}

func TestPlan(t *testing.T) {
	name := func(at time.Time) string { return jobName(cronJob(), at) }
	last := func(at time.Time) func(*batchv1.CronJob) {
		return func(cj *batchv1.CronJob) { m := metav1.NewTime(at); cj.Status.LastScheduleTime = &m }
	}
	cases := []struct {
		name    string
		cj      *batchv1.CronJob
		jobs    []*batchv1.Job
		now     time.Time
		create  string // scheduled time, or ""
		deletes string
		active  int
	}{
		{"not due yet", cronJob(), nil, t0.Add(4 * time.Minute), "", "", 0},
		{"due", cronJob(), nil, t0.Add(5*time.Minute + 3*time.Second), "16:05", "", 0},
		{"already created", cronJob(), []*batchv1.Job{job(name(t0.Add(5*time.Minute)), t0.Add(5*time.Minute), "")}, t0.Add(6 * time.Minute), "", "", 1},
		{"missed several: the latest only", cronJob(last(t0)), nil, t0.Add(27 * time.Minute), "16:25", "", 0},
		{"starting deadline passed", cronJob(last(t0), func(cj *batchv1.CronJob) { d := int64(60); cj.Spec.StartingDeadlineSeconds = &d }),
			nil, t0.Add(27 * time.Minute), "", "", 0},
		{"suspended", cronJob(func(cj *batchv1.CronJob) { s := true; cj.Spec.Suspend = &s }), nil, t0.Add(6 * time.Minute), "", "", 0},
		{"forbid while one runs", cronJob(last(t0.Add(5*time.Minute)), func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent }),
			[]*batchv1.Job{job("tick-old", t0, "")}, t0.Add(10 * time.Minute), "", "", 1},
		{"replace the running one", cronJob(last(t0.Add(5*time.Minute)), func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent }),
			[]*batchv1.Job{job("tick-old", t0, "")}, t0.Add(10 * time.Minute), "16:10", "tick-old", 0},
		{"allow: both run", cronJob(last(t0.Add(5 * time.Minute))), []*batchv1.Job{job("tick-old", t0, "")}, t0.Add(10 * time.Minute), "16:10", "", 1},
		{"history limits", cronJob(last(t0.Add(5 * time.Minute))), []*batchv1.Job{
			job("s1", t0.Add(time.Minute), "complete"), job("s2", t0.Add(2*time.Minute), "complete"), job("s3", t0.Add(3*time.Minute), "complete"),
			job("s4", t0.Add(4*time.Minute), "complete"), job("f1", t0.Add(time.Minute), "failed"), job("f2", t0.Add(2*time.Minute), "failed")},
			t0.Add(6 * time.Minute), "", "s1 f1", 0},
		{"time zone", cronJob(func(cj *batchv1.CronJob) {
			tz := "Etc/GMT-2" // UTC+2
			cj.Spec.TimeZone, cj.Spec.Schedule = &tz, "0 19 * * *"
		}), nil, t0.Add(61 * time.Minute), "17:00", "", 0},
	}
	for _, c := range cases {
		d, err := plan(c.cj, c.jobs, c.now)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		create := ""
		if d.create != nil {
			create = d.create.UTC().Format("15:04")
		}
		var dels []string
		for _, j := range d.del {
			dels = append(dels, j.Name)
		}
		if create != c.create || strings.Join(dels, " ") != c.deletes || len(d.status.Active) != c.active {
			t.Errorf("%s: create %q delete %v active %d; want %q %q %d", c.name, create, dels, len(d.status.Active), c.create, c.deletes, c.active)
		}
		if d.requeue <= 0 || d.requeue > 5*time.Minute+time.Second && c.cj.Spec.TimeZone == nil {
			t.Errorf("%s: requeue %v", c.name, d.requeue)
		}
	}
	if _, err := plan(cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "bad" }), nil, t0); err == nil {
		t.Error("bad schedule planned")
	}
}

func TestControllerCreatesTheDueJob(t *testing.T) {
	cj := cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "* * * * *" })
	cj.CreationTimestamp = metav1.NewTime(time.Now().Add(-90 * time.Second))
	e := fakekube.NewEnv(t, cj)
	c, ctx := e.Client, e.Ctx
	e.Run(1, New(c, e.Factory, record.NewFakeRecorder(100), slog.New(slog.DiscardHandler)))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		cur, _ := c.BatchV1().CronJobs("ns").Get(ctx, "tick", metav1.GetOptions{})
		jobs, _ := c.BatchV1().Jobs("ns").List(ctx, metav1.ListOptions{})
		if cur.Status.LastScheduleTime != nil && len(cur.Status.Active) == 1 && len(jobs.Items) == 1 {
			j := jobs.Items[0]
			if j.Name != jobName(cj, cur.Status.LastScheduleTime.Time) || j.Labels["app"] != "tick" ||
				j.Annotations[AnnotationScheduledTimestamp] == "" || metav1.GetControllerOf(&j).Kind != "CronJob" {
				t.Fatalf("job %+v", j.ObjectMeta)
			}
			return
		}
	}
	t.Fatal("no job created for the due schedule")
}
