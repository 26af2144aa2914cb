package netpol

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

func TestIsolateNamespaces(t *testing.T) {
	cs := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = IsolateNamespaces(ctx, cs, slog.New(slog.DiscardHandler)); close(done) }()
	defer func() { cancel(); <-done }()
	has := func(ns string) bool {
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, IsolationPolicyName, metav1.GetOptions{})
		return err == nil
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return ok(), nil }); err != nil {
			t.Fatalf("%s: not within 10s", what)
		}
	}
	waitFor("default isolated", func() bool { return has("default") })
	if has("kube-system") {
		t.Error("kube-system got an isolation policy")
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("a new namespace isolated", func() bool { return has("team-a") })
	// The policy is what Kubernetes' docs call "allow all traffic within the namespace".
	s := NewState([]*Pod{{Namespace: "team-a", Name: "p", IP: modelIP("x", "a")}, {Namespace: "team-a", Name: "q", IP: modelIP("x", "b")},
		{Namespace: "other", Name: "r", IP: modelIP("y", "a")}}, nil, nil)
	p, err := FromPolicy(IsolationPolicy("team-a"))
	if err != nil {
		t.Fatal(err)
	}
	s.Policies = []*Policy{p}
	if !Decide(s, Flow{Src: modelIP("x", "b"), Dst: modelIP("x", "a"), Protocol: "TCP", Port: 80}).Allowed() ||
		Decide(s, Flow{Src: modelIP("y", "a"), Dst: modelIP("x", "a"), Protocol: "TCP", Port: 80}).Allowed() {
		t.Error("the isolation policy should allow its own namespace and nothing else")
	}
	if err := cs.NetworkingV1().NetworkPolicies("team-a").Delete(ctx, IsolationPolicyName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("a deleted policy comes back", func() bool { return has("team-a") })
	ns, _ := cs.CoreV1().Namespaces().Get(ctx, "team-a", metav1.GetOptions{})
	ns.Annotations = map[string]string{IsolationAnnotation: "false"}
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("an opted-out namespace loses it", func() bool { return !has("team-a") })
}
