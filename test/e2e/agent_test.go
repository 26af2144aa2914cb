package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAgentJoinsAndDies(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, dir, port, "--node-monitor-grace-period", "2s", "--node-name", "local")
	rows := wantHeader(t, c.must("get", "nodes"), "NAME", "STATUS", "ROLES", "AGE", "VERSION")
	if len(rows) != 1 || rows[0][0] != "local" || rows[0][1] != "Ready" || rows[0][4] != "v1.37.2-svcnet" {
		t.Fatalf("svcnet up's own node: %v", rows)
	}

	// A second node joins with its own identity and serves cluster DNS.
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	out, err := exec.Command(svcnetBin, "kubeconfig", "--data-dir", dir, "--server", server, "--user", "system:node:agent-b").Output()
	if err != nil {
		t.Fatal(err)
	}
	kc := writeFile(t, filepath.Join(dir, "agent-b.kubeconfig"), string(out), 0o600)
	args := []string{"agent", "--kubeconfig", kc, "--node-name", "agent-b", "--node-ip", "192.0.2.20",
		"--cluster-dns-listen", "10.96.0.53:53", "--dns-resolv-conf", "", "--node-lease-duration", "2s", "--pod-runtime=off", "--proxy-mode=none"}
	agent := startProcess(t, dir, 0, kc, "svcnet agent: node agent-b registered", args...)
	ready := func(o string) bool { return strings.Count(o, " Ready ") == 2 }
	waitKubectl(t, c, "two Ready nodes", 20*time.Second, ready, "get", "nodes")
	cidrs := waitKubectl(t, c, "pod CIDRs", 20*time.Second, func(o string) bool { return len(strings.Fields(o)) == 2 },
		"get", "nodes", "-o", "jsonpath={.items[*].spec.podCIDR}")
	if f := strings.Fields(cidrs); f[0] == f[1] || !strings.HasPrefix(f[0], "10.244.") {
		t.Fatalf("pod CIDRs %q", cidrs)
	}
	if ip := c.must("get", "node", "agent-b", "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"); ip != "192.0.2.20" {
		t.Fatalf("InternalIP %q", ip)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s", what)
			}
		}
	}
	waitFor("DNS in the agent", func() bool {
		out, _ := exec.Command("dig", "@10.96.0.53", "+short", "+tries=1", "+time=1", "kubernetes.default.svc.cluster.local").Output()
		return strings.TrimSpace(string(out)) == "10.96.0.1"
	})
	// The node's identity cannot write other nodes.
	if _, e, err := c.kubectl("--kubeconfig", kc, "label", "node", "local", "x=y"); err == nil || !strings.Contains(e, "Forbidden") {
		t.Fatalf("node identity labelled another node: %v %s", err, e)
	}

	if out, err := exec.Command("ip", "-o", "addr", "show").CombinedOutput(); err != nil || !strings.Contains(string(out), "10.96.0.53/32") {
		t.Fatalf("cluster DNS address not on an interface (svcnet-dns, or lo without dummy links): %v %s", err, out)
	}
	// The agent stops: its node is NotReady within the grace period.
	agent.stop()
	if out, _ := exec.Command("ip", "-o", "addr", "show").CombinedOutput(); strings.Contains(string(out), "10.96.0.53/32") {
		t.Fatalf("cluster DNS address left behind after the agent stopped:\n%s", out)
	}
	stopped := time.Now()
	waitKubectl(t, c, "agent-b NotReady", 15*time.Second, func(o string) bool { return strings.Contains(o, "NotReady") }, "get", "node", "agent-b")
	t.Logf("agent-b NotReady %v after its agent stopped (grace 2s, lease renewed every 0.5s)", time.Since(stopped).Round(10*time.Millisecond))
	if took := time.Since(stopped); took > 5*time.Second {
		t.Fatalf("NotReady after %v", took)
	}
	// It comes back.
	startProcess(t, dir, 0, kc, "svcnet agent: node agent-b registered", args...)
	waitKubectl(t, c, "agent-b Ready again", 20*time.Second, ready, "get", "nodes")
}
