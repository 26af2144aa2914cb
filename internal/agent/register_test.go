package agent

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestRegisterKeepsARestartedNodeReady: an agent whose pod runtime is still
// starting posts Ready=False for a new Node (or one not Ready), but leaves a
// Ready Node (its previous agent's, whose pods still run) as it is.
func TestRegisterKeepsARestartedNodeReady(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	since := metav1.NewTime(now.Add(-time.Hour))
	node := func(st corev1.ConditionStatus) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
		if st != "" {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st, LastTransitionTime: since}}
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		existing *corev1.Node
		port     int
		want     corev1.ConditionStatus
		since    bool // the Ready condition's transition time is the old one
	}{
		{"new node", nil, 0, corev1.ConditionFalse, false},
		{"no Ready condition", node(""), 0, corev1.ConditionFalse, false},
		{"restart of a Ready node", node(corev1.ConditionTrue), 0, corev1.ConditionTrue, true},
		{"restart of a node not Ready", node(corev1.ConditionUnknown), 0, corev1.ConditionFalse, false},
		{"registered again while serving", node(corev1.ConditionTrue), 10250, corev1.ConditionTrue, true},
	} {
		client := fake.NewClientset()
		if tc.existing != nil {
			client = fake.NewClientset(tc.existing)
		}
		a := &Agent{o: Options{PodRuntime: true, NodeIP: "10.0.0.1", NodeName: "n", Now: func() time.Time { return now }}, client: client, port: tc.port}
		if err := a.register(context.Background()); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		n, err := client.CoreV1().Nodes().Get(context.Background(), "n", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ready *corev1.NodeCondition
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				ready = &n.Status.Conditions[i]
			}
		}
		if ready == nil || ready.Status != tc.want || ready.LastTransitionTime.Equal(&since) != tc.since {
			t.Errorf("%s: Ready %+v, want %s (transition kept: %v)", tc.name, ready, tc.want, tc.since)
		}
	}
}

// TestKeepLease: the Lease is renewed every quarter of its duration on its
// own, whatever else the agent is doing (a pod runtime start included).
func TestKeepLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := fake.NewClientset()
		a := &Agent{o: Options{NodeName: "n", LeaseDuration: 40 * time.Second, Now: time.Now}, client: client}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := a.renewLease(ctx); err != nil {
			t.Fatal(err)
		}
		go a.keepLease(ctx, slog.New(slog.DiscardHandler))
		renewed := func() time.Time {
			l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "n", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return l.Spec.RenewTime.Time
		}
		first := renewed()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if got := renewed().Sub(first); got != 10*time.Second {
			t.Errorf("renewed %v after the first renewal, want 10s (a quarter of 40s)", got)
		}
		cancel()
		synctest.Wait()
	})
}
