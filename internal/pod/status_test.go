package pod

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPhase(t *testing.T) {
	running := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	waiting := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	ok := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}
	failed := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}
	backoff := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}
	for _, tc := range []struct {
		name   string
		policy corev1.RestartPolicy
		cs     []corev1.ContainerStatus
		want   corev1.PodPhase
	}{
		{"creating", corev1.RestartPolicyAlways, []corev1.ContainerStatus{waiting}, corev1.PodPending},
		{"one waiting keeps pending", corev1.RestartPolicyAlways, []corev1.ContainerStatus{running, waiting}, corev1.PodPending},
		{"running", corev1.RestartPolicyAlways, []corev1.ContainerStatus{running}, corev1.PodRunning},
		{"crash loop is running", corev1.RestartPolicyAlways, []corev1.ContainerStatus{backoff}, corev1.PodRunning},
		{"never, all ok", corev1.RestartPolicyNever, []corev1.ContainerStatus{ok, ok}, corev1.PodSucceeded},
		{"never, one failed", corev1.RestartPolicyNever, []corev1.ContainerStatus{ok, failed}, corev1.PodFailed},
		{"on failure, failed restarts", corev1.RestartPolicyOnFailure, []corev1.ContainerStatus{failed}, corev1.PodRunning},
		{"on failure, all ok", corev1.RestartPolicyOnFailure, []corev1.ContainerStatus{ok}, corev1.PodSucceeded},
		{"always, exited", corev1.RestartPolicyAlways, []corev1.ContainerStatus{ok}, corev1.PodRunning},
	} {
		if got := Phase(tc.policy, true, tc.cs); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBuildStatusConditions(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	p := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: earlier},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: earlier},
	}}}
	cs := []corev1.ContainerStatus{
		{Name: "a", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		{Name: "b", Ready: false, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
	}
	st := BuildStatus(StatusInput{Pod: p, PodIP: "10.244.0.5", SandboxReady: true, Containers: cs, Now: now, StartTime: now})
	cond := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range st.Conditions {
		cond[c.Type] = c
	}
	if st.Phase != corev1.PodRunning || st.PodIP != "10.244.0.5" || len(st.PodIPs) != 1 {
		t.Errorf("phase %s podIP %s podIPs %v", st.Phase, st.PodIP, st.PodIPs)
	}
	r := cond[corev1.PodReady]
	if r.Status != corev1.ConditionFalse || r.Reason != "ContainersNotReady" || r.Message != "containers with unready status: [b]" || !r.LastTransitionTime.Equal(&earlier) {
		t.Errorf("Ready condition %+v: want False/ContainersNotReady for [b], transition time kept", r)
	}
	if s := cond[corev1.PodScheduled]; !s.LastTransitionTime.Equal(&earlier) {
		t.Errorf("PodScheduled not carried over: %+v", s)
	}
	cs[1].Ready = true
	st = BuildStatus(StatusInput{Pod: p, PodIP: "10.244.0.5", SandboxReady: true, Containers: cs, Now: now, StartTime: now})
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady && (c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(now)) {
			t.Errorf("Ready after both containers ready: %+v", c)
		}
	}
}

func TestBuildStatusReadinessGates(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	running := []corev1.ContainerStatus{{Name: "a", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	gate := corev1.PodConditionType("k8s.io/blue-green")
	other := corev1.PodCondition{Type: "example.com/other", Status: corev1.ConditionTrue}
	for _, tc := range []struct {
		name       string
		gates      []corev1.PodReadinessGate
		conditions []corev1.PodCondition
		want       corev1.ConditionStatus
		reason     string
		message    string
	}{
		{name: "no gates", want: corev1.ConditionTrue},
		{name: "gate condition missing", gates: []corev1.PodReadinessGate{{ConditionType: gate}},
			want: corev1.ConditionFalse, reason: "ReadinessGatesNotReady",
			message: `corresponding condition of pod readiness gate "k8s.io/blue-green" does not exist.`},
		{name: "gate False", gates: []corev1.PodReadinessGate{{ConditionType: gate}},
			conditions: []corev1.PodCondition{{Type: gate, Status: corev1.ConditionFalse}},
			want:       corev1.ConditionFalse, reason: "ReadinessGatesNotReady",
			message: `the status of pod readiness gate "k8s.io/blue-green" is not "True", but False`},
		{name: "gate True", gates: []corev1.PodReadinessGate{{ConditionType: gate}},
			conditions: []corev1.PodCondition{{Type: gate, Status: corev1.ConditionTrue}}, want: corev1.ConditionTrue},
		{name: "one of two gates", gates: []corev1.PodReadinessGate{{ConditionType: gate}, {ConditionType: other.Type}},
			conditions: []corev1.PodCondition{{Type: gate, Status: corev1.ConditionTrue}},
			want:       corev1.ConditionFalse, reason: "ReadinessGatesNotReady",
			message: `corresponding condition of pod readiness gate "example.com/other" does not exist.`},
		{name: "ungated condition is kept, no effect", conditions: []corev1.PodCondition{other}, want: corev1.ConditionTrue},
	} {
		p := &corev1.Pod{Spec: corev1.PodSpec{ReadinessGates: tc.gates}, Status: corev1.PodStatus{Conditions: tc.conditions}}
		st := BuildStatus(StatusInput{Pod: p, SandboxReady: true, Containers: running, Now: now, StartTime: now})
		got := map[corev1.PodConditionType]corev1.PodCondition{}
		for _, c := range st.Conditions {
			got[c.Type] = c
		}
		if r := got[corev1.PodReady]; r.Status != tc.want || r.Reason != tc.reason || r.Message != tc.message {
			t.Errorf("%s: Ready %s/%s/%q, want %s/%s/%q", tc.name, r.Status, r.Reason, r.Message, tc.want, tc.reason, tc.message)
		}
		if c := got[corev1.ContainersReady]; c.Status != corev1.ConditionTrue {
			t.Errorf("%s: ContainersReady %s, want True (gates do not count there)", tc.name, c.Status)
		}
		for _, c := range tc.conditions {
			if got[c.Type].Status != c.Status {
				t.Errorf("%s: condition %s not kept as the API has it: %+v", tc.name, c.Type, got[c.Type])
			}
		}
	}
}

func TestOthersChanged(t *testing.T) {
	gate := corev1.PodCondition{Type: "k8s.io/blue-green", Status: corev1.ConditionTrue}
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	withConds := func(cs ...corev1.PodCondition) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Conditions: cs}}
	}
	unset := gate
	unset.Status = corev1.ConditionFalse
	for _, tc := range []struct {
		name     string
		old, new *corev1.Pod
		want     bool
	}{
		{"kubelet's own condition", withConds(), withConds(ready), false},
		{"gate set", withConds(ready), withConds(ready, gate), true},
		{"gate flipped", withConds(gate), withConds(unset), true},
		{"first sight, no others", nil, withConds(ready), false},
		{"first sight with a gate", nil, withConds(gate), true},
	} {
		if got := OthersChanged(tc.old, tc.new); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBuildStatusSidecars(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	always := corev1.ContainerRestartPolicyAlways
	p := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{{Name: "side", RestartPolicy: &always}, {Name: "init"}}}}
	yes, no := true, false
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	failed := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	app := []corev1.ContainerStatus{{Name: "app", Ready: true, State: running}}
	for _, tc := range []struct {
		name        string
		init        []corev1.ContainerStatus
		phase       corev1.PodPhase
		initialized bool
		ready       bool
	}{
		{"sidecar running, not started yet", []corev1.ContainerStatus{{Name: "side", State: running, Started: &no}, {Name: "init", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
			corev1.PodPending, false, false},
		{"sidecar started and ready, init done", []corev1.ContainerStatus{{Name: "side", State: running, Started: &yes, Ready: true}, {Name: "init", State: done}},
			corev1.PodRunning, true, true},
		{"sidecar started but not ready: pod not ready", []corev1.ContainerStatus{{Name: "side", State: running, Started: &yes}, {Name: "init", State: done}},
			corev1.PodRunning, true, false},
		{"sidecar ended under Never: restarted, the pod has not failed", []corev1.ContainerStatus{{Name: "side", State: failed, Started: &no}, {Name: "init", State: done}},
			corev1.PodRunning, false, false},
	} {
		st := BuildStatus(StatusInput{Pod: p, PodIP: "10.244.0.5", SandboxReady: true, Containers: app, InitContainers: tc.init, Now: now, StartTime: now})
		cond := map[corev1.PodConditionType]bool{}
		for _, c := range st.Conditions {
			cond[c.Type] = c.Status == corev1.ConditionTrue
		}
		if st.Phase != tc.phase && !(tc.phase == corev1.PodRunning && !tc.initialized && st.Phase == corev1.PodPending) {
			t.Errorf("%s: phase %s, want %s", tc.name, st.Phase, tc.phase)
		}
		if cond[corev1.PodInitialized] != tc.initialized || cond[corev1.PodReady] != tc.ready {
			t.Errorf("%s: Initialized %v Ready %v, want %v %v", tc.name, cond[corev1.PodInitialized], cond[corev1.PodReady], tc.initialized, tc.ready)
		}
	}
}
