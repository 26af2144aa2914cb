package pod

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StatusInput is what the status of a pod is computed from.
type StatusInput struct {
	Pod          *corev1.Pod // its spec and the status the API has now
	PodIP        string
	SandboxReady bool
	SandboxMsg   string
	StartTime    time.Time
	Containers   []corev1.ContainerStatus
	// InitContainers are the statuses of spec.initContainers, in order.
	InitContainers []corev1.ContainerStatus
	Now            time.Time
}

// isSidecar reports whether an init container is a sidecar (restartPolicy Always).
func isSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// initState says how far a pod's init containers are: the names of those
// not completed (sidecars: not started) yet, and whether one failed for good
// (restartPolicy Never; sidecars are restarted whatever the policy).
func initState(p *corev1.Pod, cs []corev1.ContainerStatus) (pending []string, failed bool) {
	policy := p.Spec.RestartPolicy
	sidecar := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		sidecar[c.Name] = isSidecar(c)
	}
	for _, c := range cs {
		if sidecar[c.Name] {
			if c.State.Running == nil || c.Started == nil || !*c.Started {
				pending = append(pending, c.Name)
			}
			continue
		}
		if t := c.State.Terminated; t != nil && t.ExitCode == 0 {
			continue
		}
		pending = append(pending, c.Name)
		if t := c.State.Terminated; t != nil && policy == corev1.RestartPolicyNever {
			failed = true
		}
	}
	return pending, failed
}

// BuildStatus computes phase, conditions and container statuses as the kubelet does.
func BuildStatus(in StatusInput) corev1.PodStatus {
	p := in.Pod
	st := corev1.PodStatus{Phase: Phase(p.Spec.RestartPolicy, in.SandboxReady, in.Containers), HostIP: p.Status.HostIP,
		HostIPs: p.Status.HostIPs, ContainerStatuses: in.Containers, InitContainerStatuses: in.InitContainers,
		QOSClass: corev1.PodQOSBestEffort, StartTime: &metav1.Time{Time: in.StartTime.Truncate(time.Second)}}
	initPending, initFailed := initState(p, in.InitContainers)
	switch {
	case initFailed:
		st.Phase = corev1.PodFailed
	case len(initPending) > 0:
		st.Phase = corev1.PodPending
	}
	if p.Status.StartTime != nil {
		st.StartTime = p.Status.StartTime
	}
	if in.PodIP != "" {
		st.PodIP, st.PodIPs = in.PodIP, []corev1.PodIP{{IP: in.PodIP}}
	}
	var unready []string
	for i, c := range in.InitContainers { // sidecars count as the app containers do
		if i < len(p.Spec.InitContainers) && isSidecar(p.Spec.InitContainers[i]) && !c.Ready {
			unready = append(unready, c.Name)
		}
	}
	for _, c := range in.Containers {
		if !c.Ready {
			unready = append(unready, c.Name)
		}
	}
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		c.LastTransitionTime = metav1.NewTime(in.Now.Truncate(time.Second))
		for _, old := range p.Status.Conditions {
			if old.Type == t && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	cond(corev1.PodReadyToStartContainers, in.SandboxReady, "", "")
	cond(corev1.PodInitialized, len(initPending) == 0, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(initPending, " ")))
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		readyReason, readyMsg = "PodCompleted", ""
	}
	allReady := len(unready) == 0 && st.Phase == corev1.PodRunning
	cond(corev1.ContainersReady, allReady, readyReason, readyMsg)
	if gates := unmetReadinessGates(p); allReady && len(gates) > 0 {
		cond(corev1.PodReady, false, "ReadinessGatesNotReady", strings.Join(gates, ", "))
	} else {
		cond(corev1.PodReady, allReady, readyReason, readyMsg)
	}
	scheduled := false
	for _, old := range p.Status.Conditions {
		if old.Type == corev1.PodScheduled {
			st.Conditions = append(st.Conditions, old)
			scheduled = true
		}
	}
	if !scheduled {
		cond(corev1.PodScheduled, true, "", "")
	}
	st.Conditions = append(st.Conditions, OthersConditions(p.Status.Conditions)...)
	if !in.SandboxReady && in.SandboxMsg != "" && st.Phase == corev1.PodPending {
		st.Message = "pod network: " + in.SandboxMsg
	}
	return st
}

// kubeletConditions are the pod condition types the kubelet owns and writes;
// conditions of other types (readiness gates, DisruptionTarget) belong to
// other writers and are kept as the API has them.
var kubeletConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled: true, corev1.PodReady: true, corev1.PodInitialized: true, corev1.ContainersReady: true,
	corev1.PodReadyToStartContainers: true, corev1.PodResizePending: true, corev1.PodResizeInProgress: true,
}

// OthersConditions returns the conditions in cs that the kubelet does not own.
func OthersConditions(cs []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range cs {
		if !kubeletConditions[c.Type] {
			out = append(out, c)
		}
	}
	return out
}

// OthersChanged says whether the conditions the kubelet does not own differ
// between two versions of a pod (old nil: any such condition counts).
func OthersChanged(old, p *corev1.Pod) bool {
	var before []corev1.PodCondition
	if old != nil {
		before = OthersConditions(old.Status.Conditions)
	}
	return !apiequality.Semantic.DeepEqual(before, OthersConditions(p.Status.Conditions))
}

// unmetReadinessGates explains each of the pod's readiness gates whose
// condition is not True, in the kubelet's words; a pod is Ready only when its
// containers are and every gate's condition is True.
func unmetReadinessGates(p *corev1.Pod) []string {
	var out []string
	for _, g := range p.Spec.ReadinessGates {
		var c *corev1.PodCondition
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == g.ConditionType {
				c = &p.Status.Conditions[i]
			}
		}
		switch {
		case c == nil:
			out = append(out, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(g.ConditionType)))
		case c.Status != corev1.ConditionTrue:
			out = append(out, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(g.ConditionType), c.Status))
		}
	}
	return out
}

// Phase follows the kubelet's getPhase: waiting containers keep a pod Pending,
// running ones make it Running, and when all have stopped the restart policy
// decides between Running (they restart), Succeeded and Failed.
func Phase(policy corev1.RestartPolicy, sandboxReady bool, cs []corev1.ContainerStatus) corev1.PodPhase {
	var running, waiting, stopped, succeeded int
	for _, c := range cs {
		switch {
		case c.State.Running != nil:
			running++
		case c.State.Terminated != nil:
			stopped++
			if c.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case c.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped == len(cs) && len(cs) > 0:
		switch {
		case policy == corev1.RestartPolicyAlways || policy == "":
			return corev1.PodRunning
		case succeeded == len(cs):
			return corev1.PodSucceeded
		case policy == corev1.RestartPolicyOnFailure:
			return corev1.PodRunning
		default:
			return corev1.PodFailed
		}
	}
	return corev1.PodPending
}
