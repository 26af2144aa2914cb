package nodeipam

import (
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func TestBlocks(t *testing.T) {
	b, err := NewBlocks("10.244.0.0/16", 24)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int]string{0: "10.244.0.0/24", 1: "10.244.1.0/24", 255: "10.244.255.0/24"} {
		if got := b.Nth(i).String(); got != want {
			t.Errorf("Nth(%d) = %s, want %s", i, got, want)
		}
	}
	if b.count != 256 || b.Index(b.Nth(37)) != 37 {
		t.Fatal("index does not round-trip")
	}
	v6, _ := NewBlocks("fd00:10:244::/56", 64)
	if got := v6.Nth(3).String(); got != "fd00:10:244:3::/64" {
		t.Errorf("v6 Nth(3) = %s", got)
	}
	for _, bad := range []struct {
		cidr string
		mask int
	}{{"10.244.0.0/16", 8}, {"10.244.0.0/16", 33}, {"nonsense", 24}, {"10.0.0.0/8", 28}} {
		if _, err := NewBlocks(bad.cidr, bad.mask); err == nil {
			t.Errorf("%s /%d accepted", bad.cidr, bad.mask)
		}
	}
}

func TestAssignsDistinctCIDRs(t *testing.T) {
	taken := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24"}}
	e := fakekube.NewEnv(t, taken, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b"}})
	b, _ := NewBlocks("10.244.0.0/16", 24)
	c, ctx := e.Client, e.Ctx
	e.Run(1, New(c, e.Factory, b, slog.New(slog.DiscardHandler)))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a, _ := c.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{})
		bb, _ := c.CoreV1().Nodes().Get(ctx, "b", metav1.GetOptions{})
		if a.Spec.PodCIDR != "" && bb.Spec.PodCIDR != "" {
			if a.Spec.PodCIDR == bb.Spec.PodCIDR || a.Spec.PodCIDR == "10.244.0.0/24" || bb.Spec.PodCIDR == "10.244.0.0/24" {
				t.Fatalf("overlapping CIDRs: a=%s b=%s", a.Spec.PodCIDR, bb.Spec.PodCIDR)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("pod CIDRs not assigned")
}
