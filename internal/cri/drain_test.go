package cri

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// TestDeletionWaitsForDrain: a deleted pod's containers are stopped only once
// Drain says the node routes no new connection to its IP; a Drain that never
// says so is cut off at drain.Limit of the grace period (10 s of 30 s).
func TestDeletionWaitsForDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release time.Duration // when the data paths stop routing the pod (0: never)
		stopped time.Duration // when the container is stopped
	}{
		{name: "drained after 2s", release: 2 * time.Second, stopped: 2 * time.Second},
		{name: "never drained: the limit", stopped: 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				defer h.rt.Shutdown(0)
				drainedIP := make(chan string, 1)
				h.rt.o.Drain = func(ctx context.Context, ip string) {
					drainedIP <- ip
					if tc.release == 0 {
						<-ctx.Done()
						return
					}
					select {
					case <-ctx.Done():
					case <-time.After(tc.release):
					}
				}
				h.is.SetFakeImages([]string{"httpd"})
				p := testPod(corev1.RestartPolicyAlways, "web")
				h.rt.Sync(p)
				synctest.Wait()
				if cs := h.status(t, p.UID); cs.State.Running == nil {
					t.Fatalf("not running: %+v", cs)
				}
				del := p.DeepCopy()
				now := metav1.Now()
				grace := int64(30)
				del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, &grace
				start := time.Now()
				h.rt.Sync(del)
				synctest.Wait()
				select {
				case ip := <-drainedIP:
					if ip != critest.FakePodSandboxIPs[0] {
						t.Errorf("Drain(%q), want the pod IP %s", ip, critest.FakePodSandboxIPs[0])
					}
				default:
					t.Fatal("Drain not called at the deletion")
				}
				for !slices.Contains(h.rs.GetCalls(), "StopContainer") {
					time.Sleep(100 * time.Millisecond)
					synctest.Wait()
					if time.Since(start) > 30*time.Second {
						t.Fatal("container never stopped")
					}
				}
				if took := time.Since(start); took < tc.stopped || took > tc.stopped+100*time.Millisecond {
					t.Errorf("container stopped %v after the deletion, want %v", took, tc.stopped)
				}
				select {
				case <-h.terminated:
				case <-time.After(time.Second):
					t.Fatal("deletion not confirmed")
				}
			})
		})
	}
}
