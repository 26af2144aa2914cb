package e2e

import (
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// httpdApps is the tutorial's Service (httpd-svc, 8080 -> 80, 3 pods).
const httpdApps = `apiVersion: apps/v1
kind: Deployment
metadata: {name: httpd}
spec:
  replicas: 3
  selector: {matchLabels: {app: httpd}}
  template:
    metadata: {labels: {app: httpd}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: svcnet/agnhost
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "80"]
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: httpd-svc}
spec:
  selector: {app: httpd}
  ports: [{port: 8080, targetPort: 80}]
`

// iptablesApps is httpdApps and the other kinds the iptables mode and
// `svcnet explain request` are checked with.
const iptablesApps = httpdApps + `---
apiVersion: v1
kind: Service
metadata: {name: httpd-nodeport}
spec:
  type: NodePort
  selector: {app: httpd}
  ports: [{port: 8080, targetPort: 80, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: httpd-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: netexec}
  ports: [{port: 8080, nodePort: 30000}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: httpd}
  sessionAffinity: ClientIP
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: httpd-headless}
spec:
  clusterIP: None
  selector: {app: httpd}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: docs}
spec:
  type: ExternalName
  externalName: kubernetes.io
---
apiVersion: apps/v1
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
        command: ["svcnet", "agnhost", "netexec", "--http-port", "8080"]
`

// TestServiceProxyIPTables runs `svcnet up --proxy-mode=iptables` with pods in
// the test namespace (the node) and a client namespace on a veth (an outside
// machine): a cluster IP spreads over 3 pods, a node port answers from outside,
// ClientIP affinity sticks, Local policy keeps the client's address, a Service
// without endpoints refuses, and iptables-save shows kube-proxy's chains.
func TestServiceProxyIPTables(t *testing.T) {
	requireCNI(t)
	if _, err := exec.LookPath("iptables-save"); err != nil {
		t.Fatal("iptables mode needs iptables-save; run scripts/test-deps.sh")
	}
	dir := t.TempDir()
	t.Cleanup(func() { // after svcnet stops: its KUBE-* chains stay, as kube-proxy's do, unless cleaned up
		out, err := exec.Command(svcnetBin, "agent", "--cleanup", "--root-dir", filepath.Join(dir, "agent")).CombinedOutput()
		if err != nil {
			t.Errorf("svcnet agent --cleanup: %v %s", err, out)
		}
		if out, _ := exec.Command("iptables-save").Output(); strings.Contains(string(out), ":KUBE-SVC-") {
			t.Errorf("KUBE-SVC chains left after svcnet agent --cleanup:\n%s", out)
		}
	})
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--proxy-mode=iptables", "--node-name", "local", "--dns-resolv-conf", "")
	client := clientNetns(t)
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "apps.yaml"), iptablesApps, 0o644))
	waitKubectl(t, c, "3 httpd endpoints", 60*time.Second, func(s string) bool { return strings.Count(s, ":80 ") == 3 },
		"get", "endpoints", "httpd-svc", "-o", `jsonpath={range .subsets[*].addresses[*]}{.ip}:80 {end}`)
	waitKubectl(t, c, "netexec endpoint", 60*time.Second, func(s string) bool { return strings.Contains(s, ":8080") }, "get", "endpoints", "httpd-local")
	ip := func(svc string) string {
		return strings.TrimSpace(c.must("get", "svc", svc, "-o", "jsonpath={.spec.clusterIP}"))
	}
	svcIP := ip("httpd-svc")

	// The rules may trail the endpoints by a sync: wait for the three KUBE-SEP jumps.
	var nat string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
		nat = string(out)
		if strings.Count(nat, `--comment "default/httpd-svc -> `) == 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, re := range []string{
		`(?m)^-A KUBE-SERVICES -d ` + regexp.QuoteMeta(svcIP) + `/32 -p tcp -m comment --comment "default/httpd-svc cluster IP" -m tcp --dport 8080 -j KUBE-SVC-IYRDZZKXS5EOQ6Q6$`,
		`(?m)^-A KUBE-SVC-IYRDZZKXS5EOQ6Q6 -m comment --comment "default/httpd-svc -> [0-9.]+:80" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-[A-Z2-7]{16}$`,
		`(?m)^-A KUBE-SVC-IYRDZZKXS5EOQ6Q6 -m comment --comment "default/httpd-svc -> [0-9.]+:80" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-[A-Z2-7]{16}$`,
		`(?m)^-A KUBE-SEP-[A-Z2-7]{16} -p tcp -m comment --comment "default/httpd-svc" -m tcp -j DNAT --to-destination [0-9.]+:80$`,
		`(?m)^-A KUBE-NODEPORTS -p tcp -m comment --comment "default/httpd-nodeport" -m tcp --dport 30080 -j KUBE-EXT-`,
		`(?m)^-A KUBE-SVC-[A-Z2-7]{16} .*--comment "default/sticky -> [0-9.]+:80" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-`,
		`(?m)^-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES$`,
	} {
		if !regexp.MustCompile(re).MatchString(nat) {
			t.Errorf("iptables-save -t nat lacks %s:\n%s", re, nat)
		}
	}

	var grep []string
	for _, l := range strings.Split(nat, "\n") {
		if strings.Contains(l, "httpd-svc") {
			grep = append(grep, l)
		}
	}
	t.Logf("iptables-save -t nat | grep httpd-svc:\n%s", strings.Join(grep, "\n"))

	// From the node: 300 requests spread over the 3 pods (each 20-45%).
	checkSpreadFromNode(t, "http://"+svcIP+":8080/")

	// From a pod.
	pod := checkSpreadFromPod(t, c, "http://"+svcIP+":8080/")

	// NodePort 30080 from the outside machine, and Local policy on 30000: the
	// pod sees the client's own address.
	if body, err := getPath(client, "192.168.50.1:30080", "/"); err != nil || !strings.HasPrefix(body, "httpd-") {
		t.Errorf("NodePort 30080 from the client namespace: %q, %v", body, err)
	}
	if body, err := getPath(client, "192.168.50.1:30000", "/clientip"); err != nil || !strings.HasPrefix(body, "192.168.50.2:") {
		t.Errorf("Local policy /clientip from 192.168.50.2 = %q, %v; want the client's address", body, err)
	}

	// sessionAffinity ClientIP pins the node's requests to one pod.
	checkAffinity(t, "http://"+ip("sticky")+"/")

	// No endpoints: from a pod, refused at once (filter KUBE-SERVICES REJECT,
	// icmp-port-unreachable as kube-proxy writes it).
	nobody := ip("nobody")
	start := time.Now()
	stdout, stderr, err := c.kubectl("exec", pod, "--", "svcnet", "agnhost", "get", "--timeout", "3s", "http://"+nobody+"/")
	if err == nil || !strings.Contains(stdout+stderr, "connection refused") || time.Since(start) > 2*time.Second {
		t.Errorf("service without endpoints from a pod: %q %q %v after %v; want connection refused at once", stdout, stderr, err, time.Since(start))
	}
	start = time.Now()
	_, err = net.DialTimeout("tcp", nobody+":80", 3*time.Second)
	t.Logf("service without endpoints from the node: %v after %v", err, time.Since(start))

	// svcnet explain request, read from this node's iptables-save: a ClusterIP
	// from a pod, a NodePort from outside, a headless name, an ExternalName.
	t.Run("Explain", func(t *testing.T) {
		explain := func(from, to string) string {
			out, err := exec.Command(svcnetBin, "explain", "request", from, to, "--kubeconfig", c.kubeconfig, "--node-name", "local").CombinedOutput()
			if err != nil {
				t.Errorf("svcnet explain request %s %s: %v\n%s", from, to, err, out)
			}
			t.Logf("svcnet explain request %s %s:\n%s", from, to, out)
			return string(out)
		}
		for _, tc := range []struct {
			from, to string
			wants    []string
		}{
			{"pod/default/" + pod, "http://httpd-svc:8080", []string{
				"httpd-svc.default.svc.cluster.local", "Service default/httpd-svc", "VIP " + svcIP, "Outcome: proxied",
				" 33.3%  ", "-j KUBE-SVC-IYRDZZKXS5EOQ6Q6", "--probability 0.33333333349 -j KUBE-SEP-", "-j DNAT --to-destination ", "on node local"}},
			{"192.168.50.2", "192.168.50.1:30080", []string{
				"Service default/httpd-nodeport", "Outcome: proxied", "KUBE-NODEPORTS", "KUBE-EXT-", "(source masqueraded)", "masquerade"}},
			// The node's InternalIP is 127.0.0.1 here: from outside, the localnet guard drops it.
			{"192.168.50.2", "127.0.0.1:30080", []string{"Outcome: dropped", "block incoming localnet connections"}},
			{"pod/default/" + pod, "httpd-headless", []string{"Outcome: headless", "headless Service"}},
			{"pod/default/" + pod, "docs", []string{"Outcome: external-name", "kubernetes.io", "ExternalName"}},
			{"pod/default/" + pod, "nobody:80", []string{"Outcome: rejected", "REJECT"}},
		} {
			out := explain(tc.from, tc.to)
			for _, want := range tc.wants {
				if !strings.Contains(out, want) {
					t.Errorf("svcnet explain request %s %s lacks %q", tc.from, tc.to, want)
				}
			}
		}
	})
}
