package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svcnet/svcnet/internal/podnet"
)

// noRunPod creates a pod and waits until the agent has said on it why it does
// not run: the PodReadyToStartContainers condition and one Warning event.
func noRunPod(t *testing.T, c *cluster, name, want string) {
	t.Helper()
	c.must("run", name, "--image=busybox", "--restart=Never", "--command", "--", "sleep", "3600")
	msg := waitKubectl(t, c, name+" condition", 30*time.Second, func(s string) bool { return s != "" },
		"get", "pod", name, "-o", `jsonpath={.status.conditions[?(@.type=="PodReadyToStartContainers")].message}`)
	if !strings.Contains(msg, want) {
		t.Errorf("%s: condition message %q, want it to say %q", name, msg, want)
	}
	if phase := c.must("get", "pod", name, "-o", "jsonpath={.status.phase}"); phase != "Pending" {
		t.Errorf("%s: phase %q, want Pending", name, phase)
	}
	describe := c.must("describe", "pod", name)
	if !strings.Contains(describe, "Warning  PodRuntimeUnavailable") {
		t.Errorf("%s: kubectl describe shows no PodRuntimeUnavailable warning:\n%s", name, describe)
	}
}

// podEvents counts the PodRuntimeUnavailable events of each pod.
func podEvents(c *cluster) map[string]int {
	out := c.must("get", "events", "-o", `jsonpath={range .items[*]}{.involvedObject.name} {.reason}{"\n"}{end}`)
	n := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] == "PodRuntimeUnavailable" {
			n[f[0]]++
		}
	}
	return n
}

// TestPreflightWithoutCNIPlugins starts `svcnet up` as root with the pod
// runtime on but no CNI plugins (an empty --cni-bin-dir): the agent says once
// what is missing and how to install it, keeps serving without running pods,
// tells each pod why in one condition and one event, and leaves no network
// namespace behind.
func TestPreflightWithoutCNIPlugins(t *testing.T) {
	dir := t.TempDir()
	empty := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--container-runtime=process", "--cni-bin-dir", empty,
		"--node-name", "local", "--dns-resolv-conf", "")
	const fix = "apt-get install containernetworking-plugins"
	noRunPod(t, c, "p1", "missing CNI plugins bridge, host-local, loopback in "+empty+" (--cni-bin-dir): pods get no network; fix: "+fix)
	noRunPod(t, c, "p2", fix)
	c.must("label", "pod", "p1", "touched=yes") // an update writes nothing more
	time.Sleep(2 * time.Second)
	if n := podEvents(c); n["p1"] != 1 || n["p2"] != 1 {
		t.Errorf("PodRuntimeUnavailable events per pod = %v, want 1 each", n)
	}
	logs := c.logs()
	if n := strings.Count(logs, "preflight: missing CNI plugins"); n != 1 {
		t.Errorf("the preflight warning is logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, `fix="`+fix+`"`) {
		t.Errorf("the log does not name the fix %q:\n%s", fix, logs)
	}
	if strings.Contains(logs, "pod network setup failed") {
		t.Errorf("the agent still tries to set up pod networks:\n%s", logs)
	}
	for _, p := range []string{"p1", "p2"} {
		uid := c.must("get", "pod", p, "-o", "jsonpath={.metadata.uid}")
		if _, err := os.Lstat(podnet.NetnsPath("svcnet-" + uid)); !os.IsNotExist(err) {
			t.Errorf("network namespace of %s left: %v", p, err)
		}
	}
	// Deleting a pod that never ran is confirmed at once.
	c.must("delete", "pod", "p1", "--timeout=20s")
}

// TestPreflightWithoutRoot runs `svcnet up` as an unprivileged user: the
// cluster comes up, pods are scheduled to the node, and each says in a
// condition and one event that it does not run for want of root.
func TestPreflightWithoutRoot(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil { // t.TempDir's parent is 0700
		t.Fatal(err)
	}
	port := freePort(t)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	want := "svcnet is up at https://127.0.0.1:" + strconv.Itoa(port) + ". Use it with: export KUBECONFIG=" + kubeconfig + "; kubectl get svc"
	c := startCommand(t, dir, port, kubeconfig, want, []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", "--", svcnetBin, "up", "--data-dir", dir, "--secure-port", strconv.Itoa(port), "--node-name", "local",
		"--dns-resolv-conf", ""})
	noRunPod(t, c, "p1", "pods bound to node local do not run: missing root privileges: the svcnet agent runs as uid 65534")
	time.Sleep(time.Second)
	if n := podEvents(c); n["p1"] != 1 {
		t.Errorf("PodRuntimeUnavailable events = %v, want 1 for p1", n)
	}
	if n := strings.Count(c.logs(), "preflight: missing root privileges"); n != 1 {
		t.Errorf("the preflight warning is logged %d times, want once:\n%s", n, c.logs())
	}
}
