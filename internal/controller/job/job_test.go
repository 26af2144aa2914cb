package job

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func i32(v int32) *int32 { return &v }

func pods(phases ...corev1.PodPhase) []*corev1.Pod {
	var out []*corev1.Pod
	for i, ph := range phases {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p" + string(rune('0'+i))}, Status: corev1.PodStatus{Phase: ph}}
		if ph == corev1.PodRunning {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		out = append(out, p)
	}
	return out
}

// conds renders the true conditions, in order.
func conds(st batchv1.JobStatus) string {
	var out []string
	for _, c := range st.Conditions {
		if c.Status == corev1.ConditionTrue {
			out = append(out, string(c.Type))
		}
	}
	return strings.Join(out, ",")
}

func TestPlan(t *testing.T) {
	now := time.Now()
	job := func(completions, parallelism *int32, backoff int32, mut ...func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{Spec: batchv1.JobSpec{Completions: completions, Parallelism: parallelism, BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}}}}
		for _, m := range mut {
			m(j)
		}
		return j
	}
	R, S, F := corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed
	cases := []struct {
		name            string
		job             *batchv1.Job
		pods            []*corev1.Pod
		create, deletes int
		active, succ    int32
		failed          int32
		conds           string
	}{
		{"first pod", job(i32(1), i32(1), 6), nil, 1, 0, 0, 0, 0, ""},
		{"parallelism bounded by remaining completions", job(i32(5), i32(3), 6), pods(S, S, S, R), 1, 0, 1, 3, 0, ""},
		{"complete", job(i32(2), i32(2), 6), pods(S, S), 0, 0, 0, 2, 0, "SuccessCriteriaMet,Complete"},
		{"extra pods stopped when done", job(i32(1), i32(2), 6), pods(S, R), 0, 1, 0, 1, 0, "SuccessCriteriaMet"},
		{"work queue: running until all stop", job(nil, i32(2), 6), pods(S, R), 0, 0, 1, 1, 0, ""},
		{"work queue: done", job(nil, i32(2), 6), pods(S, S), 0, 0, 0, 2, 0, "SuccessCriteriaMet,Complete"},
		{"failure replaced (no back-off in this table)", job(i32(1), i32(1), 6), pods(F), 1, 0, 0, 0, 1, ""},
		{"back-off limit 0: first failure fails", job(i32(1), i32(1), 0), pods(F), 0, 0, 0, 0, 1, "FailureTarget,Failed"},
		{"back-off limit 2: third failure fails, running pod stopped", job(i32(2), i32(2), 2), pods(F, F, F, R), 0, 1, 0, 0, 3, "FailureTarget"},
		{"OnFailure: restarts count", job(i32(1), i32(1), 2, func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }),
			func() []*corev1.Pod {
				ps := pods(R)
				ps[0].Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: 2}}
				return ps
			}(), 0, 1, 0, 0, 0, "FailureTarget"},
		{"deadline", job(i32(1), i32(1), 6, func(j *batchv1.Job) {
			d := int64(10)
			start := metav1.NewTime(now.Add(-time.Minute))
			j.Spec.ActiveDeadlineSeconds, j.Status.StartTime = &d, &start
		}), pods(R), 0, 1, 0, 0, 0, "FailureTarget"},
		{"suspended", job(i32(1), i32(1), 6, func(j *batchv1.Job) { t := true; j.Spec.Suspend = &t }), pods(R), 0, 1, 0, 0, 0, "Suspended"},
	}
	for _, c := range cases {
		d := plan(c.job, c.pods, now, 0)
		st := d.status
		if d.create != c.create || len(d.del) != c.deletes || st.Active != c.active || st.Succeeded != c.succ || st.Failed != c.failed || conds(st) != c.conds {
			t.Errorf("%s: create %d delete %d active %d succeeded %d failed %d conditions %q; want %d %d %d %d %d %q", c.name,
				d.create, len(d.del), st.Active, st.Succeeded, st.Failed, conds(st), c.create, c.deletes, c.active, c.succ, c.failed, c.conds)
		}
	}
	// Back-off: the replacement waits base * 2^(failures-1) after the last failure.
	failedPod := pods(F)
	failedPod[0].Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now.Add(-5 * time.Second))}}}}
	if d := plan(job(i32(1), i32(1), 6), failedPod, now, 10*time.Second); d.create != 0 || d.requeue != 5*time.Second {
		t.Errorf("back-off: create %d requeue %v, want 0 and 5s", d.create, d.requeue)
	}
	if got := backoff(10*time.Second, 3); got != 40*time.Second {
		t.Errorf("backoff(3) = %v", got)
	}
	if got := backoff(10*time.Second, 30); got != maxBackoff {
		t.Errorf("backoff(30) = %v", got)
	}
}

// kubelet runs every pod to the given phase, until ctx ends.
func kubelet(ctx context.Context, c *fake.Clientset, phase func(p *corev1.Pod) corev1.PodPhase) {
	for ctx.Err() == nil {
		list, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
		for i := range list.Items {
			p := &list.Items[i]
			if p.Status.Phase == "" {
				p.Status.Phase = phase(p)
				_, _ = c.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runJob(t *testing.T, j *batchv1.Job, phase func(p *corev1.Pod) corev1.PodPhase, done func(batchv1.JobStatus) bool) (*fake.Clientset, batchv1.JobStatus) {
	t.Helper()
	e := fakekube.NewEnv(t, j)
	c, ctx := e.Client, e.Ctx
	ctl := New(c, e.Factory, record.NewFakeRecorder(1000), slog.New(slog.DiscardHandler))
	ctl.backoff = time.Millisecond
	e.Run(2, ctl)
	go kubelet(ctx, c, phase)
	var st batchv1.JobStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		cur, _ := c.BatchV1().Jobs("ns").Get(ctx, j.Name, metav1.GetOptions{})
		if st = cur.Status; done(st) {
			return c, st
		}
	}
	t.Fatalf("job %s: not done; status %+v", j.Name, st)
	return nil, st
}

func newJob(name string, completions, parallelism, backoff int32) *batchv1.Job {
	labels := map[string]string{"batch.kubernetes.io/controller-uid": name + "-uid"}
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid")},
		Spec: batchv1.JobSpec{Completions: &completions, Parallelism: &parallelism, BackoffLimit: &backoff,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
}

func TestJobCompletes(t *testing.T) {
	c, st := runJob(t, newJob("hello", 3, 2, 6), func(*corev1.Pod) corev1.PodPhase { return corev1.PodSucceeded },
		func(st batchv1.JobStatus) bool { return conds(st) == "SuccessCriteriaMet,Complete" })
	if st.Succeeded != 3 || st.Active != 0 || st.StartTime == nil || st.CompletionTime == nil {
		t.Fatalf("status %+v", st)
	}
	list, _ := c.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 3 || !strings.HasPrefix(list.Items[0].Name, "hello-") || metav1.GetControllerOf(&list.Items[0]).Kind != "Job" {
		t.Fatalf("pods %d, first %+v", len(list.Items), list.Items[0].ObjectMeta)
	}
}

func TestJobFailsPastBackoffLimit(t *testing.T) {
	_, st := runJob(t, newJob("broken", 1, 1, 2), func(*corev1.Pod) corev1.PodPhase { return corev1.PodFailed },
		func(st batchv1.JobStatus) bool { return conds(st) == "FailureTarget,Failed" })
	if st.Failed != 3 || st.Succeeded != 0 || st.CompletionTime != nil {
		t.Fatalf("status %+v", st)
	}
	for _, c := range st.Conditions {
		if c.Type == batchv1.JobFailed && (c.Reason != "BackoffLimitExceeded" || c.Message != "Job has reached the specified backoff limit") {
			t.Fatalf("Failed condition %+v", c)
		}
	}
}

func TestIndexes(t *testing.T) {
	set := map[int]bool{}
	for _, i := range parseIndexes("0,2-4,7,9-12", 11) {
		set[i] = true
	}
	if got := formatIndexes(set); got != "0,2-4,7,9-10" {
		t.Errorf("round trip = %q", got)
	}
}

func TestIndexedJob(t *testing.T) {
	j := newJob("idx", 3, 2, 6)
	mode := batchv1.IndexedCompletion
	j.Spec.CompletionMode = &mode
	// Index 1 fails once; every other pod succeeds.
	failedOne := false
	c, st := runJob(t, j, func(p *corev1.Pod) corev1.PodPhase {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "1" && !failedOne {
			failedOne = true
			return corev1.PodFailed
		}
		return corev1.PodSucceeded
	}, func(st batchv1.JobStatus) bool { return conds(st) == "SuccessCriteriaMet,Complete" })
	if st.CompletedIndexes != "0-2" || st.Succeeded != 3 || st.Failed != 1 {
		t.Fatalf("status %+v", st)
	}
	list, _ := c.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	for _, p := range list.Items {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "idx-"+ix || !strings.HasPrefix(p.Name, "idx-"+ix+"-") ||
			p.Spec.Containers[0].Env[0].Name != "JOB_COMPLETION_INDEX" {
			t.Fatalf("indexed pod %s: hostname %q labels %v env %v", p.Name, p.Spec.Hostname, p.Labels, p.Spec.Containers[0].Env)
		}
	}
}
