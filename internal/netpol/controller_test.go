package netpol

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeBackend records what it was asked to program; the first fail syncs fail.
type fakeBackend struct {
	mu    sync.Mutex
	fail  int
	calls int
	last  Rules
}

func (f *fakeBackend) Sync(r Rules) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail > 0 {
		f.fail--
		return errors.New("injected")
	}
	f.last = r
	return nil
}

func (f *fakeBackend) rules() Rules {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func TestControllerFollowsTheAPI(t *testing.T) {
	pod := func(name, ip string, l map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: name, Labels: l}, Spec: corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}}
	}
	cs := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x"}},
		pod("a", "10.244.0.2", map[string]string{"app": "a"}), pod("b", "10.244.0.3", map[string]string{"app": "b"}))
	be := &fakeBackend{fail: 1}
	c := NewController(cs, "n1", be, nil, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func(Rules) bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return ok(be.rules()), nil
		})
		if err != nil {
			t.Fatalf("%s: rules are %+v", what, be.rules())
		}
	}
	a := netip.MustParseAddr("10.244.0.2")
	waitFor("first sync (after the injected failure)", func(r Rules) bool { be.mu.Lock(); defer be.mu.Unlock(); return be.calls >= 2 })
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "only-b"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}}}}}}}
	if _, err := cs.NetworkingV1().NetworkPolicies("x").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, other := netip.MustParseAddr("10.244.0.3"), netip.MustParseAddr("10.244.0.9")
	flow := func(src netip.Addr) Flow { return Flow{Src: src, Dst: a, Protocol: "TCP", Port: 80} }
	waitFor("policy created", func(r Rules) bool {
		return slices.Equal(r.IngressIsolated, []netip.Addr{a}) && trace(r, flow(b)) && !trace(r, flow(other))
	})
	if _, err := cs.CoreV1().Pods("x").Update(ctx, pod("b", "10.244.0.3", map[string]string{"app": "other"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("b relabelled", func(r Rules) bool { return len(r.IngressIsolated) == 1 && !trace(r, flow(b)) })
	if err := cs.NetworkingV1().NetworkPolicies("x").Delete(ctx, "only-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("policy deleted", func(r Rules) bool { return len(r.IngressIsolated) == 0 })
}
