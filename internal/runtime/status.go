package runtime

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// snapshot is what the status of a pod is computed from.
type snapshot struct {
	pod          *corev1.Pod // its spec and the status the API has now
	podIP        string
	sandboxReady bool
	sandboxMsg   string
	startTime    time.Time
	containers   []corev1.ContainerStatus
	now          time.Time
}

// status snapshots the worker and computes the pod's status.
func (w *podWorker) status() corev1.PodStatus {
	w.mu.Lock()
	s := snapshot{pod: w.pod, sandboxReady: w.sandboxReady, sandboxMsg: w.sandboxMsg, startTime: w.startTime, now: w.r.o.Now()}
	if w.ip.IsValid() {
		s.podIP = w.ip.String()
	}
	for _, c := range w.containers {
		started := c.started
		s.containers = append(s.containers, corev1.ContainerStatus{Name: c.spec.Name, Image: c.spec.Image, ImageID: "",
			ContainerID: c.id(), State: c.state, LastTerminationState: c.last, RestartCount: c.restarts,
			Ready: c.ready, Started: &started})
	}
	w.mu.Unlock()
	return buildStatus(s)
}

// buildStatus computes phase, conditions and container statuses as the kubelet does.
func buildStatus(s snapshot) corev1.PodStatus {
	p := s.pod
	st := corev1.PodStatus{Phase: phase(p.Spec.RestartPolicy, s.sandboxReady, s.containers), HostIP: p.Status.HostIP,
		HostIPs: p.Status.HostIPs, ContainerStatuses: s.containers, QOSClass: corev1.PodQOSBestEffort,
		StartTime: &metav1.Time{Time: s.startTime.Truncate(time.Second)}}
	if p.Status.StartTime != nil {
		st.StartTime = p.Status.StartTime
	}
	if s.podIP != "" {
		st.PodIP, st.PodIPs = s.podIP, []corev1.PodIP{{IP: s.podIP}}
	}
	var unready []string
	for _, c := range s.containers {
		if !c.Ready {
			unready = append(unready, c.Name)
		}
	}
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		c.LastTransitionTime = metav1.NewTime(s.now.Truncate(time.Second))
		for _, old := range p.Status.Conditions {
			if old.Type == t && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	cond(corev1.PodReadyToStartContainers, s.sandboxReady, "", "")
	cond(corev1.PodInitialized, true, "", "")
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		readyReason, readyMsg = "PodCompleted", ""
	}
	allReady := len(unready) == 0 && st.Phase == corev1.PodRunning
	cond(corev1.ContainersReady, allReady, readyReason, readyMsg)
	cond(corev1.PodReady, allReady, readyReason, readyMsg)
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
	if !s.sandboxReady && s.sandboxMsg != "" && st.Phase == corev1.PodPending {
		st.Message = "pod network: " + s.sandboxMsg
	}
	return st
}

// phase follows the kubelet's getPhase: waiting containers keep a pod Pending,
// running ones make it Running, and when all have stopped the restart policy
// decides between Running (they restart), Succeeded and Failed.
func phase(policy corev1.RestartPolicy, sandboxReady bool, cs []corev1.ContainerStatus) corev1.PodPhase {
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
