package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// inNetns runs f on a thread moved into the named network namespace.
func inNetns(nsName string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread is not unlocked: it dies with its namespace
		h, err := netns.GetFromName(nsName)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// clientNetns makes a namespace for a machine outside the node: 192.168.50.2,
// linked to the node's 192.168.50.1 by a veth; both go when the test ends.
func clientNetns(t *testing.T) string {
	t.Helper()
	client := fmt.Sprintf("svcnet-e2e-client-%d", os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", client},
		{"-n", client, "link", "set", "lo", "up"},
		{"link", "add", "svce2ecl", "type", "veth", "peer", "name", "eth0", "netns", client},
		{"addr", "add", "192.168.50.1/24", "dev", "svce2ecl"},
		{"link", "set", "svce2ecl", "up"},
		{"-n", client, "addr", "add", "192.168.50.2/24", "dev", "eth0"},
		{"-n", client, "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", client).Run() })
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "svce2ecl").Run() })
	return client
}

// getPath sends GET path to addr from inside nsName and returns the body.
func getPath(nsName, addr, path string) (string, error) {
	var body string
	err := inNetns(nsName, func() error {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		body = string(b)
		return nil
	})
	return body, err
}

// udpAsk sends msg to addr from local port lport and returns the reply.
func udpAsk(lport int, addr, msg string) (string, error) {
	conn, err := net.DialUDP("udp", &net.UDPAddr{Port: lport}, net.UDPAddrFromAddrPort(netipAddrPort(addr)))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	return string(buf[:n]), err
}

const netexecApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: netexec}
spec:
  replicas: 1
  selector: {matchLabels: {app: netexec}}
  template:
    metadata: {labels: {app: netexec}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: netexec
        image: svcnet/agnhost
        command: ["svcnet", "agnhost", "netexec", "--http-port", "8080", "--udp-port", "8081"]
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: netexec}
  ports: [{name: http, port: 8080, nodePort: 30000}]
---
apiVersion: v1
kind: Service
metadata: {name: lb-local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: netexec}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: udp}
spec:
  selector: {app: netexec}
  ports: [{name: udp, port: 53, targetPort: 8081, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: httpd}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
`

// TestServiceProxyNftables runs `svcnet up` with pods and the nftables proxy in
// the test namespace (the node) and a client namespace on a veth (an outside
// machine): cluster IPs from the node and from pods with requests spread over
// the pods, node ports from outside, Local policy keeping the client address,
// affinity, refusal without endpoints, UDP across an endpoint change.
func TestServiceProxyNftables(t *testing.T) { testServiceProxy(t, "nftables") }

// TestServiceProxyUserspace is the same with the userspace backend (cluster IPs
// on a local interface, Go listeners), plus a pod SIGKILLed under load.
func TestServiceProxyUserspace(t *testing.T) { testServiceProxy(t, "userspace") }

func testServiceProxy(t *testing.T, mode string) {
	requireCNI(t)
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--proxy-mode="+mode, "--node-name", "local", "--dns-resolv-conf", "")
	client := clientNetns(t)
	c.must("apply", "-f", filepath.Join(repoRoot(), "examples", "httpd.yaml"))
	c.must("apply", "-f", filepath.Join(repoRoot(), "examples", "nodeport.yaml"))
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "apps.yaml"), netexecApp, 0o644))
	waitKubectl(t, c, "3 httpd endpoints", 60*time.Second, func(s string) bool { return strings.Count(s, ":8080") == 3 },
		"get", "endpoints", "httpd-svc", "-o", `jsonpath={range .subsets[*].addresses[*]}{.ip}:8080 {end}`)
	waitKubectl(t, c, "netexec endpoint", 60*time.Second, func(s string) bool { return strings.Contains(s, ":8080") }, "get", "endpoints", "local")
	ip := func(svc string) string {
		return strings.TrimSpace(c.must("get", "svc", svc, "-o", "jsonpath={.spec.clusterIP}"))
	}

	// From the node: 300 requests spread over the 3 pods (each 20-45%).
	svcIP := ip("httpd-svc")
	checkSpreadFromNode(t, "http://"+svcIP+":80/")

	// From a pod.
	pod := checkSpreadFromPod(t, c, "http://"+svcIP+"/")

	// NodePort 30080 and the fixed nodePort 30000 from the outside machine.
	if body, err := getPath(client, "192.168.50.1:30080", "/"); err != nil || !strings.HasPrefix(body, "httpd-") {
		t.Errorf("NodePort 30080 from the client namespace: %q, %v", body, err)
	}
	body, err := getPath(client, "192.168.50.1:30000", "/clientip")
	if mode == "nftables" && (err != nil || !strings.HasPrefix(body, "192.168.50.2:")) {
		// externalTrafficPolicy Local: the pod sees the client's own address.
		t.Errorf("Local policy /clientip from 192.168.50.2 = %q, %v; want the client's address", body, err)
	}
	if mode == "userspace" && err != nil { // a userspace proxy terminates the connection: the node's address shows
		t.Errorf("node port 30000 from the client namespace: %v", err)
	}

	// sessionAffinity ClientIP pins the node's requests to one pod.
	checkAffinity(t, "http://"+ip("sticky")+"/")

	// No endpoints: an immediate failure, not a timeout (the kernel path refuses
	// the connection; the userspace one resets it).
	start := time.Now()
	if _, err := httpGet("http://" + ip("nobody") + "/"); err == nil || time.Since(start) > time.Second {
		t.Errorf("service without endpoints: %v after %v; want a failure at once", err, time.Since(start))
	}
	if mode == "nftables" {
		if _, err := net.DialTimeout("tcp", ip("nobody")+":80", 3*time.Second); err == nil || !isRefused(err) {
			t.Errorf("service without endpoints: %v; want connection refused", err)
		}
		if _, err := net.DialTimeout("tcp", "10.96.255.254:80", 3*time.Second); err == nil || !isRefused(err) {
			t.Errorf("unallocated cluster IP: %v; want connection refused", err)
		}
	}

	// The health-check node port of a LoadBalancer Service with Local policy.
	hcPort := strings.TrimSpace(c.must("get", "svc", "lb-local", "-o", "jsonpath={.spec.healthCheckNodePort}"))
	if hc, err := getPath(client, "192.168.50.1:"+hcPort, "/"); err != nil || !strings.Contains(hc, `"localEndpoints":1`) {
		t.Errorf("health-check node port %s: %q, %v; want localEndpoints 1", hcPort, hc, err)
	}

	// kube-proxy's /healthz and /metrics.
	if body, err := httpGet("http://127.0.0.1:10256/healthz"); err != nil || !strings.Contains(body, `"lastUpdated"`) {
		t.Errorf("/healthz: %q, %v", body, err)
	}
	metrics, err := httpGet("http://127.0.0.1:10249/metrics")
	for _, want := range []string{"kubeproxy_sync_proxy_rules_duration_seconds_count", "kubeproxy_sync_full_proxy_rules_duration_seconds_count 1",
		"kubeproxy_sync_partial_proxy_rules_duration_seconds_count", "kubeproxy_network_programming_duration_seconds_count",
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds", "kubeproxy_sync_proxy_rules_endpoint_changes_total"} {
		if err != nil || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s (%v)", want, err)
		}
	}

	if mode == "nftables" {
		// svcnet explain shows the Service's endpoints as the kernel holds them
		// and the rule that picks among them.
		for svc, wants := range map[string][]string{
			"httpd-svc": {"@ip-endpoints-3: " + svcIP + " . tcp . 80 . 0x00000002 : ", "@masq-from-outside: " + svcIP + " . tcp . 80",
				"chain service-picks: dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @ip-endpoints-3"},
			"httpd-nodeport": {"@nodeport-endpoints-3: tcp . 30080 . 0x00000002 : ", "@masq-nodeports: tcp . 30080",
				"chain nodeport-picks: dnat ip to meta l4proto . th dport . numgen random mod 3 map @nodeport-endpoints-3"},
		} {
			ex, err := exec.Command(svcnetBin, "explain", "service", "default/"+svc, "--kubeconfig", c.kubeconfig).CombinedOutput()
			for _, want := range wants {
				if err != nil || !strings.Contains(string(ex), want) {
					t.Errorf("svcnet explain service default/%s lacks %q (%v):\n%s", svc, want, err, ex)
				}
			}
		}

		// Live switch to userspace through the ConfigMap, and back. A keep-alive
		// connection established through the kernel path survives it.
		kept, err := net.DialTimeout("tcp", svcIP+":80", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer kept.Close()
		keptReader := bufio.NewReader(kept)
		keepAlive := func() (string, error) {
			_ = kept.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := kept.Write([]byte("GET / HTTP/1.1\r\nHost: httpd-svc\r\n\r\n")); err != nil {
				return "", err
			}
			resp, err := http.ReadResponse(keptReader, nil)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
		before, err := keepAlive()
		if err != nil {
			t.Fatalf("keep-alive connection through the kernel path: %v", err)
		}
		c.must("create", "configmap", "svcnet-agent", "-n", "kube-system", "--from-literal=proxyMode=userspace")
		deadline := time.Now().Add(15 * time.Second)
		var out []byte
		for time.Now().Before(deadline) { // the switch is done when the old backend's rules are gone
			out, _ = exec.Command("nft", "list", "table", "ip", "svcnet").CombinedOutput()
			if strings.Contains(c.logs(), "from=nftables to=userspace") && strings.Contains(string(out), "nat-prerouting") && !strings.Contains(string(out), "service-ips") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if strings.Contains(string(out), "service-ips") || !strings.Contains(c.logs(), "from=nftables to=userspace") {
			t.Errorf("no switch to userspace within 15s; table:\n%s", out)
		}
		if body, err := httpGet("http://" + svcIP + "/"); err != nil || !strings.HasPrefix(body, "httpd-") {
			t.Errorf("new connection through the userspace proxy: %q, %v", body, err)
		}
		if after, err := keepAlive(); err != nil || after != before {
			t.Errorf("the connection established through the kernel path before the switch: %q, %v; want %q from the same pod", after, err, before)
		}
		c.must("delete", "configmap", "svcnet-agent", "-n", "kube-system") // back to --proxy-mode
		deadline = time.Now().Add(15 * time.Second)
		for !strings.Contains(c.logs(), "from=userspace to=nftables") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if body, err := httpGet("http://" + svcIP + "/"); err != nil || !strings.HasPrefix(body, "httpd-") {
			t.Errorf("after switching back to nftables: %q, %v", body, err)
		}
	}

	if mode == "userspace" {
		// A pod SIGKILLed in the middle of 200 requests costs none of them: a
		// failed dial is retried on another endpoint.
		uid := strings.TrimSpace(c.must("get", "pod", pod, "-o", "jsonpath={.metadata.uid}"))
		st := agentPods(t, filepath.Join(dir, "agent"))[uid]
		failed := 0
		for i := 0; i < 200; i++ {
			if i == 50 && len(st.Procs) == 1 {
				pid := st.Procs[0].Pid
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Errorf("kill pod process: %v", err)
				}
				for j := 0; j < 100 && procAlive(pid); j++ { // dead, not dying: an in-flight request would fail anywhere
					time.Sleep(10 * time.Millisecond)
				}
			}
			if _, err := httpGet("http://" + svcIP + "/"); err != nil {
				failed++
				t.Logf("request %d: %v", i, err)
			}
		}
		if failed > 0 || len(st.Procs) != 1 {
			t.Errorf("%d of 200 requests failed around a SIGKILLed pod (procs %v)", failed, st.Procs)
		}
	}

	// UDP, from one client port, keeps working when its endpoint changes.
	udpAddr := ip("udp") + ":53"
	first, err := udpAsk(40053, udpAddr, "hostname")
	if err != nil || !strings.HasPrefix(first, "netexec-") {
		t.Fatalf("UDP service: %q, %v", first, err)
	}
	c.must("delete", "pod", first)
	waitKubectl(t, c, "a new netexec endpoint", 60*time.Second, func(s string) bool {
		return s != "" && !strings.Contains(s, first) && strings.Contains(s, "netexec-")
	}, "get", "endpointslices", "-l", "kubernetes.io/service-name=udp", "-o", `jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.targetRef.name}{end}`)
	var second string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if second, err = udpAsk(40053, udpAddr, "hostname"); err == nil && second != first {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || second == first || !strings.HasPrefix(second, "netexec-") {
		t.Errorf("UDP from the same client port after the endpoint changed: %q, %v (first %q)", second, err, first)
	}
}

func isRefused(err error) bool {
	return strings.Contains(err.Error(), syscall.ECONNREFUSED.Error())
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// procAlive reports whether pid is a live process (not gone, not a zombie).
func procAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(data), ") Z ")
}
