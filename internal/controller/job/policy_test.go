package job

import (
	"slices"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// exited is a failed pod of index ix (-1: none) whose container exited with code.
func exited(ix int, code int32, mut ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p" + strconv.Itoa(ix), Namespace: "ns", Annotations: map[string]string{}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{Name: "c",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}}}}
	if code == 0 {
		p.Status.Phase = corev1.PodSucceeded
	}
	if ix >= 0 {
		p.Annotations[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(ix)
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

func indexedJob(completions, parallelism int32, mut func(*batchv1.Job)) *batchv1.Job {
	mode := batchv1.IndexedCompletion
	j := &batchv1.Job{Spec: batchv1.JobSpec{Completions: &completions, Parallelism: &parallelism, BackoffLimit: i32(6), CompletionMode: &mode,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}}}}
	mut(j)
	return j
}

func rule(action batchv1.PodFailurePolicyAction, codes ...int32) batchv1.PodFailurePolicyRule {
	return batchv1.PodFailurePolicyRule{Action: action, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
		Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: codes}}
}

func TestFailureAction(t *testing.T) {
	disrupted := func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
	}
	onCondition := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}
	notIn := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
		Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2}}}
	for _, tc := range []struct {
		name   string
		rules  []batchv1.PodFailurePolicyRule
		pod    *corev1.Pod
		action batchv1.PodFailurePolicyAction
		msg    string
	}{
		{"no rule matches: count", []batchv1.PodFailurePolicyRule{rule("FailJob", 42)}, exited(0, 1), "Count", ""},
		{"exit code in", []batchv1.PodFailurePolicyRule{rule("Ignore", 2), rule("FailJob", 1)}, exited(0, 1), "FailJob",
			"Container c for pod ns/p0 failed with exit code 1 matching FailJob rule at index 1"},
		{"exit code not in", []batchv1.PodFailurePolicyRule{notIn}, exited(0, 3), "FailJob",
			"Container c for pod ns/p0 failed with exit code 3 matching FailJob rule at index 0"},
		{"not in: listed code", []batchv1.PodFailurePolicyRule{notIn}, exited(0, 2), "Count", ""},
		{"pod condition", []batchv1.PodFailurePolicyRule{rule("FailJob", 1), onCondition}, exited(0, 137, disrupted), "Ignore",
			"Pod ns/p0 has condition DisruptionTarget matching Ignore rule at index 1"},
		{"first rule wins", []batchv1.PodFailurePolicyRule{rule("FailIndex", 1), onCondition}, exited(0, 1, disrupted), "FailIndex", ""},
	} {
		action, msg := failureAction(&batchv1.PodFailurePolicy{Rules: tc.rules}, tc.pod)
		if action != tc.action || tc.msg != "" && msg != tc.msg {
			t.Errorf("%s: %s %q, want %s %q", tc.name, action, msg, tc.action, tc.msg)
		}
	}
}

func TestPlanPolicies(t *testing.T) {
	now := time.Now()
	perIndex := func(limit int32, maxFailed *int32, rules ...batchv1.PodFailurePolicyRule) func(*batchv1.Job) {
		return func(j *batchv1.Job) {
			j.Spec.BackoffLimitPerIndex, j.Spec.MaxFailedIndexes, j.Spec.BackoffLimit = &limit, maxFailed, i32(1<<31-1)
			if len(rules) > 0 {
				j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: rules}
			}
		}
	}
	retried := func(n string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations[batchv1.JobIndexFailureCountAnnotation] = n }
	}
	for _, tc := range []struct {
		name          string
		job           *batchv1.Job
		pods          []*corev1.Pod
		indexes       []int
		failed        int32
		failedIndexes string
		cond          string // the FailureTarget or SuccessCriteriaMet reason
	}{
		{"FailJob on exit code", indexedJob(4, 2, func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{rule("FailJob", 1)}}
		}), []*corev1.Pod{exited(0, 1)}, nil, 1, "", "PodFailurePolicy"},
		{"Ignore: not counted, replaced at once", indexedJob(2, 2, func(j *batchv1.Job) {
			j.Spec.BackoffLimit = i32(0)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{rule("Ignore", 42)}}
		}), []*corev1.Pod{exited(0, 42), exited(1, 42)}, []int{0, 1}, 0, "", ""},
		{"per index: a failure below the limit is retried", indexedJob(4, 2, perIndex(1, nil)),
			[]*corev1.Pod{exited(0, 0), exited(1, 1)}, []int{1, 2}, 1, "", ""},
		{"per index: past the limit the index fails, others go on", indexedJob(4, 2, perIndex(1, nil)),
			[]*corev1.Pod{exited(0, 0), exited(1, 1), exited(1, 1, retried("1"))}, []int{2, 3}, 2, "1", ""},
		{"per index: all indexes finished with failures", indexedJob(4, 2, perIndex(1, nil)),
			[]*corev1.Pod{exited(0, 0), exited(1, 1), exited(1, 1, retried("1")), exited(2, 0), exited(3, 1), exited(3, 1, retried("1"))},
			nil, 4, "1,3", "FailedIndexes"},
		{"per index: maxFailedIndexes exceeded", indexedJob(4, 1, perIndex(0, i32(0))),
			[]*corev1.Pod{exited(0, 1)}, nil, 1, "0", "MaxFailedIndexesExceeded"},
		{"FailIndex: no retry despite the limit", indexedJob(2, 2, perIndex(1, nil, rule("FailIndex", 1))),
			[]*corev1.Pod{exited(0, 0), exited(1, 1)}, nil, 1, "1", "FailedIndexes"},
		{"successPolicy succeededIndexes", indexedJob(5, 2, func(j *batchv1.Job) {
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
		}), []*corev1.Pod{exited(0, 0), exited(1, 1)}, nil, 1, "", "SuccessPolicy"},
		{"successPolicy succeededCount", indexedJob(5, 2, func(j *batchv1.Job) {
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededCount: i32(2)}}}
		}), []*corev1.Pod{exited(0, 0), exited(2, 0)}, nil, 0, "", "SuccessPolicy"},
		{"successPolicy not met yet", indexedJob(5, 2, func(j *batchv1.Job) {
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0-1"), SucceededCount: i32(2)}}}
		}), []*corev1.Pod{exited(0, 0), exited(2, 0)}, []int{1, 3}, 0, "", ""},
	} {
		d := plan(tc.job, tc.pods, now, 0)
		st := d.status
		var reason string
		for _, c := range st.Conditions {
			if c.Type == batchv1.JobFailureTarget || c.Type == batchv1.JobSuccessCriteriaMet {
				reason = c.Reason
			}
		}
		fi := ""
		if st.FailedIndexes != nil {
			fi = *st.FailedIndexes
		}
		if !slices.Equal(d.indexes, tc.indexes) || st.Failed != tc.failed || fi != tc.failedIndexes || reason != tc.cond {
			t.Errorf("%s: create %v failed %d failedIndexes %q condition %q; want %v %d %q %q", tc.name,
				d.indexes, st.Failed, fi, reason, tc.indexes, tc.failed, tc.failedIndexes, tc.cond)
		}
	}
}

// A replacement carries its index's failures so far; with podReplacementPolicy
// Failed a terminating pod keeps its index until it has failed.
func TestPlanReplacementAnnotationsAndPolicy(t *testing.T) {
	j := indexedJob(2, 2, func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = i32(3) })
	d := plan(j, []*corev1.Pod{exited(0, 1, func(p *corev1.Pod) { p.Annotations[batchv1.JobIndexFailureCountAnnotation] = "1" }), exited(1, 0)}, time.Now(), 0)
	if !slices.Equal(d.indexes, []int{0}) || len(d.failureCounts) != 1 || d.failureCounts[0] != [2]int32{2, 0} {
		t.Fatalf("replacement %v counts %v, want index 0 with 2 failures", d.indexes, d.failureCounts)
	}
	deleting := metav1.Now()
	running := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "t", DeletionTimestamp: &deleting,
		Annotations: map[string]string{batchv1.JobCompletionIndexAnnotation: "0"}}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	failed := batchv1.Failed
	j = indexedJob(2, 2, func(j *batchv1.Job) { j.Spec.PodReplacementPolicy = &failed })
	if d := plan(j, []*corev1.Pod{running}, time.Now(), 0); !slices.Equal(d.indexes, []int{1}) || *d.status.Terminating != 1 {
		t.Fatalf("podReplacementPolicy Failed: created %v terminating %d, want only index 1", d.indexes, *d.status.Terminating)
	}
}
