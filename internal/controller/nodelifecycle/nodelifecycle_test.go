package nodelifecycle

import (
	"context"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func TestSilentNodeTurnsNotReadyWithinGrace(t *testing.T) {
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
	for i := 0; i < 5; i++ {
		l, _ := c.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
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
	if took := time.Since(stopped); took < grace-250*time.Millisecond {
		t.Fatalf("marked after %v, before the %v grace period", took, grace)
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
}
