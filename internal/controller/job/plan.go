// Package job runs the batch/v1 Job controller: it keeps up to parallelism pods
// running until completions pods have succeeded (or, without completions, until
// one has and none run), recreates failed pods after an exponential back-off,
// fails the Job past backoffLimit or activeDeadlineSeconds, honours suspend and
// ttlSecondsAfterFinished, and reports status and the conditions of v1.31+
// (SuccessCriteriaMet then Complete; FailureTarget then Failed); Indexed jobs give
// each pod a completion index (annotation, label, JOB_COMPLETION_INDEX, hostname
// <job>-<index>) and report completedIndexes. podFailurePolicy rules (exit
// codes, pod conditions such as an eviction's DisruptionTarget) fail the Job,
// ignore a failure, count it or fail its index; backoffLimitPerIndex retries
// each index on its own (failures carried in the pods' failure-count
// annotation) and reports failedIndexes, failing the Job past maxFailedIndexes
// or once every index finished; a successPolicy rule (succeededIndexes,
// succeededCount) completes it early; podReplacementPolicy Failed keeps a
// terminating pod's place until it has failed. Pods are counted
// from the cache (no job-tracking finalizers); the counts never go down. The plan
// is a pure function; the controller applies it.
package job

import (
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// maxBackoff caps the delay before a failed pod is replaced, as Kubernetes does.
const maxBackoff = 6 * time.Minute

// Condition reasons and messages Kubernetes uses.
const (
	reasonCompletions  = "CompletionsReached"
	messageCompletions = "Reached expected number of succeeded pods"
	reasonBackoff      = "BackoffLimitExceeded"
	messageBackoff     = "Job has reached the specified backoff limit"
	reasonDeadline     = "DeadlineExceeded"
	messageDeadline    = "Job was active longer than specified deadline"
	reasonSuspended    = "JobSuspended"
	reasonResumed      = "JobResumed"
	messageSuspended   = "Job suspended"
	messageResumed     = "Job resumed"
)

// decision is what one sync does.
type decision struct {
	create  int
	indexes []int // Indexed jobs: the completion index of each pod to create
	// backoffLimitPerIndex: the failures and ignored failures of each index so far
	failureCounts [][2]int32
	del           []*corev1.Pod
	status        batchv1.JobStatus
	requeue       time.Duration // sync again after this (back-off, deadline, TTL)
	deleteJob     bool          // ttlSecondsAfterFinished has passed
}

func condition(st *batchv1.JobStatus, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func isTrue(st *batchv1.JobStatus, t batchv1.JobConditionType) bool {
	c := condition(st, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

// setCondition adds or updates a condition, moving its transition time only on a change.
func setCondition(st *batchv1.JobStatus, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	if c := condition(st, t); c != nil {
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, msg, now
		return
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: t, Status: status, Reason: reason, Message: msg,
		LastProbeTime: now, LastTransitionTime: now})
}

// finishedAt is when a pod's last container ended (its creation if unknown).
func finishedAt(p *corev1.Pod) time.Time {
	t := p.CreationTimestamp.Time
	for _, cs := range p.Status.ContainerStatuses {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	return t
}

// backoff is the delay before replacing a pod after failures failed pods.
func backoff(base time.Duration, failures int32) time.Duration {
	if failures <= 0 || base <= 0 {
		return 0
	}
	d := base
	for i := int32(1); i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// restarts sums the container restarts of running pods: with restartPolicy
// OnFailure, failures are restarts, and they count toward backoffLimit.
func restarts(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			n += cs.RestartCount
		}
	}
	return n
}

// finishTime is when a finished job finished (its Complete or Failed condition).
func finishTime(st *batchv1.JobStatus) (time.Time, bool) {
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed} {
		if c := condition(st, t); c != nil && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

// plan decides a sync of job j whose pods are pods; base is the first back-off delay.
func plan(j *batchv1.Job, pods []*corev1.Pod, now time.Time, base time.Duration) decision {
	d := decision{status: *j.Status.DeepCopy()}
	st := &d.status
	mnow := metav1.NewTime(now)
	if at, done := finishTime(st); done {
		if ttl := j.Spec.TTLSecondsAfterFinished; ttl != nil {
			if left := at.Add(time.Duration(*ttl) * time.Second).Sub(now); left > 0 {
				d.requeue = left
			} else {
				d.deleteJob = true
			}
		}
		return d
	}
	indexed := j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion && j.Spec.Completions != nil
	perIndex := indexed && j.Spec.BackoffLimitPerIndex != nil
	completions := 0
	if indexed {
		completions = int(*j.Spec.Completions)
	}
	var active, failedPods, terminatingPods []*corev1.Pod
	var succeeded, failed, terminating, ready int32
	var failJob string                                    // the podFailurePolicy's FailJob message
	failures, ignored := map[int]int32{}, map[int]int32{} // per index, counting the earlier pods' (annotations)
	failedIdx := map[int]bool{}                           // indexes failed for good (backoffLimitPerIndex)
	lastFailure := map[int]time.Time{}
	for _, p := range pods {
		idx, hasIdx := -1, false
		if indexed {
			idx, hasIdx = podIndex(p, completions)
		}
		if hasIdx {
			failures[idx] = max(failures[idx], annotationCount(p, batchv1.JobIndexFailureCountAnnotation))
			ignored[idx] = max(ignored[idx], annotationCount(p, batchv1.JobIndexIgnoredFailureCountAnnotation))
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			succeeded++
		case p.Status.Phase == corev1.PodFailed:
			action, msg := failureAction(j.Spec.PodFailurePolicy, p)
			if action == batchv1.PodFailurePolicyActionIgnore {
				if hasIdx {
					ignored[idx] = max(ignored[idx], annotationCount(p, batchv1.JobIndexIgnoredFailureCountAnnotation)+1)
				}
				continue // neither counted nor backed off
			}
			if action == batchv1.PodFailurePolicyActionFailJob && failJob == "" {
				failJob = msg
			}
			failed++
			failedPods = append(failedPods, p)
			if hasIdx {
				failures[idx] = max(failures[idx], annotationCount(p, batchv1.JobIndexFailureCountAnnotation)+1)
				if t := finishedAt(p); t.After(lastFailure[idx]) {
					lastFailure[idx] = t
				}
				if perIndex && action == batchv1.PodFailurePolicyActionFailIndex {
					failedIdx[idx] = true
				}
			}
		case p.DeletionTimestamp != nil:
			terminating++
			terminatingPods = append(terminatingPods, p)
		default:
			active = append(active, p)
			if pod.Ready(p.Status) {
				ready++
			}
		}
	}
	st.Succeeded, st.Failed = max(st.Succeeded, succeeded), max(st.Failed, failed)
	done := map[int]bool{}
	if indexed {
		for _, i := range parseIndexes(st.CompletedIndexes, completions) {
			done[i] = true
		}
		for _, p := range pods {
			if i, ok := podIndex(p, completions); ok && p.Status.Phase == corev1.PodSucceeded {
				done[i] = true
			}
		}
		st.CompletedIndexes, st.Succeeded = formatIndexes(done), int32(len(done))
	}
	if perIndex {
		if st.FailedIndexes != nil {
			for _, i := range parseIndexes(*st.FailedIndexes, completions) {
				failedIdx[i] = true
			}
		}
		for i, n := range failures {
			if n > *j.Spec.BackoffLimitPerIndex && !done[i] {
				failedIdx[i] = true
			}
		}
		f := formatIndexes(failedIdx)
		st.FailedIndexes = &f
	}
	st.Active, st.Ready, st.Terminating = int32(len(active)), &ready, &terminating
	stopAll := func() {
		d.del = append(d.del, active...)
		st.Active, ready = 0, 0
		terminating += int32(len(active))
	}

	if j.Spec.Suspend != nil && *j.Spec.Suspend {
		stopAll()
		if !isTrue(st, batchv1.JobSuspended) {
			setCondition(st, batchv1.JobSuspended, corev1.ConditionTrue, reasonSuspended, messageSuspended, mnow)
		}
		st.StartTime = nil
		return d
	}
	if c := condition(st, batchv1.JobSuspended); c != nil && c.Status == corev1.ConditionTrue {
		setCondition(st, batchv1.JobSuspended, corev1.ConditionFalse, reasonResumed, messageResumed, mnow)
	}
	if st.StartTime == nil {
		st.StartTime = &mnow
	}

	// Failure: past the back-off limit or the deadline.
	if !isTrue(st, batchv1.JobFailureTarget) {
		limit := int32(6)
		if j.Spec.BackoffLimit != nil {
			limit = *j.Spec.BackoffLimit
		}
		onFailure := j.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
		r := restarts(active)
		maxFailed := j.Spec.MaxFailedIndexes
		switch {
		case failJob != "":
			setCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonPodFailurePolicy, failJob, mnow)
		case st.Failed > limit || onFailure && (limit == 0 && r > 0 || limit > 0 && r >= limit):
			setCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonBackoff, messageBackoff, mnow)
		case perIndex && maxFailed != nil && int32(len(failedIdx)) > *maxFailed:
			setCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonMaxFailedIndexes, messageMaxFailed, mnow)
		case perIndex && len(failedIdx) > 0 && len(failedIdx)+len(done) >= completions:
			setCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonFailedIndexes, messageFailedIndexes, mnow)
		case j.Spec.ActiveDeadlineSeconds != nil:
			deadline := st.StartTime.Add(time.Duration(*j.Spec.ActiveDeadlineSeconds) * time.Second)
			if !now.Before(deadline) {
				setCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonDeadline, messageDeadline, mnow)
			} else {
				d.requeue = deadline.Sub(now)
			}
		}
	}
	if c := condition(st, batchv1.JobFailureTarget); c != nil && c.Status == corev1.ConditionTrue {
		stopAll()
		if terminating == 0 {
			setCondition(st, batchv1.JobFailed, corev1.ConditionTrue, c.Reason, c.Message, mnow)
		}
		return d
	}

	// Success: a successPolicy rule is met, completions pods succeeded, or (a
	// work queue) one did and none run.
	if !isTrue(st, batchv1.JobSuccessCriteriaMet) {
		var complete bool
		if j.Spec.Completions != nil {
			complete = st.Succeeded >= *j.Spec.Completions
		} else {
			complete = st.Succeeded > 0 && len(active) == 0
		}
		if msg, met := successPolicyMet(j.Spec.SuccessPolicy, completions, done); indexed && met {
			setCondition(st, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reasonSuccessPolicy, msg, mnow)
		} else if complete {
			setCondition(st, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reasonCompletions, messageCompletions, mnow)
		}
	}
	if c := condition(st, batchv1.JobSuccessCriteriaMet); c != nil && c.Status == corev1.ConditionTrue {
		stopAll()
		if terminating == 0 {
			setCondition(st, batchv1.JobComplete, corev1.ConditionTrue, c.Reason, c.Message, mnow)
			st.CompletionTime = &mnow
		}
		return d
	}

	parallelism := int32(1)
	if j.Spec.Parallelism != nil {
		parallelism = *j.Spec.Parallelism
	}
	want := parallelism
	if j.Spec.Completions != nil {
		want = min(want, *j.Spec.Completions-st.Succeeded)
	} else if st.Succeeded > 0 {
		want = int32(len(active)) // some succeeded: let the rest finish, start none
	}
	// podReplacementPolicy Failed: a terminating pod is replaced only once it has failed
	occupying := active
	if j.Spec.PodReplacementPolicy != nil && *j.Spec.PodReplacementPolicy == batchv1.Failed {
		occupying = append(append([]*corev1.Pod(nil), active...), terminatingPods...)
	}
	switch n := int32(len(active)); {
	case n > want:
		sort.SliceStable(active, func(a, b int) bool { // not ready and younger go first
			ra, rb := pod.Ready(active[a].Status), pod.Ready(active[b].Status)
			if ra != rb {
				return !ra
			}
			return active[b].CreationTimestamp.Before(&active[a].CreationTimestamp)
		})
		d.del = active[:n-want]
	case int32(len(occupying)) < want:
		n = int32(len(occupying))
		later := func(wait time.Duration) {
			if d.requeue == 0 || wait < d.requeue {
				d.requeue = wait
			}
		}
		if !perIndex { // one back-off for the whole Job
			var last time.Time
			for _, p := range failedPods {
				if t := finishedAt(p); t.After(last) {
					last = t
				}
			}
			if wait := last.Add(backoff(base, st.Failed)).Sub(now); len(failedPods) > 0 && wait > 0 {
				later(wait)
				return d
			}
		}
		d.create = int(want - n)
		if indexed {
			running := map[int]bool{}
			for _, p := range occupying {
				if i, ok := podIndex(p, completions); ok {
					running[i] = true
				}
			}
			for i := 0; i < completions && len(d.indexes) < d.create; i++ {
				if done[i] || running[i] || failedIdx[i] {
					continue
				}
				if perIndex && failures[i] > 0 { // each index backs off on its own failures
					if wait := lastFailure[i].Add(backoff(base, failures[i])).Sub(now); wait > 0 {
						later(wait)
						continue
					}
				}
				d.indexes = append(d.indexes, i)
				if perIndex {
					d.failureCounts = append(d.failureCounts, [2]int32{failures[i], ignored[i]})
				}
			}
			d.create = len(d.indexes)
		}
	}
	return d
}

// annotationCount reads a pod's count annotation (0 when absent or malformed).
func annotationCount(p *corev1.Pod, key string) int32 {
	n, err := strconv.ParseInt(p.Annotations[key], 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int32(n)
}

// podIndex reads a pod's completion index, if valid for completions.
func podIndex(p *corev1.Pod, completions int) (int, bool) {
	i, err := strconv.Atoi(p.Annotations[batchv1.JobCompletionIndexAnnotation])
	return i, err == nil && i >= 0 && i < completions
}

// parseIndexes reads status.completedIndexes ("1,3-5"), keeping indexes below completions.
func parseIndexes(s string, completions int) []int {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := a; i <= b && i < completions; i++ {
			out = append(out, i)
		}
	}
	return out
}

// formatIndexes writes a set of indexes as Kubernetes does: sorted, runs as ranges.
func formatIndexes(set map[int]bool) string {
	var idx []int
	for i := range set {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var parts []string
	for k := 0; k < len(idx); {
		e := k
		for e+1 < len(idx) && idx[e+1] == idx[e]+1 {
			e++
		}
		if e == k {
			parts = append(parts, strconv.Itoa(idx[k]))
		} else {
			parts = append(parts, strconv.Itoa(idx[k])+"-"+strconv.Itoa(idx[e]))
		}
		k = e + 1
	}
	return strings.Join(parts, ",")
}
