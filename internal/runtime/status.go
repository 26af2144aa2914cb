package runtime

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// status snapshots the worker and computes the pod's status.
func (w *podWorker) status() corev1.PodStatus {
	w.mu.Lock()
	in := pod.StatusInput{Pod: w.pod, SandboxReady: w.sandboxReady, SandboxMsg: w.sandboxMsg, StartTime: w.startTime, Now: w.r.o.Now()}
	if w.ip.IsValid() {
		in.PodIP = w.ip.String()
	}
	for _, c := range w.inits {
		started := c.started
		t := c.state.Terminated
		in.InitContainers = append(in.InitContainers, corev1.ContainerStatus{Name: c.spec.Name, Image: c.spec.Image,
			ContainerID: c.id(), State: c.state, LastTerminationState: c.last, RestartCount: c.restarts,
			Ready: t != nil && t.ExitCode == 0, Started: &started})
	}
	for _, c := range w.containers {
		started := c.started
		in.Containers = append(in.Containers, corev1.ContainerStatus{Name: c.spec.Name, Image: c.spec.Image, ImageID: "",
			ContainerID: c.id(), State: c.state, LastTerminationState: c.last, RestartCount: c.restarts,
			Ready: c.ready, Started: &started})
	}
	w.mu.Unlock()
	return pod.BuildStatus(in)
}
