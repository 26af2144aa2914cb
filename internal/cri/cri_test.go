package cri

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// harness is a Runtime over the CRI fakes.
type harness struct {
	rs         *critest.FakeRuntimeService
	is         *critest.FakeImageService
	rt         *Runtime
	terminated chan types.UID
	events     chan string
}

func newHarness(t *testing.T) *harness {
	h := &harness{rs: critest.NewFakeRuntimeService(), is: critest.NewFakeImageService(),
		terminated: make(chan types.UID, 10), events: make(chan string, 100)}
	rt, err := New(Options{Runtime: h.rs, Images: h.is, Root: t.TempDir(), ClusterDNS: []string{"10.96.0.10"},
		Terminated: func(uid types.UID, _, _ string) { h.terminated <- uid },
		Event: func(_ *corev1.Pod, _, reason, _ string) {
			select {
			case h.events <- reason:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.rt = rt
	return h
}

// exit ends a fake container with code.
func (h *harness) exit(id string, code int32) {
	h.rs.Lock()
	defer h.rs.Unlock()
	c := h.rs.Containers[id]
	c.State, c.ExitCode, c.FinishedAt = runtimeapi.ContainerState_CONTAINER_EXITED, code, time.Now().UnixNano()
}

func (h *harness) status(t *testing.T, uid types.UID) corev1.ContainerStatus {
	t.Helper()
	st, _, ok := h.rt.Status(uid)
	if !ok || len(st.ContainerStatuses) != 1 {
		t.Fatalf("no status for %s: %+v", uid, st)
	}
	return st.ContainerStatuses[0]
}

func TestRuntimeRunsRestartsAndDeletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.rt.Shutdown(0)
		h.is.SetFakeImages([]string{"nginx:1.17.1"})
		p := testPod(corev1.RestartPolicyAlways, "web")
		p.Spec.Containers[0].Image = "nginx:1.17.1"
		p.Spec.Containers[0].Command = []string{"nginx", "-g", "daemon off;"}
		h.rt.Sync(p)
		synctest.Wait()
		st, _, _ := h.rt.Status(p.UID)
		if st.Phase != corev1.PodRunning || st.PodIP != critest.FakePodSandboxIPs[0] {
			t.Fatalf("pod not running with the sandbox IP: %+v", st)
		}
		cs := h.status(t, p.UID)
		if cs.State.Running == nil || !cs.Ready || cs.RestartCount != 0 || cs.ContainerID == "" {
			t.Fatalf("container status = %+v", cs)
		}
		id := cs.ContainerID[len(containerIDPrefix):]
		h.rs.Lock()
		cfg := h.rs.Containers[id]
		h.rs.Unlock()
		if cfg.Image.Image != "nginx:1.17.1" {
			t.Errorf("container image = %q", cfg.Image.Image)
		}

		// A log past LogMaxSize is rotated and the runtime reopens it.
		log := filepath.Join(h.rt.o.Root, "pods", string(p.UID), "logs", logPath("web", 0))
		if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(log, make([]byte, h.rt.o.LogMaxSize), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(resyncPeriod)
		synctest.Wait()
		if _, err := os.Stat(log + ".1"); err != nil || !slices.Contains(h.rs.GetCalls(), "ReopenContainerLog") {
			t.Fatalf("log not rotated: %v, calls %v", err, h.rs.GetCalls())
		}

		// The first crash restarts at once (the relist notices within a second).
		h.exit(id, 1)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		cs = h.status(t, p.UID)
		if cs.State.Running == nil || cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
			t.Fatalf("after the first crash: %+v", cs)
		}
		// The second waits 10 s in CrashLoopBackOff.
		h.exit(cs.ContainerID[len(containerIDPrefix):], 2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		cs = h.status(t, p.UID)
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
			t.Fatalf("after the second crash: %+v", cs.State)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if cs = h.status(t, p.UID); cs.State.Running == nil || cs.RestartCount != 2 {
			t.Fatalf("after the back-off: %+v", cs)
		}

		// Deletion stops everything and removes the sandbox.
		del := p.DeepCopy()
		now := metav1.Now()
		zero := int64(0)
		del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, &zero
		h.rt.Sync(del)
		synctest.Wait()
		select {
		case uid := <-h.terminated:
			if uid != p.UID {
				t.Fatalf("terminated %s", uid)
			}
		default:
			t.Fatal("deletion not confirmed")
		}
		h.rs.Lock()
		left := len(h.rs.Sandboxes)
		h.rs.Unlock()
		if left != 0 {
			t.Fatalf("%d sandboxes left", left)
		}
	})
}

func TestRuntimeImagePullFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.rt.Shutdown(0)
		never := testPod(corev1.RestartPolicyAlways, "a")
		never.UID = "never"
		never.Spec.Containers[0].Image, never.Spec.Containers[0].ImagePullPolicy = "app:v1", corev1.PullNever
		h.rt.Sync(never)
		synctest.Wait()
		if cs := h.status(t, never.UID); cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonErrImageNeverPull {
			t.Fatalf("Never without the image: %+v", cs.State)
		}

		pull := testPod(corev1.RestartPolicyAlways, "a")
		pull.UID = "pull"
		pull.Spec.Containers[0].Image = "10.0.0.5:5000/app:v1"
		h.is.InjectError("PullImage", errors.New("dial tcp 10.0.0.5:5000: connect: no route to host"))
		h.rt.Sync(pull)
		synctest.Wait()
		if cs := h.status(t, pull.UID); cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonErrImagePull {
			t.Fatalf("failed pull: %+v", cs.State)
		}
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		if cs := h.status(t, pull.UID); cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonImagePullBackOff {
			t.Fatalf("within the back-off: %+v", cs.State)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if cs := h.status(t, pull.UID); cs.State.Running == nil {
			t.Fatalf("after the back-off the pull works: %+v", cs.State)
		}

		// Always with the registry out of reach runs the node's copy.
		always := testPod(corev1.RestartPolicyAlways, "a")
		always.UID = "always"
		always.Spec.Containers[0].Image, always.Spec.Containers[0].ImagePullPolicy = "httpd", corev1.PullAlways
		h.is.SetFakeImages([]string{"httpd"})
		h.is.InjectError("PullImage", errors.New("dial tcp: lookup registry-1.docker.io: no such host"))

		h.rt.Sync(always)
		synctest.Wait()
		if cs := h.status(t, always.UID); cs.State.Running == nil {
			t.Fatalf("Always with an unreachable registry and the image on the node: %+v", cs.State)
		}
	})
}
