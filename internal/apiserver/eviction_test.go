package apiserver

import (
	"strings"
	"testing"
)

// An evicted pod gets the DisruptionTarget condition before its delete, as
// Kubernetes' eviction writes it; a dry run leaves the pod alone.
func TestEvictionMarksDisruptionTarget(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"p","finalizers":["example.com/keep"]},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"x"}]}}`))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods/p/eviction", `{"metadata":{"name":"p"},"deleteOptions":{"dryRun":["All"]}}`))
	if got := h.do("GET", "/api/v1/namespaces/default/pods/p", ""); strings.Contains(got.body, "DisruptionTarget") {
		t.Fatalf("a dry-run eviction changed the pod: %s", got.str("status"))
	}
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods/p/eviction", `{"metadata":{"name":"p"}}`))
	got := h.do("GET", "/api/v1/namespaces/default/pods/p", "")
	conds := got.str("status", "conditions")
	if !strings.Contains(conds, `"type":"DisruptionTarget"`) || !strings.Contains(conds, `"reason":"EvictionByEvictionAPI"`) ||
		!strings.Contains(conds, `"message":"Eviction API: evicting"`) {
		t.Fatalf("evicted pod's conditions: %s", conds)
	}
	if got.str("metadata", "deletionTimestamp") == "" {
		t.Fatalf("evicted pod not deleted: %s", got.body)
	}
}
