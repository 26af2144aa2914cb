package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Reference binaries (Kubernetes' own components) are built outside the repo by
// refbuild.sh, which takes longer than CI's time budget: without them the tests
// that need them skip.
const (
	envRefBin     = "SVCNET_REF_BIN"
	defaultRefBin = "/var/cache/svcnet-reference"
	refBuild      = "/work/shared/reference/refbuild.sh"

	// kubeProxyRun is how long kube-proxy runs against svcnet: a reflector whose
	// list fails retries within a few seconds, so errors would show in this time.
	kubeProxyRun = 20 * time.Second
	// kubeProxyStop bounds how long kube-proxy may take to exit on SIGTERM.
	kubeProxyStop = 10 * time.Second
)

// refBinary returns the path of a reference binary, or skips the test naming the
// command that builds it.
func refBinary(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv(envRefBin)
	if dir == "" {
		dir = defaultRefBin
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("reference %s not found at %s (build it with: REF_BIN=%s bash %s; ~10 minutes on 2 cores; $%s names another directory)",
			name, p, dir, refBuild, envRefBin)
		if os.Getenv("CI") == "true" {
			msg += "; skipped under CI=true too: CI cannot build it within its time budget"
		}
		t.Skip(msg)
	}
	return p
}

// The Services and EndpointSlices kube-proxy is given: one with a ready
// endpoint, a NodePort one, and one without endpoints. No selectors, so the
// slices are ours, not the endpointslice controller's.
const kubeProxyObjects = `apiVersion: v1
kind: Service
metadata: {name: kp-web}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kp-web-1
  labels: {kubernetes.io/service-name: kp-web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.244.7.10]
  conditions: {ready: true}
---
apiVersion: v1
kind: Service
metadata: {name: kp-nodeport}
spec:
  type: NodePort
  ports: [{name: dns, port: 53, targetPort: 5353, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kp-nodeport-1
  labels: {kubernetes.io/service-name: kp-nodeport}
addressType: IPv4
ports: [{name: dns, port: 5353, protocol: UDP}]
endpoints:
- addresses: [10.244.7.11]
  conditions: {ready: true}
- addresses: [10.244.7.12]
  conditions: {ready: true}
---
apiVersion: v1
kind: Service
metadata: {name: kp-empty}
spec:
  ports: [{port: 81, targetPort: 8081}]
`

// kubeProxyErrors are what kube-proxy logs when svcnet fails it: klog error lines
// (E<mmdd>), failed reflector lists, unserved resources, RBAC refusals.
var kubeProxyErrors = regexp.MustCompile(`(?mi)^E\d{4} .*$|^.*(failed to list|could not find the requested resource|forbidden).*$`)

// kubeProxy is a running reference kube-proxy with its log.
type kubeProxy struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

func (k *kubeProxy) logs() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.log.String()
}

// stop ends this kube-proxy by its pid: SIGTERM, then SIGKILL when it lingers.
func (k *kubeProxy) stop(t *testing.T) {
	terminate(t, "kube-proxy", k.cmd, k.done, kubeProxyStop)
}

// kubeProxyRules returns kube-proxy's nftables tables in this namespace.
func kubeProxyRules() string {
	var b strings.Builder
	for _, family := range []string{"ip", "ip6"} {
		out, _ := exec.Command("nft", "list", "table", family, "kube-proxy").CombinedOutput()
		b.Write(out)
	}
	return b.String()
}

// TestRealKubeProxy: Kubernetes' own kube-proxy v1.34 (nftables mode, identity
// system:kube-proxy through the default system:node-proxier binding) runs
// against svcnet's API server, programs the Services, EndpointSlices and the
// ServiceCIDR it is given, and logs no error. svcnet's own proxy is off so the
// two do not fight; kube-proxy programs only this test's network namespace.
func TestRealKubeProxy(t *testing.T) {
	bin := refBinary(t, "kube-proxy")
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("kube-proxy's nftables mode needs the nft command; run scripts/test-deps.sh")
	}
	dir := t.TempDir()
	port := freePort(t)
	// A node has an address besides loopback: kube-proxy accepts NodePorts on the
	// node's primary IP and refuses loopback ones (an error line in its log). The
	// address sits on lo (no dummy links here): nothing leaves the namespace.
	const nodeIP = "192.0.2.10" // TEST-NET-1
	if out, err := exec.Command("ip", "addr", "add", nodeIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add %s dev lo: %v %s", nodeIP, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "addr", "del", nodeIP+"/32", "dev", "lo").Run() })
	c := startCluster(t, dir, port, "--proxy-mode=none", "--advertise-address", nodeIP)
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	kubeconfig := userKubeconfig(t, dir, server, "system:kube-proxy")
	node := c.must("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
	serviceCIDR := c.must("get", "servicecidr", "kubernetes", "-o", "jsonpath={.spec.cidrs[0]}")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "kp.yaml"), kubeProxyObjects, 0o644))
	webIP := c.must("get", "svc", "kp-web", "-o", "jsonpath={.spec.clusterIP}")
	emptyIP := c.must("get", "svc", "kp-empty", "-o", "jsonpath={.spec.clusterIP}")
	if node == "" || serviceCIDR == "" || webIP == "" || emptyIP == "" {
		t.Fatalf("node %q, service CIDR %q, cluster IPs %q %q", node, serviceCIDR, webIP, emptyIP)
	}

	kp := &kubeProxy{done: make(chan struct{})}
	// Conntrack flags at 0: kube-proxy leaves the conntrack sysctls alone
	// (nf_conntrack_max and its hashsize are not this namespace's to change).
	kp.cmd = exec.Command(bin, "--kubeconfig", kubeconfig, "--hostname-override", node,
		"--proxy-mode=nftables", // --nodeport-addresses defaults to primary there: the node's IP
		// kube-proxy refuses port 0 here: free ports instead.
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", freePort(t)), fmt.Sprintf("--healthz-bind-address=127.0.0.1:%d", freePort(t)),
		"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"-v=2")
	kp.cmd.Stdout, kp.cmd.Stderr = lockedWriter{&kp.mu, &kp.log}, lockedWriter{&kp.mu, &kp.log}
	t.Logf("running %s", strings.Join(kp.cmd.Args, " "))
	if err := kp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	go func() { _ = kp.cmd.Wait(); close(kp.done) }()
	t.Cleanup(func() {
		kp.stop(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, bin, "--cleanup", "--proxy-mode=nftables").CombinedOutput(); err != nil {
			t.Errorf("kube-proxy --cleanup: %v\n%s", err, out)
		}
		if out, err := exec.Command("nft", "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), "kube-proxy") {
			t.Errorf("kube-proxy's tables remain after --cleanup (%v):\n%s", err, out)
		}
		if t.Failed() {
			t.Logf("kube-proxy log:\n%s", kp.logs())
		}
	})

	// kube-proxy has synced once its table holds the cluster IPs, the endpoints,
	// the node's IP (NodePorts) and the ServiceCIDR (from the ServiceCIDR informer
	// that used to fail).
	want := []string{webIP, emptyIP, "10.244.7.10", "10.244.7.12", serviceCIDR, nodeIP}
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, kubeProxyRun, true,
		func(context.Context) (bool, error) {
			select {
			case <-kp.done:
				return false, fmt.Errorf("kube-proxy exited: %v", kp.cmd.ProcessState)
			default:
			}
			rules := kubeProxyRules()
			for _, w := range want {
				if !strings.Contains(rules, w) {
					return false, nil
				}
			}
			return true, nil
		})
	if err != nil {
		t.Fatalf("kube-proxy's nftables rules never held %v: %v\n%s", want, err, kubeProxyRules())
	}

	// Let it run for the rest of its time: reflector errors repeat within it.
	select {
	case <-kp.done:
		t.Fatalf("kube-proxy exited: %v", kp.cmd.ProcessState)
	case <-time.After(time.Until(started.Add(kubeProxyRun))):
	}
	log := kp.logs()
	if !strings.Contains(log, "SyncProxyRules complete") {
		t.Errorf("kube-proxy never logged a completed sync")
	}
	if bad := kubeProxyErrors.FindAllString(log, -1); len(bad) > 0 {
		t.Errorf("kube-proxy logged %d error lines:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	// Its "Starting" event went through events.k8s.io/v1 and reads back in both groups.
	for _, resource := range []string{"events.events.k8s.io", "events"} {
		if out := c.must("get", resource, "-o", "jsonpath={range .items[*]}{.reason}/{.reportingComponent}{.reportingController} {end}"); !strings.Contains(out, "Starting/kube-proxy") {
			t.Errorf("kubectl get %s: no Starting event from kube-proxy: %q", resource, out)
		}
	}
	warnings := regexp.MustCompile(`(?m)^W\d{4} .*$`).FindAllString(log, -1)
	t.Logf("kube-proxy ran %v against svcnet; %d warning lines%s; nftables:\n%s", kubeProxyRun, len(warnings),
		strings.Join(append([]string{""}, warnings...), "\n"), grepLines(kubeProxyRules(), webIP, serviceCIDR, nodeIP))
}
