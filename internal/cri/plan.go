package cri

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandbox is what the runtime reports of one pod sandbox.
type sandbox struct {
	id      string
	attempt uint32
	ready   bool
	created int64
	ip      string
}

// instance is what the runtime reports of one container instance.
type instance struct {
	id                string
	name              string
	attempt           uint32
	state             runtimeapi.ContainerState
	created           int64
	started, finished int64
	exitCode          int32
	reason, message   string
	image, imageRef   string
	hash              string // of the spec it was started with
	sandboxID         string
	statusKnown       bool // ContainerStatus was read
}

// observed is a pod's sandboxes and containers, newest first.
type observed struct {
	sandboxes  []sandbox
	containers []instance
}

func (o *observed) sort() {
	sort.Slice(o.sandboxes, func(i, j int) bool { return o.sandboxes[i].created > o.sandboxes[j].created })
	sort.Slice(o.containers, func(i, j int) bool {
		if o.containers[i].attempt != o.containers[j].attempt {
			return o.containers[i].attempt > o.containers[j].attempt
		}
		return o.containers[i].created > o.containers[j].created
	})
}

// latest is the newest instance of container name, or nil.
func (o *observed) latest(name string) *instance {
	for i := range o.containers {
		if o.containers[i].name == name {
			return &o.containers[i]
		}
	}
	return nil
}

// actions is what one sync of a pod does, in this order.
type actions struct {
	killPod         bool     // stop every container and sandbox (a new sandbox follows if createSandbox)
	createSandbox   bool     // run a new sandbox with sandboxAttempt
	sandboxAttempt  uint32   //
	kill            []string // container instances to stop (liveness failed)
	start           []string // container names to start, in spec order
	remove          []string // ended instances no longer needed (current and previous kept per name)
	removeSandboxes []string // stopped sandboxes older than the current one
}

// planInput is the state a plan is computed from.
type planInput struct {
	pod       *corev1.Pod
	obs       observed
	unhealthy map[string]bool      // instance ids whose liveness or startup probe failed
	started   map[string]bool      // instance ids that have started (startup probe passed, or none)
	notBefore map[string]time.Time // container name -> restart back-off end
	now       time.Time
}

// shouldRestart says whether an ended container runs again under policy.
func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// plan computes a pod's next actions as the kubelet's computePodActions does:
// a missing or dead sandbox means a new sandbox and a fresh start of every
// container that should run; otherwise ended containers restart as the
// restart policy and back-off allow, and unhealthy ones are stopped.
func plan(in planInput) actions {
	p, obs := in.pod, in.obs
	var a actions
	for i := 1; i < len(obs.sandboxes); i++ {
		if !obs.sandboxes[i].ready {
			a.removeSandboxes = append(a.removeSandboxes, obs.sandboxes[i].id)
		}
	}
	finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	done := finished || (len(obs.containers) > 0 && allDone(p, obs)) // a finished pod never runs again
	if len(obs.sandboxes) == 0 {
		if !done {
			a.createSandbox = true
			a.start = toStart(p, obs)
		}
		return a
	}
	if failed := initFailed(p, obs); failed { // init failed under restartPolicy Never: the pod has failed
		a.killPod = obs.sandboxes[0].ready
		return a
	}
	sb := obs.sandboxes[0]
	if done { // a finished pod keeps its containers (status, logs) but not its sandbox (IP)
		a.killPod = sb.ready
		return a
	}
	if !sb.ready || (sb.ip == "" && !p.Spec.HostNetwork) {
		a.killPod = true
		if p.Spec.RestartPolicy == corev1.RestartPolicyNever && len(obs.containers) > 0 {
			return a // as the kubelet: a pod that never restarts gets no second sandbox
		}
		a.createSandbox, a.sandboxAttempt = true, sb.attempt+1
		a.start = toStart(p, obs)
		return a
	}
	if next, wait := initStep(p, obs, sb.id, in.now, in.notBefore, in.started); next != "" || wait {
		if next != "" {
			a.start = []string{next}
		}
		a.remove = oldInstances(obs)
		return a
	}
	// sidecars (started during init) keep running beside the app containers
	for _, c := range append(sidecars(p), p.Spec.Containers...) {
		policy := p.Spec.RestartPolicy
		if isSidecar(c) {
			policy = corev1.RestartPolicyAlways
		}
		last := obs.latest(c.Name)
		switch {
		case last == nil:
			a.start = append(a.start, c.Name)
		case last.state == runtimeapi.ContainerState_CONTAINER_RUNNING:
			if in.unhealthy[last.id] || (last.hash != "" && last.hash != specHash(c)) { // failed its probe, or its spec changed
				a.kill = append(a.kill, last.id)
			}
		case last.state == runtimeapi.ContainerState_CONTAINER_EXITED:
			if last.statusKnown && shouldRestart(policy, last.exitCode) && !in.now.Before(in.notBefore[c.Name]) {
				a.start = append(a.start, c.Name)
			}
		case last.state == runtimeapi.ContainerState_CONTAINER_CREATED:
			// created but not started (a start failed half-way): start it over
			a.start = append(a.start, c.Name)
		}
	}
	a.remove = oldInstances(obs)
	return a
}

// toStart are the containers a new sandbox starts: the first init container
// (init containers run again in a new sandbox), else all containers but those
// that ended for good under the restart policy.
func toStart(p *corev1.Pod, obs observed) []string {
	if len(p.Spec.InitContainers) > 0 {
		return []string{p.Spec.InitContainers[0].Name}
	}
	var out []string
	for _, c := range p.Spec.Containers {
		last := obs.latest(c.Name)
		if last == nil || last.state != runtimeapi.ContainerState_CONTAINER_EXITED || shouldRestart(p.Spec.RestartPolicy, last.exitCode) {
			out = append(out, c.Name)
		}
	}
	return out
}

// initPolicy is how init containers restart: on failure, unless the pod never restarts.
func initPolicy(p *corev1.Pod) corev1.RestartPolicy {
	if p.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.RestartPolicyNever
	}
	return corev1.RestartPolicyOnFailure
}

// latestIn is the newest instance of container name in sandbox sbID.
func (o *observed) latestIn(name, sbID string) *instance {
	for i := range o.containers {
		if c := &o.containers[i]; c.name == name && c.sandboxID == sbID {
			return c
		}
	}
	return nil
}

// isSidecar reports whether an init container is a sidecar (restartPolicy
// Always): started in its turn among the init containers, it keeps running
// beside the app containers, is restarted whenever it ends, and does not keep
// the pod from completing.
func isSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// sidecars are the pod's sidecar init containers, in order.
func sidecars(p *corev1.Pod) []corev1.Container {
	var out []corev1.Container
	for _, c := range p.Spec.InitContainers {
		if isSidecar(c) {
			out = append(out, c)
		}
	}
	return out
}

// initStep is what the init containers need in sandbox sbID, run one at a
// time in order: the one to start next, or wait (one runs, or waits out its
// back-off); neither means all have completed. A sidecar lets the next one
// start once it has started (its startup probe passed, or it has none); one
// that ended is restarted in its place.
func initStep(p *corev1.Pod, obs observed, sbID string, now time.Time, notBefore map[string]time.Time, started map[string]bool) (next string, wait bool) {
	for _, c := range p.Spec.InitContainers {
		last := obs.latestIn(c.Name, sbID)
		if isSidecar(c) && last != nil {
			switch {
			case last.state == runtimeapi.ContainerState_CONTAINER_RUNNING && started[last.id]:
				continue
			case last.state != runtimeapi.ContainerState_CONTAINER_EXITED || !last.statusKnown:
				return "", true
			case now.Before(notBefore[c.Name]):
				return "", true
			default:
				return c.Name, false
			}
		}
		switch {
		case last == nil:
			return c.Name, false
		case last.state != runtimeapi.ContainerState_CONTAINER_EXITED || !last.statusKnown:
			return "", true
		case last.exitCode == 0:
			continue
		case now.Before(notBefore[c.Name]):
			return "", true
		default:
			return c.Name, false
		}
	}
	return "", false
}

// initFailed reports whether an init container failed under restartPolicy
// Never in the current sandbox (the pod has then failed).
func initFailed(p *corev1.Pod, obs observed) bool {
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever || len(obs.sandboxes) == 0 {
		return false
	}
	for _, c := range p.Spec.InitContainers {
		if isSidecar(c) {
			continue // restarted whatever the pod's policy
		}
		if last := obs.latestIn(c.Name, obs.sandboxes[0].id); last != nil && last.state == runtimeapi.ContainerState_CONTAINER_EXITED &&
			last.statusKnown && last.exitCode != 0 {
			return true
		}
	}
	return false
}

// allDone reports whether every container has ended for good under the
// restart policy, so the pod has finished and gets no new sandbox.
func allDone(p *corev1.Pod, obs observed) bool {
	if p.Spec.RestartPolicy == corev1.RestartPolicyAlways || p.Spec.RestartPolicy == "" {
		return false
	}
	for _, c := range p.Spec.Containers {
		last := obs.latest(c.Name)
		if last == nil || last.state != runtimeapi.ContainerState_CONTAINER_EXITED || shouldRestart(p.Spec.RestartPolicy, last.exitCode) {
			return false
		}
	}
	return true
}

// oldInstances are ended instances beyond the two newest of each name (the
// current and the previous one stay for `kubectl logs --previous`), and
// created-but-never-started instances that a newer one replaced.
func oldInstances(obs observed) []string {
	seen := map[string]int{}
	var out []string
	for _, c := range obs.containers {
		seen[c.name]++
		if (seen[c.name] > 2 && c.state == runtimeapi.ContainerState_CONTAINER_EXITED) ||
			(seen[c.name] > 1 && c.state == runtimeapi.ContainerState_CONTAINER_CREATED) { // a start that failed half-way
			out = append(out, c.id)
		}
	}
	return out
}
