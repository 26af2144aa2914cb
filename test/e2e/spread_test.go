package e2e

import (
	"strings"
	"testing"
)

// Request-spreading checks shared by the kube-proxy mode tests (iptables,
// nftables, userspace): the same Service behaviour, whichever backend.

// checkSpreadFromNode sends 300 requests from the node to url and wants them
// spread over the 3 httpd pods (each 20-45%).
func checkSpreadFromNode(t *testing.T, url string) {
	t.Helper()
	counts := countBodies(t, url, 300)
	if len(counts) != 3 {
		t.Errorf("requests reached %d pods, want 3: %v", len(counts), counts)
	}
	for pod, n := range counts {
		if n < 60 || n > 135 {
			t.Errorf("pod %s got %d of 300 requests, want 20-45%%: %v", pod, n, counts)
		}
	}
	t.Logf("cluster IP from the node: %v", counts)
}

// checkSpreadFromPod sends 12 requests to url from the first httpd pod and
// wants them to reach at least 2 pods; it returns that pod's name.
func checkSpreadFromPod(t *testing.T, c *cluster, url string) string {
	t.Helper()
	pod := strings.TrimSpace(c.must("get", "pods", "-l", "app=httpd", "-o", "jsonpath={.items[0].metadata.name}"))
	out := c.must("exec", pod, "--", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do svcnet agnhost get "+url+"; echo; done")
	seen := map[string]bool{}
	for _, l := range strings.Fields(out) {
		seen[l] = true
	}
	if len(seen) < 2 {
		t.Errorf("12 requests from a pod reached %d pods: %q", len(seen), out)
	}
	return pod
}

// checkAffinity sends 30 requests from the node to url, a Service with
// sessionAffinity ClientIP, and wants them all on one pod.
func checkAffinity(t *testing.T, url string) {
	t.Helper()
	sticky := countBodies(t, url, 30)
	if len(sticky) != 1 {
		t.Errorf("ClientIP affinity: 30 requests reached %v", sticky)
	}
}

// countBodies sends n requests from the node to url and counts the bodies
// (the pods' names) they get back.
func countBodies(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		body, err := httpGet(url)
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, url, err)
		}
		counts[body]++
	}
	return counts
}
