package runtime

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilexec "k8s.io/utils/exec"

	"github.com/svcnet/svcnet/internal/podlogs"
)

func TestMain(m *testing.M) {
	MaybeInit() // the test binary plays the container helper
	os.Exit(m.Run())
}

// fakeNet gives each pod a bare network namespace (loopback only) and records calls.
type fakeNet struct {
	mu       sync.Mutex
	torndown map[string]bool
}

func (f *fakeNet) Setup(_ context.Context, id, name string) (netip.Addr, error) {
	h, err := netns.GetFromName(name)
	if err == nil {
		h.Close()
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	if err := newNamedNetns(name); err != nil {
		return netip.Addr{}, err
	}
	return netip.MustParseAddr("127.0.0.1"), nil
}

func (f *fakeNet) Teardown(_ context.Context, id, name string) error {
	f.mu.Lock()
	f.torndown[id] = true
	f.mu.Unlock()
	_ = netns.DeleteNamed(name)
	return nil
}

func newNamedNetns(name string) error {
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
			err = netns.Set(orig)
		}
		done <- err
	}()
	return <-done
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: the runtime test needs root (network and mount namespaces)")
		}
		t.Skip("needs root (network and mount namespaces); run as root or in CI")
	}
}

// TestRuntimeLifecycle runs real processes: readiness, restart after a kill,
// exec with exit codes, and termination with SIGKILL after the grace period.
func TestRuntimeLifecycle(t *testing.T) {
	needRoot(t)
	net := &fakeNet{torndown: map[string]bool{}}
	changes := make(chan types.UID, 100)
	terminated := make(chan types.UID, 1)
	rt, err := New(Options{Root: t.TempDir(), Net: net, ClusterDNS: []string{"10.96.0.10"},
		Changed:    func(uid types.UID) { changes <- uid },
		Terminated: func(uid types.UID, _, _ string) { terminated <- uid }})
	if err != nil {
		t.Fatal(err)
	}
	grace := int64(1)
	uid := types.UID(fmt.Sprintf("test-%d", os.Getpid()))
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p1", Namespace: "ns1", UID: uid}, Spec: corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{Name: "main", Image: "busybox",
			Command:        []string{"sh", "-c", "trap '' TERM; echo started $(hostname); while true; do sleep 0.1; done"},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1}}}}}
	rt.Sync(p)
	t.Cleanup(func() { rt.Shutdown(time.Second) })
	wait := func(what string, cond func(corev1.PodStatus) bool) corev1.PodStatus {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			st, _, ok := rt.Status(uid)
			if ok && cond(st) {
				return st
			}
			select {
			case <-changes:
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%s: not reached; status %+v", what, st)
			}
		}
	}
	st := wait("running and ready", func(s corev1.PodStatus) bool {
		return s.Phase == corev1.PodRunning && len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].Ready
	})
	var out bytes.Buffer
	if err := rt.Logs(context.Background(), "ns1", "p1", "", podlogs.Options{}, &out); err != nil || !strings.Contains(out.String(), "started p1\n") {
		t.Errorf("log %q, %v: want the pod's hostname", out.String(), err)
	}
	var stdout, stderr bytes.Buffer
	err = rt.ExecInContainer(context.Background(), "ns1/p1", "", "main", []string{"sh", "-c", "cat /etc/resolv.conf; echo oops >&2; exit 4"},
		nil, nopCloser{&stdout}, nopCloser{&stderr}, false, nil, 0)
	if ee, ok := err.(utilexec.CodeExitError); !ok || ee.Code != 4 {
		t.Errorf("exec exit: %v", err)
	}
	if !strings.Contains(stdout.String(), "nameserver 10.96.0.10") || stderr.String() != "oops\n" {
		t.Errorf("exec stdout %q stderr %q", stdout.String(), stderr.String())
	}

	rt.mu.Lock()
	w := rt.pods[uid]
	rt.mu.Unlock()
	procPid := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.procs["main"].Pid
	}
	pid := procPid()
	if pid == 0 {
		t.Fatal("no process recorded")
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	st = wait("restarted", func(s corev1.PodStatus) bool {
		c := s.ContainerStatuses[0]
		return c.RestartCount == 1 && c.State.Running != nil && c.LastTerminationState.Terminated != nil
	})
	if code := st.ContainerStatuses[0].LastTerminationState.Terminated.ExitCode; code != 137 {
		t.Errorf("last exit code %d, want 137 (SIGKILL)", code)
	}
	out.Reset()
	if err := rt.Logs(context.Background(), "ns1", "p1", "main", podlogs.Options{Previous: true}, &out); err != nil || !strings.Contains(out.String(), "started") {
		t.Errorf("previous log %q, %v", out.String(), err)
	}

	// The process ignores SIGTERM (once its trap is set, i.e. it logged): it is
	// killed once the 1s grace period is over.
	for i := 0; i < 100; i++ {
		out.Reset()
		_ = rt.Logs(context.Background(), "ns1", "p1", "main", podlogs.Options{}, &out)
		if strings.Contains(out.String(), "started") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	newPid := procPid()
	now := metav1.Now()
	del := p.DeepCopy()
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, &grace
	start := time.Now()
	rt.Sync(del)
	select {
	case got := <-terminated:
		took := time.Since(start)
		if got != uid || took < 900*time.Millisecond || took > 5*time.Second {
			t.Errorf("terminated %s after %v; want about the 1s grace period", got, took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pod not terminated")
	}
	if syscall.Kill(newPid, 0) == nil {
		t.Errorf("process %d survived termination", newPid)
	}
	net.mu.Lock()
	defer net.mu.Unlock()
	if !net.torndown[string(uid)] {
		t.Error("network not torn down")
	}
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// TestDeletionWaitsForDrain: a deleted pod's process gets SIGTERM only after
// Drain returned (the node routes no new connection to the pod's IP).
func TestDeletionWaitsForDrain(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	termFile := dir + "/term"
	drainedAt := make(chan time.Time, 1)
	drainedIP := make(chan string, 1)
	terminated := make(chan types.UID, 1)
	started := make(chan struct{}, 10)
	rt, err := New(Options{Root: t.TempDir(), Net: &fakeNet{torndown: map[string]bool{}}, ClusterDNS: []string{"10.96.0.10"},
		Changed:    func(types.UID) { started <- struct{}{} },
		Terminated: func(uid types.UID, _, _ string) { terminated <- uid },
		Drain: func(ctx context.Context, ip string) {
			drainedIP <- ip
			select { // the data paths take 300 ms to drop the pod
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
			drainedAt <- time.Now()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Shutdown(time.Second) })
	grace := int64(10)
	uid := types.UID(fmt.Sprintf("drain-%d", os.Getpid()))
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p2", Namespace: "ns1", UID: uid}, Spec: corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{Name: "main", Image: "busybox",
			Command: []string{"sh", "-c", "trap 'date +%s%N > " + termFile + "; exit 0' TERM; echo started; while true; do sleep 0.05; done"}}}}}
	rt.Sync(p)
	for deadline := time.Now().Add(10 * time.Second); ; {
		var out bytes.Buffer
		_ = rt.Logs(context.Background(), "ns1", "p2", "main", podlogs.Options{}, &out)
		if strings.Contains(out.String(), "started") { // its trap is set
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not start")
		}
		select {
		case <-started:
		case <-time.After(50 * time.Millisecond):
		}
	}
	now := metav1.Now()
	del := p.DeepCopy()
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, &grace
	rt.Sync(del)
	select {
	case <-terminated:
	case <-time.After(10 * time.Second):
		t.Fatal("pod not terminated")
	}
	if ip := <-drainedIP; ip != "127.0.0.1" {
		t.Errorf("Drain(%q), want the pod's IP 127.0.0.1", ip)
	}
	at := <-drainedAt
	data, err := os.ReadFile(termFile)
	if err != nil {
		t.Fatalf("the container never got SIGTERM: %v", err)
	}
	var ns int64
	if _, err := fmt.Sscan(string(data), &ns); err != nil {
		t.Fatalf("term file %q: %v", data, err)
	}
	if term := time.Unix(0, ns); term.Before(at) {
		t.Errorf("SIGTERM at %v, %v before Drain returned", term, at.Sub(term))
	}
}
