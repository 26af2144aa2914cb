package cri

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	created = runtimeapi.ContainerState_CONTAINER_CREATED
)

func testPod(policy corev1.RestartPolicy, names ...string) *corev1.Pod {
	p := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy}}
	p.Name, p.Namespace, p.UID = "web", "default", "uid-1"
	for _, n := range names {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "httpd"})
	}
	return p
}

// planCase is one pod state and the actions a sync takes from it.
type planCase struct {
	name      string
	pod       *corev1.Pod
	obs       observed
	unhealthy map[string]bool
	started   map[string]bool
	notBefore map[string]time.Time
	want      actions
}

func TestPlan(t *testing.T) {
	now := time.Unix(1000, 0)
	readySB := []sandbox{{id: "sb1", ready: true, ip: "10.244.0.5", created: 2}}
	deadSB := []sandbox{{id: "sb1", attempt: 0, ready: false, created: 2}}
	ended := func(name string, code int32, attempt uint32) instance {
		return instance{id: name + "-" + string(rune('0'+attempt)), name: name, attempt: attempt, state: exited, exitCode: code, statusKnown: true}
	}
	tests := []planCase{
		{name: "new pod: sandbox and every container",
			pod: testPod(corev1.RestartPolicyAlways, "a", "b"), want: actions{createSandbox: true, start: []string{"a", "b"}}},
		{name: "running pod: nothing",
			pod: testPod(corev1.RestartPolicyAlways, "a"),
			obs: observed{sandboxes: readySB, containers: []instance{{id: "a0", name: "a", state: running}}}},
		{name: "crashed container restarts (Always)",
			pod:  testPod(corev1.RestartPolicyAlways, "a"),
			obs:  observed{sandboxes: readySB, containers: []instance{ended("a", 1, 0)}},
			want: actions{start: []string{"a"}}},
		{name: "crashed container waits out its back-off",
			pod:       testPod(corev1.RestartPolicyAlways, "a"),
			obs:       observed{sandboxes: readySB, containers: []instance{ended("a", 1, 0)}},
			notBefore: map[string]time.Time{"a": now.Add(10 * time.Second)}},
		{name: "exit without status read yet: wait",
			pod: testPod(corev1.RestartPolicyAlways, "a"),
			obs: observed{sandboxes: readySB, containers: []instance{{id: "a0", name: "a", state: exited}}}},
		{name: "OnFailure: success stays, failure restarts",
			pod:  testPod(corev1.RestartPolicyOnFailure, "ok", "bad"),
			obs:  observed{sandboxes: readySB, containers: []instance{ended("ok", 0, 0), ended("bad", 2, 0)}},
			want: actions{start: []string{"bad"}}},
		{name: "Never: finished pod releases its sandbox",
			pod:  testPod(corev1.RestartPolicyNever, "a"),
			obs:  observed{sandboxes: readySB, containers: []instance{ended("a", 1, 0)}},
			want: actions{killPod: true}},
		{name: "Never: finished pod with its sandbox stopped: nothing",
			pod: testPod(corev1.RestartPolicyNever, "a"),
			obs: observed{sandboxes: deadSB, containers: []instance{ended("a", 0, 0)}}},
		{name: "dead sandbox: a new one, containers started again with the next attempt",
			pod:  testPod(corev1.RestartPolicyAlways, "a"),
			obs:  observed{sandboxes: deadSB, containers: []instance{{id: "a0", name: "a", state: running}}},
			want: actions{killPod: true, createSandbox: true, sandboxAttempt: 1, start: []string{"a"}}},
		{name: "sandbox without IP is replaced",
			pod:  testPod(corev1.RestartPolicyAlways, "a"),
			obs:  observed{sandboxes: []sandbox{{id: "sb1", ready: true}}},
			want: actions{killPod: true, createSandbox: true, sandboxAttempt: 1, start: []string{"a"}}},
		{name: "liveness failure kills the instance",
			pod:       testPod(corev1.RestartPolicyAlways, "a"),
			obs:       observed{sandboxes: readySB, containers: []instance{{id: "a0", name: "a", state: running}}},
			unhealthy: map[string]bool{"a0": true},
			want:      actions{kill: []string{"a0"}}},
		{name: "created but never started: start over",
			pod:  testPod(corev1.RestartPolicyAlways, "a"),
			obs:  observed{sandboxes: readySB, containers: []instance{{id: "a0", name: "a", state: created}}},
			want: actions{start: []string{"a"}}},
		{name: "Never: a dead sandbox is not replaced",
			pod:  testPod(corev1.RestartPolicyNever, "a"),
			obs:  observed{sandboxes: deadSB, containers: []instance{{id: "a0", name: "a", state: running}}},
			want: actions{killPod: true}},
		{name: "a running container whose spec changed is replaced",
			pod: func() *corev1.Pod {
				p := testPod(corev1.RestartPolicyAlways, "a")
				p.Spec.Containers[0].Image = "httpd:2.4"
				return p
			}(),
			obs:  observed{sandboxes: readySB, containers: []instance{{id: "a0", name: "a", state: running, hash: specHash(testPod(corev1.RestartPolicyAlways, "a").Spec.Containers[0])}}},
			want: actions{kill: []string{"a0"}}},
		{name: "a running container with its spec unchanged stays",
			pod: testPod(corev1.RestartPolicyAlways, "a"),
			obs: observed{sandboxes: readySB, containers: []instance{{id: "a0", name: "a", state: running, hash: specHash(testPod(corev1.RestartPolicyAlways, "a").Spec.Containers[0])}}}},
		{name: "a pod the API says has finished never runs again",
			pod: func() *corev1.Pod {
				p := testPod(corev1.RestartPolicyAlways, "a")
				p.Status.Phase = corev1.PodSucceeded
				return p
			}()},
		{name: "a created instance replaced by a newer one is removed",
			pod:  testPod(corev1.RestartPolicyAlways, "a"),
			obs:  observed{sandboxes: readySB, containers: []instance{{id: "a1", name: "a", attempt: 1, state: running}, {id: "a0", name: "a", state: created}}},
			want: actions{remove: []string{"a0"}}},
		{name: "old instances and stopped sandboxes are removed",
			pod: testPod(corev1.RestartPolicyAlways, "a"),
			obs: observed{sandboxes: append(append([]sandbox{}, readySB...), sandbox{id: "old", ready: false, created: 1}),
				containers: []instance{{id: "a3", name: "a", attempt: 3, state: running}, ended("a", 1, 2), ended("a", 1, 1), ended("a", 1, 0)}},
			want: actions{remove: []string{"a-1", "a-0"}, removeSandboxes: []string{"old"}}},
	}
	withInit := func(policy corev1.RestartPolicy) *corev1.Pod {
		p := testPod(policy, "app")
		p.Spec.InitContainers = []corev1.Container{{Name: "init1"}, {Name: "init2"}}
		return p
	}
	inSB := func(in instance) instance { in.sandboxID = "sb1"; return in }
	tests = append(tests, []planCase{
		{name: "init: a new sandbox starts the first init container only",
			pod: withInit(corev1.RestartPolicyAlways), want: actions{createSandbox: true, start: []string{"init1"}}},
		{name: "init: the next one after the first completed",
			pod:  withInit(corev1.RestartPolicyAlways),
			obs:  observed{sandboxes: readySB, containers: []instance{inSB(ended("init1", 0, 0))}},
			want: actions{start: []string{"init2"}}},
		{name: "init: wait while one runs",
			pod: withInit(corev1.RestartPolicyAlways),
			obs: observed{sandboxes: readySB, containers: []instance{inSB(ended("init1", 0, 0)), inSB(instance{id: "i2", name: "init2", state: running})}}},
		{name: "init: all done, the app starts",
			pod:  withInit(corev1.RestartPolicyAlways),
			obs:  observed{sandboxes: readySB, containers: []instance{inSB(ended("init1", 0, 0)), inSB(ended("init2", 0, 0))}},
			want: actions{start: []string{"app"}}},
		{name: "init: a failed one restarts (Always)",
			pod:  withInit(corev1.RestartPolicyAlways),
			obs:  observed{sandboxes: readySB, containers: []instance{inSB(ended("init1", 1, 0))}},
			want: actions{start: []string{"init1"}}},
		{name: "init: a failed one fails the pod (Never)",
			pod:  withInit(corev1.RestartPolicyNever),
			obs:  observed{sandboxes: readySB, containers: []instance{inSB(ended("init1", 1, 0))}},
			want: actions{killPod: true}},
		{name: "init: completed in an old sandbox runs again in a new one",
			pod:  withInit(corev1.RestartPolicyAlways),
			obs:  observed{sandboxes: readySB, containers: []instance{ended("init1", 0, 0)}},
			want: actions{start: []string{"init1"}}},
	}...)
	// sidecar: init1 has restartPolicy Always (kubelet semantics)
	withSidecar := func(policy corev1.RestartPolicy) *corev1.Pod {
		p := withInit(policy)
		always := corev1.ContainerRestartPolicyAlways
		p.Spec.InitContainers[0].RestartPolicy = &always
		return p
	}
	side := func(state runtimeapi.ContainerState) instance {
		return inSB(instance{id: "s0", name: "init1", state: state, statusKnown: true})
	}
	tests = append(tests, []planCase{
		{name: "sidecar: the next init container waits until it has started",
			pod: withSidecar(corev1.RestartPolicyAlways), obs: observed{sandboxes: readySB, containers: []instance{side(running)}}},
		{name: "sidecar: started, the next init container starts beside it",
			pod: withSidecar(corev1.RestartPolicyAlways), obs: observed{sandboxes: readySB, containers: []instance{side(running)}},
			started: map[string]bool{"s0": true}, want: actions{start: []string{"init2"}}},
		{name: "sidecar: it keeps running while the app starts",
			pod: withSidecar(corev1.RestartPolicyNever), obs: observed{sandboxes: readySB, containers: []instance{side(running), inSB(ended("init2", 0, 0))}},
			started: map[string]bool{"s0": true}, want: actions{start: []string{"app"}}},
		{name: "sidecar: ended during init, restarted (even under Never)",
			pod: withSidecar(corev1.RestartPolicyNever), obs: observed{sandboxes: readySB, containers: []instance{inSB(ended("init1", 0, 0))}},
			want: actions{start: []string{"init1"}}},
		{name: "sidecar: ended beside the app, restarted after its back-off",
			pod: withSidecar(corev1.RestartPolicyOnFailure),
			obs: observed{sandboxes: readySB, containers: []instance{inSB(ended("init1", 1, 0)), inSB(ended("init2", 0, 0)),
				inSB(instance{id: "app0", name: "app", state: running})}},
			want: actions{start: []string{"init1"}}},
		{name: "sidecar: failed its liveness probe beside the app, killed",
			pod: withSidecar(corev1.RestartPolicyAlways),
			obs: observed{sandboxes: readySB, containers: []instance{side(running), inSB(ended("init2", 0, 0)),
				inSB(instance{id: "app0", name: "app", state: running})}},
			started: map[string]bool{"s0": true}, unhealthy: map[string]bool{"s0": true}, want: actions{kill: []string{"s0"}}},
		{name: "sidecar: does not keep the pod from completing",
			pod:     withSidecar(corev1.RestartPolicyNever),
			obs:     observed{sandboxes: readySB, containers: []instance{side(running), inSB(ended("init2", 0, 0)), inSB(ended("app", 0, 0))}},
			started: map[string]bool{"s0": true}, want: actions{killPod: true}},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.obs.sort()
			got := plan(planInput{pod: tt.pod, obs: tt.obs, unhealthy: tt.unhealthy, started: tt.started, notBefore: tt.notBefore, now: now})
			if got.killPod != tt.want.killPod || got.createSandbox != tt.want.createSandbox || got.sandboxAttempt != tt.want.sandboxAttempt ||
				!slices.Equal(got.start, tt.want.start) || !slices.Equal(got.kill, tt.want.kill) || !slices.Equal(got.remove, tt.want.remove) ||
				!slices.Equal(got.removeSandboxes, tt.want.removeSandboxes) {
				t.Errorf("plan = %+v, want %+v", got, tt.want)
			}
		})
	}
}
