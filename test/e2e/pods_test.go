package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireCNI(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Fatalf("CNI plugins missing (scripts/test-deps.sh installs containernetworking-plugins): %v", err)
	}
}

// podState is what the agent records of a pod (internal/runtime's state.json).
type podState struct {
	Netns string `json:"netns"`
	Procs []struct {
		Pid int `json:"pid"`
	} `json:"procs"`
}

// agentPods reads the agent's records: pod uid -> state.
func agentPods(t *testing.T, root string) map[string]podState {
	t.Helper()
	out := map[string]podState{}
	entries, _ := os.ReadDir(filepath.Join(root, "pods"))
	for _, e := range entries {
		var st podState
		if data, err := os.ReadFile(filepath.Join(root, "pods", e.Name(), "state.json")); err == nil && json.Unmarshal(data, &st) == nil {
			out[e.Name()] = st
		}
	}
	return out
}

func isNetnsMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func httpGet(url string) (string, error) {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}} // a connection per request
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// ipamFiles lists the IPs host-local IPAM has handed out under root.
func ipamFiles(root string) []string {
	entries, _ := os.ReadDir(filepath.Join(root, "cni", "ipam", "svcnet"))
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

const workerPod = `apiVersion: v1
kind: Pod
metadata:
  name: worker
  labels: {app: worker}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "trap 'echo got SIGTERM; exit 0' TERM; echo started $(hostname) as $POD_NAME in $POD_NS; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    readinessProbe:
      exec: {command: ["test", "-f", "READY"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: worker}
spec:
  selector: {app: worker}
  ports: [{port: 80}]
`

// TestPodsRun is the node agent's pod runtime end to end on one node: `svcnet up`
// runs a Deployment's pods as processes with their own IPs, kubectl logs, exec
// and run work through the API server, probes and restarts behave as in
// Kubernetes, and nothing is left behind.
func TestPodsRun(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "agent")
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("create", "service", "clusterip", "early", "--tcp", "5678:8080")
	earlyIP := strings.TrimSpace(c.must("get", "svc", "early", "-o", "jsonpath={.spec.clusterIP}"))
	c.must("apply", "-f", filepath.Join(repoRoot(), "examples", "httpd.yaml"))

	// Three pods Running and Ready, with distinct IPs from the node's pod CIDR,
	// each answering on its IP with its own name.
	out := waitKubectl(t, c, "3 httpd pods ready", 90*time.Second, func(s string) bool { return strings.Count(s, " true\n") == 3 },
		"get", "pods", "-l", "app=httpd", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.status.containerStatuses[0].ready}{"\n"}{end}`)
	cidr := netip.MustParsePrefix(strings.TrimSpace(c.must("get", "node", "local", "-o", "jsonpath={.spec.podCIDR}")))
	seen := map[string]bool{}
	var first string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		name, ip := f[0], f[1]
		if first == "" {
			first = name
		}
		if seen[ip] || !cidr.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("pod %s has IP %s: duplicate or outside %s", name, ip, cidr)
		}
		seen[ip] = true
		body, err := httpGet("http://" + ip + ":8080/")
		if err != nil || body != name {
			t.Errorf("GET %s:8080 = %q, %v; want the pod name %q", ip, body, err, name)
		}
	}
	for _, row := range wantHeader(t, c.must("get", "pods", "-l", "app=httpd"), "NAME", "READY", "STATUS", "RESTARTS", "AGE") {
		if row[1] != "1/1" || row[2] != "Running" {
			t.Errorf("kubectl get pods row %v: want 1/1 Running", row)
		}
	}

	// logs, exec (service variables of a Service created before the pod, the
	// pod's resolv.conf, hostname, exit codes).
	if got := c.must("logs", first); !strings.Contains(got, "Serving on port 8080.") {
		t.Errorf("kubectl logs %s = %q", first, got)
	}
	env := c.must("exec", first, "--", "env")
	for _, want := range []string{"EARLY_SERVICE_HOST=" + earlyIP, "EARLY_SERVICE_PORT=5678", "EARLY_PORT=tcp://" + earlyIP + ":5678",
		"EARLY_PORT_5678_TCP_ADDR=" + earlyIP, "EARLY_PORT_5678_TCP_PROTO=tcp", "KUBERNETES_SERVICE_HOST=10.96.0.1", "HOSTNAME=" + first} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("kubectl exec -- env lacks %s:\n%s", want, env)
		}
	}
	resolv := c.must("exec", first, "--", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local", "options ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("pod resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	if got := strings.TrimSpace(c.must("exec", first, "--", "hostname")); got != first {
		t.Errorf("hostname in the pod = %q, want %q", got, first)
	}
	if _, errOut, err := c.kubectl("exec", first, "--", "sh", "-c", "exit 3"); err == nil || !strings.Contains(errOut, "command terminated with exit code 3") {
		t.Errorf("exec exit 3: err %v, stderr %q", err, errOut)
	}

	// kubectl run --rm -i: a fresh pod with the cluster's DNS, attached, then deleted.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := exec.CommandContext(ctx, kubectlBin, "run", "tmp", "--rm", "-i", "--image=busybox", "--restart=Never", "--", "sh")
	run.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+dir)
	run.Stdin = strings.NewReader("getent hosts httpd-svc\nexit\n")
	var runOut bytes.Buffer
	run.Stdout, run.Stderr = &runOut, &runOut
	svcIP := strings.TrimSpace(c.must("get", "svc", "httpd-svc", "-o", "jsonpath={.spec.clusterIP}"))
	if err := run.Run(); err != nil || !regexp.MustCompile(regexp.QuoteMeta(svcIP)+`\s+httpd-svc\.default\.svc\.cluster\.local`).MatchString(runOut.String()) ||
		!strings.Contains(runOut.String(), `pod "tmp" deleted`) {
		t.Errorf("kubectl run --rm -i: %v\n%s", err, runOut.String())
	}

	// Readiness: a failing probe keeps the pod out of the Service's endpoints.
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "worker.yaml"), strings.ReplaceAll(workerPod, "READY", filepath.Join(dir, "ready")), 0o644))
	waitKubectl(t, c, "worker running, not ready", 30*time.Second, func(s string) bool { return s == "Running false" },
		"get", "pod", "worker", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].ready}")
	workerIP := strings.TrimSpace(c.must("get", "pod", "worker", "-o", "jsonpath={.status.podIP}"))
	if got := c.must("get", "endpoints", "worker"); !strings.Contains(got, "<none>") {
		t.Errorf("endpoints of an unready pod:\n%s", got)
	}
	writeFile(t, filepath.Join(dir, "ready"), "", 0o644)
	start := time.Now()
	waitKubectl(t, c, "worker in endpoints", 10*time.Second, func(s string) bool { return strings.Contains(s, workerIP+":80") }, "get", "endpoints", "worker")
	t.Logf("probe passing -> endpoint listed: %v", time.Since(start).Round(time.Millisecond))
	os.Remove(filepath.Join(dir, "ready"))
	waitKubectl(t, c, "worker out of endpoints", 10*time.Second, func(s string) bool { return strings.Contains(s, "<none>") }, "get", "endpoints", "worker")
	waitKubectl(t, c, "worker READY 0/1", 10*time.Second, func(s string) bool { return strings.Contains(s, " 0/1 ") }, "get", "pod", "worker")
	writeFile(t, filepath.Join(dir, "ready"), "", 0o644)
	waitKubectl(t, c, "worker back in endpoints", 10*time.Second, func(s string) bool { return strings.Contains(s, workerIP+":80") }, "get", "endpoints", "worker")

	// Logs: fieldRef env, --tail, -f.
	logs := c.must("logs", "worker")
	if !strings.Contains(logs, "started worker as worker in default\n") {
		t.Errorf("worker log:\n%s", logs)
	}
	if tail := strings.Split(strings.TrimSpace(c.must("logs", "worker", "--tail=2")), "\n"); len(tail) != 2 || !strings.HasPrefix(tail[1], "tick ") {
		t.Errorf("logs --tail=2 = %q", tail)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
	follow := exec.CommandContext(fctx, kubectlBin, "logs", "-f", "worker", "--tail=1")
	follow.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+dir)
	fout, _ := follow.Output()
	fcancel()
	if n := strings.Count(string(fout), "tick "); n < 4 {
		t.Errorf("logs -f for 2s gave %d lines, want the ticks as they come:\n%s", n, fout)
	}

	// A killed process restarts: RESTARTS goes to 1 and --previous shows the old log.
	uid := strings.TrimSpace(c.must("get", "pod", "worker", "-o", "jsonpath={.metadata.uid}"))
	st := agentPods(t, root)[uid]
	if len(st.Procs) != 1 {
		t.Fatalf("agent state of worker: %+v", st)
	}
	oldPid := st.Procs[0].Pid
	if err := syscall.Kill(oldPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitKubectl(t, c, "worker restarted", 15*time.Second, func(s string) bool { return s == "1 true 137" },
		"get", "pod", "worker", "-o", "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].started} {.status.containerStatuses[0].lastState.terminated.exitCode}")
	if row := wantHeader(t, c.must("get", "pod", "worker"), "NAME", "READY", "STATUS", "RESTARTS", "AGE"); !strings.HasPrefix(row[0][3], "1") {
		t.Errorf("RESTARTS column %q, want 1", row[0][3])
	}
	if prev := c.must("logs", "worker", "--previous"); !strings.Contains(prev, "started worker") {
		t.Errorf("logs --previous:\n%s", prev)
	}

	// Deletion: SIGTERM (the trap exits at once), process and IP gone.
	time.Sleep(300 * time.Millisecond)
	st = agentPods(t, root)[uid]
	pid := st.Procs[0].Pid
	start = time.Now()
	c.must("delete", "pod", "worker")
	took := time.Since(start)
	if took > 5*time.Second {
		t.Errorf("delete took %v, more than the 5s grace period", took)
	}
	if alive(pid) {
		t.Errorf("worker process %d still alive after delete", pid)
	}
	for _, ip := range ipamFiles(root) {
		if ip == workerIP {
			t.Errorf("worker IP %s still allocated after delete", ip)
		}
	}
	if isNetnsMount("/var/run/netns/" + st.Netns) {
		t.Errorf("worker network namespace %s still exists", st.Netns)
	}

	// A container without a command cannot run here: a clear reason.
	c.must("run", "nocmd", "--image=nginx", "--restart=Never")
	waitKubectl(t, c, "nocmd CreateContainerError", 15*time.Second, func(s string) bool { return strings.Contains(s, "CreateContainerError") }, "get", "pod", "nocmd")
	msg := c.must("get", "pod", "nocmd", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}")
	if !strings.Contains(msg, `cannot pull image "nginx"`) || !strings.Contains(msg, "set command") {
		t.Errorf("waiting message: %q", msg)
	}

	// Nothing leaks: after the deployment goes and the cluster stops, no pod
	// processes, namespaces, veths or IPs remain.
	var pids []int
	var netnss []string
	for _, st := range agentPods(t, root) {
		for _, p := range st.Procs {
			pids = append(pids, p.Pid)
		}
		netnss = append(netnss, st.Netns)
	}
	c.must("delete", "deployment", "httpd")
	c.must("delete", "pod", "nocmd")
	waitKubectl(t, c, "pods gone", 30*time.Second, func(s string) bool { return strings.TrimSpace(s) == "" }, "get", "pods", "-o", "name")
	c.stop()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pod process %d alive after the cluster stopped", pid)
		}
	}
	for _, n := range netnss {
		if n != "" && isNetnsMount("/var/run/netns/"+n) {
			t.Errorf("pod network namespace %s left behind", n)
		}
	}
	if ips := ipamFiles(root); len(ips) > 0 {
		t.Errorf("IPs still allocated: %v", ips)
	}
	links, _ := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if strings.TrimSpace(string(links)) != "" {
		t.Errorf("veths left in the node namespace:\n%s", links)
	}
}

// TestPodsAcrossNodes runs a control plane and two agents, each node its own
// network namespace on a shared bridge: a pod on node A reaches a pod on node B
// by its pod IP, without NAT (host-gw routes between the nodes' pod CIDRs).
func TestPodsAcrossNodes(t *testing.T) {
	dir := t.TempDir()
	b := newBridge(t, "svce2ebr", "192.168.77.")
	cp, startAgent := podServer(t, b, dir)
	nodes := map[string]string{"node-a": "192.168.77.1", "node-b": "192.168.77.2"}
	netns := map[string]string{}
	for name, ip := range nodes {
		netns[name] = b.node(name, int(netip.MustParseAddr(ip).As4()[3]))
		startAgent(netns[name], name, ip)
	}
	for name := range nodes {
		cp.must("apply", "-f", writeFile(t, filepath.Join(dir, name+".yaml"), pinnedNetexec("pod-"+name, name), 0o644))
	}
	out := waitKubectl(t, cp, "pods on both nodes running", 60*time.Second, func(s string) bool { return strings.Count(s, "Running") == 2 },
		"get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName} {.status.phase}{"\n"}{end}`)
	ips := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		ips[f[0]] = f[1]
	}
	if netip.MustParsePrefix("10.244.0.0/16").Contains(netip.MustParseAddr(ips["pod-node-a"])) == false ||
		netip.MustParseAddr(ips["pod-node-a"]).As4()[2] == netip.MustParseAddr(ips["pod-node-b"]).As4()[2] {
		t.Fatalf("pods should have IPs from two different node pod CIDRs: %v", ips)
	}
	deadline := time.Now().Add(20 * time.Second)
	var got string
	var errOut string
	for time.Now().Before(deadline) { // routes follow the Node objects
		got, errOut, _ = cp.kubectl("exec", "pod-node-a", "--", "svcnet", "agnhost", "get", "--timeout", "2s", "http://"+ips["pod-node-b"]+":8080/clientip")
		if strings.HasPrefix(got, ips["pod-node-a"]+":") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.HasPrefix(got, ips["pod-node-a"]+":") {
		t.Fatalf("pod A -> pod B /clientip = %q (%s); want pod A's own IP (no NAT)", got, errOut)
	}
	if host := cp.must("exec", "pod-node-b", "--", "svcnet", "agnhost", "get", "http://"+ips["pod-node-a"]+":8080/hostname"); host != "pod-node-a" {
		t.Errorf("pod B -> pod A /hostname = %q", host)
	}
	// --pod-network auto: node B is on node A's subnet, so a direct route, no tunnel.
	cidrB := cp.must("get", "node", "node-b", "-o", "jsonpath={.spec.podCIDR}")
	if route, _ := exec.Command("ip", "-n", netns["node-a"], "route", "show", cidrB).CombinedOutput(); !strings.Contains(string(route), "via 192.168.77.2 dev eth0") {
		t.Errorf("node A's route to %s: %q, want via 192.168.77.2 dev eth0 (host-gw)", cidrB, route)
	}

	// A DaemonSet runs one pod on each of the two nodes.
	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "ds.yaml"), `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - name: pause
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        command: ["svcnet", "agnhost", "pause"]
`, 0o644))
	cp.must("rollout", "status", "ds/agent", "--timeout=60s")
	if got := cp.must("get", "pods", "-l", "app=agent", "-o", `jsonpath={range .items[*]}{.spec.nodeName} {.status.phase},{end}`); got != "node-a Running,node-b Running," &&
		got != "node-b Running,node-a Running," {
		t.Errorf("DaemonSet pods: %q, want one Running on each node", got)
	}
}
