package nodelifecycle

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func TestSilentNodeTurnsNotReadyWithinGrace(t *testing.T) {
	// In a bubble heartbeats, silence and the grace period run on fake time:
	// the timing checks below are exact, not at the mercy of a loaded machine.
	synctest.Test(t, func(t *testing.T) {
		now := metav1.Now()
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: now},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: now}}}}
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: LeaseNamespace}, Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: now.Time}}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
		other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n2"},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
		c := fakekube.NewClientset(node, lease, pod, other)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := informers.NewSharedInformerFactory(c, 0)
		grace := 500 * time.Millisecond
		ctrl := New(c, f, record.NewFakeRecorder(10), grace, slog.New(slog.DiscardHandler))
		f.Start(ctx.Done())
		f.WaitForCacheSync(ctx.Done()) // the fake's watch misses changes made before it starts
		renew := func() {
			l, _ := c.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
			l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			if _, err := c.CoordinationV1().Leases(LeaseNamespace).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		renew() // setup took a while: the node has to be heard of now
		for start := time.Now(); time.Since(start) < time.Second; time.Sleep(10 * time.Millisecond) {
			if l, _ := ctrl.leases.Leases(LeaseNamespace).Get("n1"); l != nil && time.Since(l.Spec.RenewTime.Time) < 100*time.Millisecond {
				break
			}
		}
		go ctrl.Run(ctx, 1)

		// Heartbeats for a while: the node stays Ready.
		var lastBeat time.Time
		for i := 0; i < 5; i++ {
			l, _ := c.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
			lastBeat = time.Now()
			l.Spec.RenewTime = &metav1.MicroTime{Time: lastBeat}
			if _, err := c.CoordinationV1().Leases(LeaseNamespace).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		n, _ := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if n.Status.Conditions[0].Status != corev1.ConditionTrue {
			l, _ := c.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
			t.Fatalf("heartbeating node marked %s (%s at %v; lease renewed %v, now %v)", n.Status.Conditions[0].Status, n.Status.Conditions[0].Reason, n.Status.Conditions[0].LastTransitionTime, l.Spec.RenewTime, time.Now())
		}
		// Silence: within grace plus a little, the node is Unknown and its pod not ready.
		stopped := time.Now()
		for {
			n, _ := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			p, _ := c.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
			if n.Status.Conditions[0].Status == corev1.ConditionUnknown && p.Status.Conditions[0].Status == corev1.ConditionFalse {
				break
			}
			if time.Since(stopped) > grace+2*time.Second {
				t.Fatalf("not marked within %v: node %s, pod ready %s", grace+2*time.Second, n.Status.Conditions[0].Status, p.Status.Conditions[0].Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Fake time: marked exactly when the grace period after the last heartbeat
		// ends, seen by the 20 ms poll above.
		if silent := time.Since(lastBeat); silent < grace || silent > grace+20*time.Millisecond {
			t.Fatalf("marked %v after the last heartbeat, want the %v grace period (+ one 20ms poll)", silent, grace)
		}
		if q, _ := c.CoreV1().Pods("ns").Get(ctx, "q", metav1.GetOptions{}); q.Status.Conditions[0].Status != corev1.ConditionTrue {
			t.Fatal("pod on another node touched")
		}
		// Deleting the node deletes its pods.
		if err := c.CoreV1().Nodes().Delete(ctx, "n1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if !fakekube.Eventually(5*time.Second, func() bool {
			_, err := c.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
			return err != nil
		}) {
			t.Fatal("pod of a deleted node not deleted")
		}
	})
}

// clocked is a controller over one Ready node n1 (Lease renewed at renewed) with a
// Ready pod, whose clock is *now; sync is called directly, one key at a time.
func clocked(t *testing.T, renewed time.Time, now *time.Time) (*Controller, *fake.Clientset, *atomic.Bool) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: metav1.NewTime(renewed.Add(-time.Hour))},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(renewed)}}}}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: LeaseNamespace}, Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: renewed}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	c := fakekube.NewClientset(node, lease, pod)
	down := &atomic.Bool{}
	c.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := informers.NewSharedInformerFactory(c, 0)
	ctrl := New(c, f, record.NewFakeRecorder(10), 5*time.Second, slog.New(slog.DiscardHandler))
	ctrl.now = func() time.Time { return *now }
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return ctrl, c, down
}

func readiness(t *testing.T, c *fake.Clientset) string {
	t.Helper()
	n, err := c.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CoreV1().Pods("ns").Get(context.Background(), "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(n.Status.Conditions[0].Status) + "/" + string(p.Status.Conditions[0].Status)
}

// A controller starting after a long outage judges nodes from its own first look,
// not from their old renewTime (Kubernetes' probeTimestamp).
func TestRestartedControllerGivesGrace(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	ctrl, c, _ := clocked(t, now.Add(-time.Minute), &now)
	ctx := context.Background()
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "True/True"},                   // first look: renewTime a minute old, grace starts now
		{4 * time.Second, "True/True"},     // still within 5s of the first look
		{2 * time.Second, "Unknown/False"}, // 6s silent as seen from here
	} {
		now = now.Add(step.advance)
		if err := ctrl.sync(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if got := readiness(t, c); got != step.want {
			t.Fatalf("after +%v: node/pod ready = %s, want %s", step.advance, got, step.want)
		}
	}
}

// Time the API cannot be reached does not count as the node's silence: a node is
// marked only after a live read, and its grace period restarts when the API answers.
func TestOutageDoesNotCountAsSilence(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctrl, c, down := clocked(t, now, &now)
	ctx := context.Background()
	if err := ctrl.sync(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	down.Store(true) // API and etcd stop for a minute
	for i := 0; i < 6; i++ {
		now = now.Add(10 * time.Second)
		if err := ctrl.sync(ctx, "n1"); err == nil {
			t.Fatal("sync with the API down succeeded")
		}
	}
	down.Store(false)
	now = now.Add(time.Second)
	if err := ctrl.sync(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if got := readiness(t, c); got != "True/True" {
		t.Fatalf("right after the outage: node/pod ready = %s, want True/True", got)
	}
	// The node's agent renews within the new grace period: it stays Ready.
	now = now.Add(3 * time.Second)
	l, _ := c.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	if _, err := c.CoordinationV1().Leases(LeaseNamespace).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(4 * time.Second) // 7s after contact, 4s after the renewal
	if err := ctrl.sync(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if got := readiness(t, c); got != "True/True" {
		t.Fatalf("renewed after the outage: node/pod ready = %s, want True/True", got)
	}
	// Then it falls silent for good: marked once the grace period has passed
	// since the controller saw that renewal.
	now = now.Add(6 * time.Second)
	if err := ctrl.sync(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if got := readiness(t, c); got != "Unknown/False" {
		t.Fatalf("silent 6s after its last renewal was seen: node/pod ready = %s, want Unknown/False", got)
	}
}
