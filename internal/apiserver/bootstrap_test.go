package apiserver

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestModifyRetriesOnConcurrentWrite: a server-internal read-modify-write that
// meets a concurrent writer (another API server starting on the same etcd)
// retries on the fresh object instead of failing with a conflict. Three
// servers starting together once failed start-up on the kubernetes Endpoints.
func TestModifyRetriesOnConcurrentWrite(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	res := h.srv.res("", "endpoints")
	addIP := func(ip string) transform {
		return func(old runtime.Object) (runtime.Object, error) {
			ep := old.(*corev1.Endpoints)
			ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, corev1.EndpointAddress{IP: ip})
			return ep, nil
		}
	}
	calls := 0
	_, _, err := h.srv.modify(ctx, res, "default", "kubernetes", func(old runtime.Object) (runtime.Object, error) {
		calls++
		if calls == 1 { // another server writes between our read and our write
			if _, _, err := h.srv.modify(ctx, res, "default", "kubernetes", addIP("192.0.2.2"), writeOptions{}); err != nil {
				t.Fatalf("concurrent write: %v", err)
			}
		}
		return addIP("192.0.2.3")(old)
	}, writeOptions{})
	if err != nil {
		t.Fatalf("modify after a concurrent write: %v", err)
	}
	if calls != 2 {
		t.Errorf("transform ran %d times, want 2 (one retry)", calls)
	}
	obj, _, err := h.srv.get(ctx, res, "default", "kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range obj.(*corev1.Endpoints).Subsets[0].Addresses {
		got = append(got, a.IP)
	}
	if want := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("addresses = %v, want %v (both writers' changes kept)", got, want)
	}
}
