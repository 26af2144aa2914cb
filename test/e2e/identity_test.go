package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServiceAccountsAndReplicationControllers: every namespace gets its default
// ServiceAccount and the kube-root-ca.crt ConfigMap (repaired when deleted), and
// a ReplicationController keeps, scales and (through garbage collection) deletes
// its pods.
func TestServiceAccountsAndReplicationControllers(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--node-name", "local")
	c.must("cordon", "local") // pods go to node-a, played by this test
	startFakeNode(t, c, "node-a")
	ca, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}

	c.must("create", "namespace", "team")
	waitKubectl(t, c, "default ServiceAccount", 20*time.Second, func(o string) bool { return strings.TrimSpace(o) == "default" },
		"get", "serviceaccount", "default", "-n", "team", "-o", "jsonpath={.metadata.name}")
	caData := []string{"get", "configmap", "kube-root-ca.crt", "-n", "team", "-o", `jsonpath={.data.ca\.crt}`}
	isCA := func(o string) bool { return o == string(ca) }
	waitKubectl(t, c, "kube-root-ca.crt with the cluster CA", 20*time.Second, isCA, caData...)
	c.must("delete", "configmap", "kube-root-ca.crt", "-n", "team")
	waitKubectl(t, c, "kube-root-ca.crt back after delete", 20*time.Second, isCA, caData...)

	c.must("create", "serviceaccount", "builder", "-n", "team")
	rows := wantHeader(t, c.must("get", "sa", "-n", "team"), "NAME", "SECRETS", "AGE")
	if len(rows) != 2 || rows[0][0] != "builder" || rows[0][1] != "0" || rows[1][0] != "default" {
		t.Fatalf("get sa rows %v", rows)
	}
	if d := c.must("describe", "sa", "builder", "-n", "team"); !strings.Contains(d, "Name:") || !strings.Contains(d, "builder") || !strings.Contains(d, "Namespace:           team") {
		t.Fatalf("describe sa:\n%s", d)
	}
	c.must("delete", "sa", "builder", "-n", "team")

	manifest := writeFile(t, filepath.Join(dir, "rc.yaml"), `apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: web
    spec:
      nodeSelector: {topology.kubernetes.io/zone: zone-1}
      containers:
      - name: web
        image: agnhost
        command: [svcnet, agnhost, serve-hostname]
`, 0o644)
	c.must("apply", "-n", "team", "-f", manifest)
	rcRow := func(want string) {
		t.Helper()
		waitKubectl(t, c, "rc "+want, 30*time.Second, func(o string) bool {
			r := table(o)
			return len(r) == 2 && strings.Join(r[1][:4], " ") == want
		}, "get", "rc", "web", "-n", "team")
	}
	rcRow("web 2 2 2")
	wide := wantHeader(t, c.must("get", "rc", "-n", "team", "-o", "wide"), "NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR")
	if len(wide) != 1 || strings.Join(wide[0][5:], " ") != "web agnhost app=web" {
		t.Fatalf("get rc -o wide rows %v", wide)
	}
	owners := c.must("get", "pods", "-n", "team", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller} {end}`)
	if strings.Count(owners, "ReplicationController/true") != 2 {
		t.Fatalf("pod owners: %s", owners)
	}
	c.must("scale", "rc", "web", "--replicas=3", "-n", "team")
	rcRow("web 3 3 3")
	c.must("delete", "rc", "web", "-n", "team")
	waitKubectl(t, c, "pods of the deleted rc gone", 30*time.Second, func(o string) bool { return strings.TrimSpace(o) == "" },
		"get", "pods", "-n", "team", "-l", "app=web", "-o", "name")
}
