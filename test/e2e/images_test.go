package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// imagesDir holds the offline image tarballs (scripts/test-images.sh DIR);
// scripts/test.sh builds them before the end-to-end tests.
func imagesDir(t *testing.T, need ...string) string {
	t.Helper()
	dir := os.Getenv("SVCNET_E2E_IMAGES")
	if dir == "" {
		dir = "/var/cache/svcnet-images/out"
	}
	for _, f := range need {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			msg := fmt.Sprintf("offline image %s missing (build them with scripts/test-images.sh %s): %v", f, dir, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		msg := "containerd is not installed (scripts/test-deps.sh installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// criCleanup removes every pod of the containerd svcnet ran in dir, so no
// container outlives the test (containers belong to containerd, not svcnet).
func criCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		out, err := exec.Command(svcnetBin, "agent", "--cleanup", "--root-dir", filepath.Join(dir, "agent")).CombinedOutput()
		if err != nil {
			t.Errorf("svcnet agent --cleanup: %v %s", err, out)
		}
	})
}

// ctr runs containerd's ctr against the containerd svcnet runs in dir.
func ctr(t *testing.T, dir string, args ...string) string {
	t.Helper()
	sock := filepath.Join(dir, "agent", "containerd", "containerd.sock")
	out, err := exec.Command("ctr", append([]string{"--address", sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %v: %v %s", args, err, out)
	}
	return string(out)
}

const tutorialHTTPD = `apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: httpd-deployment
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: httpd
    spec:
      containers:
      - name: httpd
        image: httpd
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: httpd-svc
spec:
  selector:
    app: httpd
  ports:
  - protocol: TCP
    port: 8080
    targetPort: 80
`

const agnhostNetexec = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: netexec
spec:
  replicas: 1
  selector:
    matchLabels: {app: netexec}
  template:
    metadata:
      labels: {app: netexec}
    spec:
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        args: [netexec, --http-port=8080]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: netexec
spec:
  selector: {app: netexec}
  ports:
  - port: 80
    targetPort: 8080
`

const volumesPod = `apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data: {index.html: "hello from a configmap", GREETING: hi}
---
apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  initContainers:
  - name: prepare
    image: busybox
    command: [sh, -c, "echo prepared > /work/ready; echo init-done"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: web
    image: nginx
    envFrom: [{configMapRef: {name: site}}]
    volumeMounts:
    - {name: html, mountPath: /usr/share/nginx/html}
    - {name: work, mountPath: /work}
  volumes:
  - {name: html, configMap: {name: site}}
  - {name: work, emptyDir: {}}
`

// TestContainerImages runs the tutorials' manifests unchanged with the CRI
// runtime and svcnet's own containerd: images instead of commands, the
// kubectl verbs on them, pods that outlive a restart of svcnet, and nothing
// left once they are deleted.
func TestContainerImages(t *testing.T) {
	requireCNI(t)
	images := imagesDir(t, "pause.tar", "busybox.tar", "agnhost.tar", "httpd.tar", "nginx.tar")
	dir := t.TempDir()
	port := freePort(t)
	args := []string{"--pod-runtime=on", "--container-runtime=cri", "--images", images, "--proxy-mode=nftables",
		"--node-name", "local", "--dns-resolv-conf", ""}
	criCleanup(t, dir)
	c := startCluster(t, dir, port, args...)
	client := clientNetns(t)

	// The tutorial: an apps/v1beta1 Deployment of `image: httpd` with no command, and its Service.
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "httpd.yaml"), tutorialHTTPD, 0o644))
	c.must("create", "deployment", "web", "--image=nginx")
	c.must("expose", "deployment", "web", "--port=80", "--type=NodePort")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "netexec.yaml"), agnhostNetexec, 0o644))
	waitKubectl(t, c, "2 httpd endpoints", 120*time.Second, func(s string) bool { return strings.Count(s, ":80 ") == 2 },
		"get", "endpoints", "httpd-svc", "-o", `jsonpath={range .subsets[*].addresses[*]}{.ip}:80 {end}`)
	svcIP := strings.TrimSpace(c.must("get", "svc", "httpd-svc", "-o", "jsonpath={.spec.clusterIP}"))
	if body, err := httpGet("http://" + svcIP + ":8080/"); err != nil || !strings.Contains(body, "It works!") {
		t.Fatalf("httpd through the cluster IP: %q, %v", body, err)
	}
	policy := c.must("get", "pods", "-l", "app=httpd", "-o", "jsonpath={.items[0].spec.containers[0].imagePullPolicy} {.items[0].status.containerStatuses[0].containerID} {.items[0].status.containerStatuses[0].imageID}")
	if f := strings.Fields(policy); len(f) != 3 || f[0] != "Always" || !strings.HasPrefix(f[1], "containerd://") || !strings.HasPrefix(f[2], "sha256:") {
		t.Errorf("httpd pod: pull policy, container ID, image ID = %q", policy)
	}

	// kubectl create deployment --image=nginx + expose NodePort, from another machine.
	waitKubectl(t, c, "nginx endpoint", 120*time.Second, func(s string) bool { return strings.Contains(s, ":80") },
		"get", "endpoints", "web", "-o", `jsonpath={range .subsets[*].addresses[*]}{.ip}:80 {end}`)
	nodePort := strings.TrimSpace(c.must("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"))
	if body, err := getPath(client, "192.168.50.1:"+nodePort, "/"); err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("nginx NodePort %s from the client namespace: %q, %v", nodePort, body, err)
	}

	// exec, logs, run --rm -i, port-forward; the service account files every pod gets.
	webPod := strings.TrimSpace(c.must("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}"))
	sa := c.must("exec", webPod, "--", "sh", "-c", "cd /var/run/secrets/kubernetes.io/serviceaccount && cat namespace && echo && head -c 3 token && echo && grep -c BEGIN ca.crt")
	if sa != "default\neyJ\n1\n" {
		t.Errorf("service account files in the pod (namespace, token, ca.crt): %q", sa)
	}
	if out := c.must("exec", webPod, "--", "cat", "/etc/resolv.conf"); !strings.Contains(out, "search default.svc.cluster.local") {
		t.Errorf("kubectl exec: resolv.conf = %q", out)
	}
	if out := c.must("logs", webPod); !strings.Contains(out, "GET / HTTP/1.") {
		t.Errorf("kubectl logs of nginx lack the NodePort request: %q", out)
	}
	out := c.must("run", "bb", "--rm", "-i", "--image=busybox", "--restart=Never", "--", "sh", "-c", "sleep 2; wget -qO- http://httpd-svc.default:8080/")
	if !strings.Contains(out, "It works!") {
		t.Errorf("kubectl run --rm -i busybox, wget by Service name: %q", out)
	}
	pfPort := freePort(t)
	pf := exec.Command(kubectlBin, "--kubeconfig", c.kubeconfig, "port-forward", "deploy/web", fmt.Sprintf("%d:80", pfPort))
	stdout, _ := pf.StdoutPipe()
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pf.Process.Kill(); _ = pf.Wait() })
	forwarding := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Forwarding from") {
				forwarding <- true
			}
		}
	}()
	select {
	case <-forwarding:
	case <-time.After(30 * time.Second):
		t.Fatal("kubectl port-forward did not start")
	}
	if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", pfPort)); err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("kubectl port-forward: %q, %v", body, err)
	}

	// An init container, a ConfigMap as files and as env, an emptyDir both containers share.
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "vols.yaml"), volumesPod, 0o644))
	waitKubectl(t, c, "vols running", 120*time.Second, func(s string) bool { return s == "Completed Running" },
		"get", "pod", "vols", "-o", "jsonpath={.status.initContainerStatuses[0].state.terminated.reason} {.status.phase}")
	if out := c.must("exec", "vols", "--", "sh", "-c", "cat /work/ready; echo $GREETING"); out != "prepared\nhi\n" {
		t.Errorf("init container's file and envFrom: %q", out)
	}
	if out := c.must("logs", "vols", "-c", "prepare"); out != "init-done\n" {
		t.Errorf("kubectl logs of the init container: %q", out)
	}
	volIP := strings.TrimSpace(c.must("get", "pod", "vols", "-o", "jsonpath={.status.podIP}"))
	if body, err := httpGet("http://" + volIP + "/"); err != nil || body != "hello from a configmap" {
		t.Errorf("nginx serving the ConfigMap volume: %q, %v", body, err)
	}
	c.must("delete", "pod", "vols")

	// Restarting svcnet restarts no pod and keeps a connection through the cluster IP.
	waitKubectl(t, c, "netexec ready", 120*time.Second, func(s string) bool { return s == "True" },
		"get", "pods", "-l", "app=netexec", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`)
	before := c.must("get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID}/{.status.containerStatuses[0].restartCount} {end}")
	neIP := strings.TrimSpace(c.must("get", "svc", "netexec", "-o", "jsonpath={.spec.clusterIP}"))
	conn, err := net.DialTimeout("tcp", neIP+":80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	ask := func() (string, error) {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(conn, "GET /hostname HTTP/1.1\r\nHost: netexec\r\n\r\n"); err != nil {
			return "", err
		}
		res, err := http.ReadResponse(rd, nil)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b := make([]byte, 256)
		n, _ := res.Body.Read(b)
		return string(b[:n]), nil
	}
	first, err := ask()
	if err != nil {
		t.Fatalf("request on a long connection: %v", err)
	}
	containers := strings.Fields(ctr(t, dir, "containers", "ls", "-q"))
	c.stop()
	c = startCluster(t, dir, port, args...)
	// For 5 s (five relists of the new agent) the runtime keeps the very same
	// containers: none stopped, none started.
	var changed string
	_ = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) { // a timeout is the good end
		if now := strings.Fields(ctr(t, dir, "containers", "ls", "-q")); !slices.Equal(now, containers) {
			changed = fmt.Sprintf("%v -> %v", containers, now)
			return true, nil
		}
		return false, nil
	})
	if changed != "" {
		t.Fatalf("the restarted agent changed the containers: %s", changed)
	}
	if again, err := ask(); err != nil || again != first {
		t.Errorf("the connection through the cluster IP after svcnet restarted: %q, %v (before: %q)", again, err, first)
	}
	waitKubectl(t, c, "the same containers after the restart", 60*time.Second, func(s string) bool { return s == before },
		"get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID}/{.status.containerStatuses[0].restartCount} {end}")

	// containerd killed: the agent starts it again, the pods run on, a new pod starts.
	pids, err := exec.Command("pgrep", "-f", "containerd --config "+filepath.Join(dir, "agent", "containerd", "config.toml")).Output()
	pid := strings.Fields(string(pids))
	if err != nil || len(pid) != 1 {
		t.Fatalf("svcnet's containerd: pids %v, %v", pid, err)
	}
	if err := exec.Command("kill", "-9", pid[0]).Run(); err != nil {
		t.Fatal(err)
	}
	c.must("scale", "deployment", "netexec", "--replicas=2")
	waitKubectl(t, c, "2 netexec pods ready after containerd was killed", 120*time.Second, func(s string) bool { return s == "True True" },
		"get", "pods", "-l", "app=netexec", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`)
	if again, err := ask(); err != nil || again != first {
		t.Errorf("the connection through the cluster IP after containerd was killed: %q, %v", again, err)
	}

	// Deleting the pods leaves no container, sandbox or pod IP.
	c.must("delete", "deployment", "--all", "--wait=false")
	waitKubectl(t, c, "no pods", 120*time.Second, func(s string) bool { return s == "" }, "get", "pods", "-o", "name")
	var left string
	err = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		sandboxes := strings.TrimSpace(ctr(t, dir, "containers", "ls", "-q"))
		ips := ipamFiles(filepath.Join(dir, "agent"))
		left = fmt.Sprintf("containers %q, pod IPs %v", sandboxes, ips)
		return sandboxes == "" && len(ips) == 0, nil
	})
	if err != nil {
		t.Fatalf("left after deleting every pod: %s", left)
	}
}
