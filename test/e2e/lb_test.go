package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadBalancer: with `svcnet up --load-balancer-pool`, a LoadBalancer
// Service gets the pool's first address (EXTERNAL-IP in kubectl get svc); two
// joined nodes on one bridge elect an announcer, a client namespace on the
// bridge reaches the address; when the announcing node dies (process killed,
// link down) the other node takes over and the client reaches it again; the
// failover time is logged. Nodes may write Leases only in kube-system and their
// own in kube-node-lease.
func TestLoadBalancer(t *testing.T) {
	dir := t.TempDir()
	b := newBridge(t, "svce2elbr", "192.168.80.")
	cp, jl := startJoinable(t, b, filepath.Join(dir, "cp"), "--load-balancer-pool", "192.168.80.240-192.168.80.250")
	server, token, hash := jl[0], jl[1], jl[2]

	// The backend: a hostname server on the bridge address (outside the nodes).
	backendPort := freePort(t)
	backend := exec.Command(svcnetBin, "agnhost", "serve-hostname", "--port", fmt.Sprint(backendPort))
	if err := backend.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backend.Process.Kill(); _ = backend.Wait() })

	nodes := map[string]*cluster{}
	for i, name := range []string{"lb-a", "lb-b"} {
		ns := b.node(name, i+1)
		if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
			t.Fatalf("ip_forward: %v %s", err, out)
		}
		nodeDir := filepath.Join(dir, name)
		nodes[name] = startCommand(t, nodeDir, cp.port, "", "svcnet agent: node "+name+" registered", []string{"ip", "netns", "exec", ns, svcnetBin,
			"join", server, "--token", token, "--ca-cert-hash", hash, "--node-name", name, "--data-dir", nodeDir,
			"--pod-runtime=off", "--container-runtime=process", "--proxy-mode=nftables", "--ingress=false", "--dns-resolv-conf", "",
			"--healthz-bind-address", "", "--metrics-bind-address", ""})
	}
	client := b.node("lbcl", 100)

	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "web.yaml"), fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80, targetPort: %[1]d}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: %[1]d, protocol: TCP}]
endpoints: [{addresses: ["192.168.80.254"], conditions: {ready: true}}]
`, backendPort), 0o644))
	waitKubectl(t, cp, "EXTERNAL-IP from the pool", 30*time.Second, func(s string) bool {
		rows := table(s)
		return len(rows) == 2 && len(rows[1]) > 3 && rows[1][3] == "192.168.80.240"
	}, "get", "svc", "web")
	if got := cp.must("get", "lbpool", "default", "-o", "jsonpath={.spec.addresses}"); !strings.Contains(got, "192.168.80.240-192.168.80.250") {
		t.Errorf("LoadBalancerPool default: %s", got)
	}

	get := func(timeout string) error {
		out, err := exec.Command("ip", "netns", "exec", client, svcnetBin, "agnhost", "get", "--timeout", timeout, "http://192.168.80.240/").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = get("1s"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("client -> 192.168.80.240: %v\n%s", err, cp.must("get", "lease", "-n", "kube-system"))
	}
	holder := cp.must("get", "lease", "-n", "kube-system", "svcnet-l2-default-web", "-o", "jsonpath={.spec.holderIdentity}")
	other := map[string]string{"lb-a": "lb-b", "lb-b": "lb-a"}[holder]
	if other == "" {
		t.Fatalf("lease holder %q", holder)
	}

	// Nodes hold announcement Leases in kube-system only (a Role there), their own in
	// kube-node-lease (the Node authorizer), and no Lease anywhere else.
	for ns, want := range map[string]string{"kube-system": "yes", "default": "no", "kube-public": "no"} {
		out, _, _ := cp.kubectl("auth", "can-i", "create", "leases", "-n", ns, "--as", "system:node:"+holder, "--as-group", "system:nodes")
		if got, _, _ := strings.Cut(strings.TrimSpace(out), " "); got != want { // "no - <reason>"
			t.Errorf("node %s can-i create leases -n %s: %q, want %q", holder, ns, got, want)
		}
	}
	if out, _, _ := cp.kubectl("auth", "can-i", "update", "leases/"+holder, "-n", "kube-node-lease", "--as", "system:node:"+holder, "--as-group", "system:nodes"); strings.TrimSpace(out) != "yes" {
		t.Errorf("node %s cannot update its own Lease in kube-node-lease: %q", holder, out)
	}

	// The announcing node dies: its process is killed and its link goes down.
	_ = nodes[holder].cmd.Process.Kill()
	if out, err := exec.Command("ip", "link", "set", "v"+holder, "down").CombinedOutput(); err != nil {
		t.Fatalf("link down: %v %s", err, out)
	}
	start := time.Now()
	failed := 0
	for deadline := start.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = get("250ms"); err == nil {
			break
		}
		failed++
	}
	if err != nil {
		t.Fatalf("client -> 192.168.80.240 after %s died: %v", holder, err)
	}
	t.Logf("failover: the client reached the load-balancer IP again %v after the announcing node died (%d failed requests of 250ms timeout)", time.Since(start).Round(10*time.Millisecond), failed)
	if got := cp.must("get", "lease", "-n", "kube-system", "svcnet-l2-default-web", "-o", "jsonpath={.spec.holderIdentity}"); got != other {
		t.Errorf("lease holder after failover %q, want %q", got, other)
	}
}
