package cri

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// containerIDPrefix marks container IDs as containerd's, as the kubelet reports them.
const containerIDPrefix = "containerd://"

// status computes the pod's status from what was last observed.
func (w *worker) status() corev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := pod.StatusInput{Pod: w.pod, SandboxMsg: w.sandboxMsg, StartTime: w.startTime, Now: w.r.o.Now()}
	if len(w.obs.sandboxes) > 0 && w.obs.sandboxes[0].ready {
		in.SandboxReady, in.PodIP = true, w.obs.sandboxes[0].ip
		if w.pod.Spec.HostNetwork {
			in.PodIP = w.pod.Status.HostIP
		}
	}
	initializing := false
	if len(w.pod.Spec.InitContainers) > 0 {
		sbID := ""
		if len(w.obs.sandboxes) > 0 {
			sbID = w.obs.sandboxes[0].id
		}
		next, wait := initStep(w.pod, w.obs, sbID, in.Now, w.notBefore, w.started)
		initializing = next != "" || wait || sbID == ""
	}
	facts := func(c corev1.Container, policy corev1.RestartPolicy) statusFacts {
		return statusFacts{spec: c, policy: policy, obs: w.obs, waiting: w.waiting[c.Name],
			notBefore: w.notBefore[c.Name], now: in.Now, ready: w.ready, started: w.started,
			pod: w.name, namespace: w.namespace, uid: string(w.uid)}
	}
	for _, c := range w.pod.Spec.InitContainers {
		if isSidecar(c) { // ready and started as an app container
			in.InitContainers = append(in.InitContainers, containerStatus(facts(c, corev1.RestartPolicyAlways)))
			continue
		}
		cs := containerStatus(facts(c, initPolicy(w.pod)))
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		in.InitContainers = append(in.InitContainers, cs)
	}
	for _, c := range w.pod.Spec.Containers {
		cs := containerStatus(facts(c, w.pod.Spec.RestartPolicy))
		if initializing && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ContainerCreating" {
			cs.State.Waiting.Reason = "PodInitializing"
		}
		in.Containers = append(in.Containers, cs)
	}
	st := pod.BuildStatus(in)
	if w.evicted != "" {
		evictedStatus(&st, w.evicted)
	}
	return st
}

// statusFacts is what one container's status is computed from.
type statusFacts struct {
	spec                corev1.Container
	policy              corev1.RestartPolicy
	obs                 observed
	waiting             waitReason
	notBefore, now      time.Time
	ready, started      map[string]bool
	pod, namespace, uid string
}

// containerStatus maps the runtime's instances of a container to its API
// status as the kubelet does: the newest instance is the state, the one
// before it (or the newest, while it waits to restart) the last state.
func containerStatus(f statusFacts) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: f.spec.Name, Image: f.spec.Image}
	var insts []instance
	for _, c := range f.obs.containers {
		if c.name == f.spec.Name {
			insts = append(insts, c)
		}
	}
	started := false
	cs.Started = &started
	if len(insts) == 0 {
		reason, msg := "ContainerCreating", ""
		if f.waiting.reason != "" {
			reason, msg = f.waiting.reason, f.waiting.message
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		return cs
	}
	last := insts[0]
	cs.RestartCount = int32(last.attempt)
	cs.ContainerID = containerIDPrefix + last.id
	cs.ImageID = last.imageRef
	if len(insts) > 1 {
		if t := terminated(insts[1]); t != nil {
			cs.LastTerminationState.Terminated = t
		}
	}
	switch last.state {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(0, last.started))}
		cs.Ready = f.ready[last.id]
		started = f.started[last.id]
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		t := terminated(last)
		switch {
		case f.waiting.reason != "":
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: f.waiting.reason, Message: f.waiting.message}
			cs.LastTerminationState.Terminated = t
		case shouldRestart(f.policy, last.exitCode) && f.now.Before(f.notBefore):
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					f.notBefore.Sub(time.Unix(0, last.finished)).Round(time.Second), f.spec.Name, f.pod, f.namespace, f.uid)}
			cs.LastTerminationState.Terminated = t
		default:
			cs.State.Terminated = t
		}
	default:
		reason, msg := "ContainerCreating", ""
		if f.waiting.reason != "" {
			reason, msg = f.waiting.reason, f.waiting.message
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	}
	return cs
}

// terminated is an ended instance's terminated state, nil for one still running.
func terminated(c instance) *corev1.ContainerStateTerminated {
	if c.state != runtimeapi.ContainerState_CONTAINER_EXITED {
		return nil
	}
	reason := c.reason
	if reason == "" {
		reason = "Completed"
		if c.exitCode != 0 {
			reason = "Error"
		}
	}
	return &corev1.ContainerStateTerminated{ExitCode: c.exitCode, Reason: reason, Message: c.message,
		StartedAt: metav1.NewTime(time.Unix(0, c.started)), FinishedAt: metav1.NewTime(time.Unix(0, c.finished)),
		ContainerID: containerIDPrefix + c.id}
}
