package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func settingsYAML(color, size string) string {
	s := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: " + color + "\n"
	if size != "" {
		s += "  size: \"" + size + "\"\n"
	}
	return s
}

const clientSideDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: csa
spec:
  replicas: 1
  selector:
    matchLabels: {app: csa}
  template:
    metadata:
      labels: {app: csa}
    spec:
      containers:
      - name: web
        image: IMAGE
`

// TestApplyServerSide drives server-side apply with real kubectl: idempotent
// re-apply, a conflict between two managers, --force-conflicts, kubectl diff, and
// client-side apply next to it.
func TestApplyServerSide(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t))
	red := writeFile(t, filepath.Join(dir, "red.yaml"), settingsYAML("red", "10"), 0o644)

	for range 2 {
		if out := c.must("apply", "--server-side", "-f", red); strings.TrimSpace(out) != "configmap/settings serverside-applied" {
			t.Fatalf("apply --server-side: %q", out)
		}
	}
	mf := c.must("get", "cm", "settings", "-o", "yaml", "--show-managed-fields")
	for _, want := range []string{"manager: kubectl", "operation: Apply", "f:color: {}", "f:size: {}"} {
		if !strings.Contains(mf, want) {
			t.Errorf("managedFields lack %q:\n%s", want, mf)
		}
	}
	if strings.Contains(c.must("get", "cm", "settings", "-o", "yaml"), "managedFields") {
		t.Errorf("kubectl get -o yaml shows managedFields without --show-managed-fields")
	}

	// Another manager changing a field kubectl owns is a conflict.
	blue := writeFile(t, filepath.Join(dir, "blue.yaml"), settingsYAML("blue", ""), 0o644)
	errOut := c.fails("apply", "--server-side", "--field-manager=other", "-f", blue)
	if !strings.Contains(errOut, `Apply failed with 1 conflict: conflict with "kubectl": .data.color`) {
		t.Fatalf("conflict: %s", errOut)
	}
	if got := c.must("get", "cm", "settings", "-o", "jsonpath={.data.color}"); got != "red" {
		t.Fatalf("color after the conflict = %q", got)
	}
	// --force-conflicts takes ownership; kubectl keeps size, which it alone owns.
	if out := c.must("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", blue); !strings.Contains(out, "serverside-applied") {
		t.Fatalf("force: %s", out)
	}
	if got := c.must("get", "cm", "settings", "-o", "jsonpath={.data.color} {.data.size} {.metadata.managedFields[*].manager}"); got != "blue 10 kubectl other" {
		t.Fatalf("after force: %q", got)
	}
	// kubectl now conflicts on color, and no longer owns it once it stops applying it.
	if errOut := c.fails("apply", "--server-side", "-f", red); !strings.Contains(errOut, `conflict with "other": .data.color`) {
		t.Fatalf("kubectl after losing color: %s", errOut)
	}

	// kubectl diff (server-side dry run) shows the change and writes nothing.
	green := writeFile(t, filepath.Join(dir, "green.yaml"), settingsYAML("green", "10"), 0o644)
	for _, args := range [][]string{{"diff", "-f", green}, {"diff", "--server-side", "--force-conflicts", "-f", green}} {
		out, errOut, err := c.kubectl(args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("kubectl %s: %v (want exit status 1, differences found)\n%s\n%s", strings.Join(args, " "), err, out, errOut)
		}
		if !strings.Contains(out, "-  color: blue") || !strings.Contains(out, "+  color: green") {
			t.Errorf("kubectl %s output:\n%s", strings.Join(args, " "), out)
		}
	}
	if got := c.must("get", "cm", "settings", "-o", "jsonpath={.data.color}"); got != "blue" {
		t.Fatalf("kubectl diff changed the object: color = %q", got)
	}

	// Client-side apply (strategic merge + last-applied annotation) still works.
	csa := filepath.Join(dir, "csa.yaml")
	writeFile(t, csa, strings.Replace(clientSideDeployment, "IMAGE", "nginx:1.26", 1), 0o644)
	if out := c.must("apply", "-f", csa); !strings.Contains(out, "deployment.apps/csa created") {
		t.Fatalf("client-side apply: %s", out)
	}
	writeFile(t, csa, strings.Replace(clientSideDeployment, "IMAGE", "nginx:1.27", 1), 0o644)
	if out := c.must("apply", "-f", csa); !strings.Contains(out, "deployment.apps/csa configured") {
		t.Fatalf("client-side re-apply: %s", out)
	}
	got := c.must("get", "deploy", "csa", "-o", `jsonpath={.spec.template.spec.containers[0].image} {.metadata.managedFields[*].manager}`)
	if !strings.HasPrefix(got, "nginx:1.27 ") || !strings.Contains(got, "kubectl-client-side-apply") {
		t.Fatalf("client-side apply result: %q", got)
	}
	if ann := c.must("get", "deploy", "csa", "-o", `jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}`); !strings.Contains(ann, "nginx:1.27") {
		t.Fatalf("last-applied annotation: %q", ann)
	}

	// A multi-document file with an old apps/v1beta1 Deployment and a Service,
	// applied server-side twice.
	tutorial := writeFile(t, filepath.Join(dir, "app.yaml"), tutorialManifest, 0o644)
	for range 2 {
		out := c.must("apply", "--server-side", "-f", tutorial)
		for _, want := range []string{"namespace/demo serverside-applied", "deployment.apps/httpd serverside-applied", "service/httpd-svc serverside-applied"} {
			if !strings.Contains(out, want) {
				t.Fatalf("apply --server-side of the tutorial lacks %q:\n%s", want, out)
			}
		}
	}
	if got := c.must("-n", "demo", "get", "deploy", "httpd", "-o", "jsonpath={.spec.replicas} {.metadata.managedFields[0].apiVersion}"); got != "3 apps/v1beta1" {
		t.Errorf("tutorial deployment: %q", got)
	}
}
