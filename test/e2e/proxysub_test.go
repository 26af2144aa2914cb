package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const proxyApp = `apiVersion: v1
kind: Pod
metadata: {name: netexec, labels: {app: netexec}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    command: [svcnet, agnhost, netexec, --http-port=8080]
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: netexec}
  ports: [{port: 80, targetPort: 8080}]
`

// TestProxySubresources reaches a pod, a Service and the node's agent through
// the API server's pods/proxy, services/proxy and nodes/proxy, with kubectl get
// --raw and through kubectl proxy.
func TestProxySubresources(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--container-runtime=process", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "app.yaml"), proxyApp, 0o644))
	waitKubectl(t, c, "netexec endpoint", 60*time.Second, func(s string) bool { return strings.Contains(s, ":8080") }, "get", "endpoints", "web")

	for _, path := range []string{
		"/api/v1/namespaces/default/pods/netexec:8080/proxy/hostname",
		"/api/v1/namespaces/default/pods/netexec/proxy/hostname", // the first container port
		"/api/v1/namespaces/default/services/web:80/proxy/hostname",
		"/api/v1/namespaces/default/services/http:web:80/proxy/hostname",
	} {
		if got := c.must("get", "--raw", path); got != "netexec" {
			t.Errorf("kubectl get --raw %s = %q, want netexec", path, got)
		}
	}
	if got := c.must("get", "--raw", "/api/v1/nodes/local/proxy/healthz"); got != "ok" {
		t.Errorf("nodes/local/proxy/healthz = %q, want ok", got)
	}
	if errOut := c.fails("get", "--raw", "/api/v1/namespaces/default/services/web:81/proxy/"); !strings.Contains(errOut, "ServiceUnavailable") {
		t.Errorf("unknown service port: %s", errOut)
	}

	// kubectl proxy: GET with a query, POST with a form body, a backend redirect.
	port := freePort(t)
	base := startKubectlProxy(t, c, port)
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header
	}
	if code, body, _ := get("/api/v1/namespaces/default/services/web/proxy/echo?msg=hi"); code != 200 || body != "hi" {
		t.Errorf("kubectl proxy GET services/web/proxy/echo?msg=hi = %d %q, want hi", code, body)
	}
	res, err := http.Post(base+"/api/v1/namespaces/default/pods/netexec:8080/proxy/echo?code=201", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"msg": {"posted body"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || string(b) != "posted body" {
		t.Errorf("kubectl proxy POST pods/netexec:8080/proxy/echo = %d %q, want 201 \"posted body\"", res.StatusCode, b)
	}
	code, _, hdr := get("/api/v1/namespaces/default/pods/netexec:8080/proxy/redirect?location=/hostname")
	if want := "/api/v1/namespaces/default/pods/netexec:8080/proxy/hostname"; code != 302 || hdr.Get("Location") != want {
		t.Errorf("backend redirect: %d Location %q, want 302 %q", code, hdr.Get("Location"), want)
	}
}

// startKubectlProxy runs `kubectl proxy --port=port` until the test ends and
// returns its base URL.
func startKubectlProxy(t *testing.T, c *cluster, port int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, kubectlBin, "proxy", fmt.Sprintf("--port=%d", port))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+c.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "Starting to serve on 127.0.0.1:") {
			t.Fatalf("kubectl proxy said %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("kubectl proxy did not start within 20s")
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}
