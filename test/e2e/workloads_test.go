package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const workloadsManifest = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - name: http
    port: 8080
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
        readinessProbe:
          tcpSocket:
            port: 8080
          periodSeconds: 1
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
spec:
  selector:
    matchLabels:
      app: node-agent
  template:
    metadata:
      labels:
        app: node-agent
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: pause
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        command: ["svcnet", "agnhost", "pause"]
`

// TestWorkloads runs a StatefulSet behind a headless Service (stable names that
// resolve through the agent's cluster DNS, a deleted pod coming back under its
// name), a DaemonSet on the node, a Job from `kubectl create job` to completion
// and a CronJob's Job made by hand, with pods as processes of this machine.
func TestWorkloads(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "workloads.yaml"), workloadsManifest, 0o644))

	// The StatefulSet: web-0..2 in order, each Ready, rollout status done.
	if out := c.must("rollout", "status", "sts/web", "--timeout=90s"); !strings.Contains(out, "partitioned roll out complete: 3 new pods have been updated") {
		t.Errorf("rollout status sts/web: %q", out)
	}
	rows := wantHeader(t, c.must("get", "sts", "web"), "NAME", "READY", "AGE")
	if len(rows) != 1 || rows[0][1] != "3/3" {
		t.Fatalf("get sts rows %v", rows)
	}
	pods := c.must("get", "pods", "-l", "app=web", "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.spec.hostname}.{.spec.subdomain} {.metadata.labels.statefulset\.kubernetes\.io/pod-name} {.status.podIP}{"\n"}{end}`)
	ips := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(pods), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[1] != f[0]+".web" || f[2] != f[0] {
			t.Fatalf("statefulset pod line %q (want name, name.web, name, ip)", line)
		}
		ips[f[0]] = f[3]
	}
	if len(ips) != 3 || ips["web-0"] == "" || ips["web-1"] == "" || ips["web-2"] == "" {
		t.Fatalf("statefulset pods %v", ips)
	}
	created := func(name string) string {
		return c.must("get", "pod", name, "-o", "jsonpath={.metadata.creationTimestamp}")
	}
	if !(created("web-0") <= created("web-1") && created("web-1") <= created("web-2")) {
		t.Errorf("pods not created in ordinal order: %s %s %s", created("web-0"), created("web-1"), created("web-2"))
	}
	if body, err := httpGet("http://" + ips["web-1"] + ":8080/"); err != nil || body != "web-1" {
		t.Errorf("web-1 serves hostname %q, %v", body, err)
	}

	// Each pod has a DNS name through the headless Service, from the agent's DNS.
	dig := func(name string) string {
		out, _ := exec.Command("dig", "@10.96.0.10", "+short", "+tries=1", "+time=1", name).Output()
		return strings.TrimSpace(string(out))
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(timeout); !cond(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, timeout)
			}
		}
	}
	waitFor("web-0.web.default.svc.cluster.local -> web-0's IP", 20*time.Second, func() bool {
		return dig("web-0.web.default.svc.cluster.local") == ips["web-0"]
	})
	if got := dig("web-2.web.default.svc.cluster.local"); got != ips["web-2"] {
		t.Errorf("web-2.web: %q, want %s", got, ips["web-2"])
	}

	// A deleted pod comes back with its name (a new uid), Ready again.
	uid := c.must("get", "pod", "web-0", "-o", "jsonpath={.metadata.uid}")
	c.must("delete", "pod", "web-0", "--wait=false")
	waitKubectl(t, c, "web-0 back and ready", 60*time.Second, func(o string) bool {
		f := strings.Fields(o)
		return len(f) == 2 && f[0] != uid && f[1] == "True"
	}, "get", "pod", "web-0", "-o", `jsonpath={.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}`)
	waitFor("web-0's new IP in DNS", 20*time.Second, func() bool {
		ip := c.must("get", "pod", "web-0", "-o", "jsonpath={.status.podIP}")
		return ip != "" && dig("web-0.web.default.svc.cluster.local") == ip
	})

	// Scale down removes the highest ordinal.
	c.must("scale", "sts", "web", "--replicas=2")
	waitKubectl(t, c, "web scaled to 2", 30*time.Second, func(o string) bool { return strings.TrimSpace(o) == "pod/web-0\npod/web-1" },
		"get", "pods", "-l", "app=web", "-o", "name")

	// The DaemonSet: one pod, bound to the node.
	if out := c.must("rollout", "status", "ds/node-agent", "--timeout=60s"); !strings.Contains(out, `daemon set "node-agent" successfully rolled out`) {
		t.Errorf("rollout status ds: %q", out)
	}
	rows = wantHeader(t, c.must("get", "ds", "node-agent"), "NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR", "AGE")
	if len(rows) != 1 || strings.Join(rows[0][1:7], " ") != "1 1 1 1 1 <none>" {
		t.Fatalf("get ds rows %v", rows)
	}
	if got := c.must("get", "pods", "-l", "app=node-agent", "-o", "jsonpath={.items[*].spec.nodeName}"); got != "local" {
		t.Fatalf("daemon pods on nodes %q, want one on local", got)
	}

	// A Job from kubectl create job runs to completion.
	c.must("create", "job", "hello", "--image=busybox", "--", "echo", "hi")
	c.must("wait", "--for=condition=complete", "job/hello", "--timeout=60s")
	rows = wantHeader(t, c.must("get", "job", "hello"), "NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE")
	if len(rows) != 1 || rows[0][1] != "Complete" || rows[0][2] != "1/1" {
		t.Fatalf("get job rows %v", rows)
	}
	if got := c.must("logs", "job/hello"); strings.TrimSpace(got) != "hi" {
		t.Errorf("kubectl logs job/hello = %q", got)
	}
	if got := c.must("get", "job", "hello", "-o", `jsonpath={.spec.selector.matchLabels.batch\.kubernetes\.io/controller-uid}={.metadata.uid}`); len(strings.Split(got, "=")) != 2 ||
		strings.Split(got, "=")[0] == "" || strings.Split(got, "=")[0] != strings.Split(got, "=")[1] {
		t.Errorf("job selector uid/job uid: %q", got)
	}

	// A CronJob, and a Job made from it by hand.
	c.must("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", "--", "echo", "tick")
	rows = wantHeader(t, c.must("get", "cj", "tick"), "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE")
	if len(rows) != 1 || strings.Join(rows[0][1:10], " ") != "*/5 * * * * <none> False 0 <none>" {
		t.Fatalf("get cj rows %v", rows)
	}
	c.must("create", "job", "tick-now", "--from=cronjob/tick")
	c.must("wait", "--for=condition=complete", "job/tick-now", "--timeout=60s")

	t.Logf("kubectl get sts,ds,job,cj -o wide:\n%s", c.must("get", "sts,ds,job,cj", "-o", "wide"))

	// Deleting the owners deletes their pods.
	c.must("delete", "sts", "web", "--wait=false")
	c.must("delete", "ds", "node-agent", "--wait=false")
	c.must("delete", "job", "hello", "--wait=false")
	c.must("delete", "cronjob", "tick", "--wait=false")
	waitKubectl(t, c, "owned pods gone", 60*time.Second, func(o string) bool { return strings.TrimSpace(o) == "" },
		"get", "pods", "-o", "name")
}
