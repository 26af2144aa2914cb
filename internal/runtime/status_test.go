package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
		if got := phase(tc.policy, true, tc.cs); got != tc.want {
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
	st := buildStatus(snapshot{pod: p, podIP: "10.244.0.5", sandboxReady: true, containers: cs, now: now, startTime: now})
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
	st = buildStatus(snapshot{pod: p, podIP: "10.244.0.5", sandboxReady: true, containers: cs, now: now, startTime: now})
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady && (c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(now)) {
			t.Errorf("Ready after both containers ready: %+v", c)
		}
	}
}

func TestExpandAndArgv(t *testing.T) {
	vars := map[string]string{"NAME": "web", "PORT": "8080"}
	for in, want := range map[string]string{
		"--port=$(PORT)":     "--port=8080",
		"$(NAME)-$(MISSING)": "web-$(MISSING)",
		"$$(NAME)":           "$(NAME)",
		"cost $5":            "cost $5",
		"open $(NAME":        "open $(NAME",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := argv(corev1.Container{Name: "c", Image: "nginx"}, vars); err == nil || !strings.Contains(err.Error(), `cannot pull image "nginx"`) {
		t.Errorf("argv without command: %v", err)
	}
	got, _ := argv(corev1.Container{Args: []string{"sh", "-c", "echo $(NAME)"}}, vars)
	if strings.Join(got, " ") != "sh -c echo web" {
		t.Errorf("args alone run as the command: %q", got)
	}
}

func TestValueFrom(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{HostIP: "192.0.2.1"}}
	for path, want := range map[string]string{"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u1",
		"spec.nodeName": "n1", "status.podIP": "10.244.0.9", "status.hostIP": "192.0.2.1", "metadata.labels['app']": "x"} {
		got, err := valueFrom(p, "10.244.0.9", corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}})
		if err != nil || got != want {
			t.Errorf("fieldRef %s = %q, %v; want %q", path, got, err, want)
		}
	}
	_, err := valueFrom(p, "", corev1.EnvVar{Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{}}})
	if err == nil || !strings.Contains(err.Error(), "env S") {
		t.Errorf("secretKeyRef: %v", err)
	}
}

func TestLogsWriteRotateRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	l, err := openLog(path, 200, now)
	if err != nil {
		t.Fatal(err)
	}
	l.write("stdout", []byte("one\ntw"))
	l.write("stderr", []byte("err line\n"))
	l.write("stdout", []byte("o\nthree\n"))
	for i := 0; i < 5; i++ { // pushes the file past 200 bytes: rotated once
		l.write("stdout", []byte("filler line\n"))
	}
	l.write("stdout", []byte("unterminated"))
	l.close()
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	read := func(o LogOptions) string {
		var b bytes.Buffer
		if err := readLog(context.Background(), path, o, &b, func() bool { return false }); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	all := read(LogOptions{})
	if !strings.HasPrefix(all, "one\nerr line\ntwo\nthree\nfiller line\n") || !strings.HasSuffix(all, "filler line\nunterminated\n") {
		t.Errorf("whole log across rotation:\n%s", all)
	}
	two := int64(2)
	if got := read(LogOptions{TailLines: &two}); got != "filler line\nunterminated\n" {
		t.Errorf("tail 2 = %q", got)
	}
	limit := int64(6)
	if got := read(LogOptions{LimitBytes: &limit}); got != "one\ner" {
		t.Errorf("limitBytes 6 = %q", got)
	}
	if got := read(LogOptions{Timestamps: true, TailLines: &two}); !strings.HasPrefix(got, "2026-01-01T00:00:") {
		t.Errorf("timestamps: %q", got)
	}
	since := time.Date(2026, 1, 1, 0, 0, 9, 0, time.UTC)
	if got := read(LogOptions{SinceTime: &since}); strings.Contains(got, "one") || !strings.Contains(got, "unterminated") {
		t.Errorf("sinceTime: %q", got)
	}
}

func TestLogsFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	l, err := openLog(path, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	l.write("stdout", []byte("before\n"))
	running := make(chan struct{})
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- readLog(context.Background(), path, LogOptions{Follow: true}, &out, func() bool {
			select {
			case <-running:
				return false
			default:
				return true
			}
		})
	}()
	time.Sleep(150 * time.Millisecond)
	l.write("stdout", []byte("after\n"))
	l.close()
	time.Sleep(150 * time.Millisecond)
	close(running)
	select {
	case err := <-done:
		if err != nil || out.String() != "before\nafter\n" {
			t.Errorf("follow = %q, %v", out.String(), err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after the container stopped")
	}
}
