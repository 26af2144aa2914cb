package job

import (
	"fmt"
	"slices"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Reasons and messages of the conditions the policies set, in Kubernetes' words.
const (
	reasonPodFailurePolicy = batchv1.JobReasonPodFailurePolicy
	reasonFailedIndexes    = batchv1.JobReasonFailedIndexes
	messageFailedIndexes   = "Job has failed indexes"
	reasonMaxFailedIndexes = batchv1.JobReasonMaxFailedIndexesExceeded
	messageMaxFailed       = "Job has exceeded the specified maximal number of failed indexes"
	reasonSuccessPolicy    = batchv1.JobReasonSuccessPolicy
)

// failureAction is what a Job's podFailurePolicy makes of a failed pod: the
// matching rule's action (Count when none matches) and, for FailJob, the
// message of the Job's failure.
func failureAction(pfp *batchv1.PodFailurePolicy, p *corev1.Pod) (batchv1.PodFailurePolicyAction, string) {
	if pfp == nil {
		return batchv1.PodFailurePolicyActionCount, ""
	}
	for i, r := range pfp.Rules {
		if r.OnExitCodes != nil {
			if c := exitCodeMatch(r.OnExitCodes, p); c != nil {
				return r.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
					c.Name, p.Namespace, p.Name, c.State.Terminated.ExitCode, r.Action, i)
			}
			continue
		}
		for _, c := range p.Status.Conditions {
			for _, pat := range r.OnPodConditions {
				if c.Type == pat.Type && c.Status == pat.Status {
					return r.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d", p.Namespace, p.Name, c.Type, r.Action, i)
				}
			}
		}
	}
	return batchv1.PodFailurePolicyActionCount, ""
}

// exitCodeMatch is the first terminated container of p (app containers, then
// init containers) whose non-zero exit code the requirement matches.
func exitCodeMatch(req *batchv1.PodFailurePolicyOnExitCodesRequirement, p *corev1.Pod) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			term := cs.State.Terminated
			if term == nil || term.ExitCode == 0 || req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			in := slices.Contains(req.Values, term.ExitCode)
			if in == (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) {
				return cs
			}
		}
	}
	return nil
}

// successPolicyMet reports whether the succeeded indexes meet a rule of the
// Job's successPolicy, with the SuccessCriteriaMet message Kubernetes writes.
func successPolicyMet(sp *batchv1.SuccessPolicy, completions int, done map[int]bool) (string, bool) {
	if sp == nil {
		return "", false
	}
	for i, r := range sp.Rules {
		matched := len(done)
		if r.SucceededIndexes != nil {
			want := parseIndexes(*r.SucceededIndexes, completions)
			if len(want) == 0 {
				continue // unreadable or out of range: the rule never matches
			}
			matched = 0
			for _, x := range want {
				if done[x] {
					matched++
				}
			}
			if r.SucceededCount == nil && matched == len(want) {
				return "Matched rules at index " + strconv.Itoa(i), true
			}
		}
		if r.SucceededCount != nil && len(done) > 0 && matched >= int(*r.SucceededCount) {
			return "Matched rules at index " + strconv.Itoa(i), true
		}
	}
	return "", false
}
