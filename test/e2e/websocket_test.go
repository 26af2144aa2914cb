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
)

const netexecPod = `apiVersion: v1
kind: Pod
metadata:
  name: ws
spec:
  containers:
  - name: netexec
    image: svcnet/agnhost
    command: ["svcnet", "agnhost", "netexec", "--http-port=8080"]
`

// kubectlIO runs kubectl with stdin and extra environment, as kubectlEnv.
func (c *cluster) kubectlIO(stdin string, env []string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBin, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+c.dir), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestWebsocketStreams runs kubectl exec and attach over websockets
// (v5.channel.k8s.io), which the API server translates to SPDY towards the
// node agent, and checks that kubectl did not fall back to SPDY.
func TestWebsocketStreams(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--container-runtime=process", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "ws.yaml"), netexecPod, 0o644))
	waitKubectl(t, c, "pod ws running", 60*time.Second, func(s string) bool { return s == "Running" }, "get", "pod", "ws", "-o", "jsonpath={.status.phase}")

	ws := []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true"}
	tests := []struct {
		name, stdin, want, wantErr string
		args                       []string
	}{
		{name: "echo", args: []string{"exec", "ws", "--", "echo", "hi"}, want: "hi\n"},
		{name: "stdin", args: []string{"exec", "-i", "ws", "--", "cat"}, stdin: "line one\nline two\n", want: "line one\nline two\n"},
		{name: "exit code", args: []string{"exec", "ws", "--", "sh", "-c", "exit 3"}, wantErr: "command terminated with exit code 3"},
	}
	for _, tt := range tests {
		out, errOut, err := c.kubectlIO(tt.stdin, ws, append([]string{"-v=6"}, tt.args...)...)
		switch {
		case tt.wantErr == "" && (err != nil || out != tt.want):
			t.Errorf("%s: kubectl %s = %q, %v, want %q\n%s", tt.name, strings.Join(tt.args, " "), out, err, tt.want, errOut)
		case tt.wantErr != "" && (err == nil || !strings.Contains(errOut, tt.wantErr)):
			t.Errorf("%s: kubectl %s: %v, stderr lacks %q\n%s", tt.name, strings.Join(tt.args, " "), err, tt.wantErr, errOut)
		}
		// The websocket upgrade is a GET answered 101; the SPDY fallback would be a POST.
		if !regexp.MustCompile(`GET https://\S+/pods/ws/exec\?\S+ 101 Switching Protocols`).MatchString(errOut) ||
			!strings.Contains(errOut, "The subprotocol is v5.channel.k8s.io") || strings.Contains(errOut, "POST ") {
			t.Errorf("%s: kubectl did not stay on websockets:\n%s", tt.name, errOut)
		}
	}
	// SPDY, as before, when websockets are off.
	out, errOut, err := c.kubectlIO("", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}, "-v=6", "exec", "ws", "--", "echo", "spdy")
	if err != nil || out != "spdy\n" || !regexp.MustCompile(`POST https://\S+/pods/ws/exec\?\S+ 101 Switching Protocols`).MatchString(errOut) {
		t.Errorf("kubectl exec over SPDY: %q, %v\n%s", out, err, errOut)
	}

	// kubectl run --rm -i attaches (pods/attach) with stdin over websockets too.
	out, errOut, err = c.kubectlIO("hello\n", ws, "-v=6", "run", "att", "--rm", "-i", "--restart=Never", "--image=busybox", "--", "sh", "-c", "read x; echo got $x")
	if err != nil || !strings.Contains(out, "got hello\n") || !strings.Contains(out, `pod "att" deleted`) {
		t.Errorf("kubectl run --rm -i: %q, %v\n%s", out, err, errOut)
	}
	if !regexp.MustCompile(`GET https://\S+/pods/att/attach\?\S+ 101 Switching Protocols`).MatchString(errOut) || regexp.MustCompile(`POST https://\S+/attach`).MatchString(errOut) {
		t.Errorf("kubectl run -i did not attach over websockets:\n%s", errOut)
	}
	metrics := c.must("get", "--raw", "/metrics")
	for _, want := range []string{
		`apiserver_websocket_streaming_requests_total{proxy_type="translated_at_apiserver",subresource="exec"} 3`,
		`apiserver_websocket_streaming_requests_total{proxy_type="translated_at_apiserver",subresource="attach"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "apiserver_websocket"))
		}
	}
}

const agnhostPod = `apiVersion: v1
kind: Pod
metadata:
  name: pf
spec:
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.56
    args: [netexec, --http-port=8080]
`

// TestWebsocketPortForward runs kubectl port-forward over websockets (SPDY
// tunneled in a websocket), which the API server unwraps towards the agent's
// SPDY port-forward of the CRI runtime (the process runtime has none).
func TestWebsocketPortForward(t *testing.T) {
	requireCNI(t)
	src := imagesDir(t, "pause.tar", "agnhost.tar")
	images := t.TempDir() // only the two images this test needs: imports take time
	for _, f := range []string{"pause.tar", "agnhost.tar"} {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(images, f)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	criCleanup(t, dir)
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--container-runtime=cri", "--images", images,
		"--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "pf.yaml"), agnhostPod, 0o644))
	waitKubectl(t, c, "pod pf running", 60*time.Second, func(s string) bool { return s == "Running" }, "get", "pod", "pf", "-o", "jsonpath={.status.phase}")

	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pf := exec.CommandContext(ctx, kubectlBin, "-v=6", "port-forward", "pod/pf", fmt.Sprintf("%d:8080", port))
	pf.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+dir, "KUBECTL_PORT_FORWARD_WEBSOCKETS=true")
	var out lockedBuffer
	pf.Stdout, pf.Stderr = &out, &out
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = pf.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Forwarding from") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/hostname", port))
	if err != nil || body != "pf" {
		t.Errorf("netexec /hostname through kubectl port-forward = %q, %v\n%s", body, err, out.String())
	}
	log := out.String()
	if !regexp.MustCompile(`GET https://\S+/pods/pf/portforward 101 Switching Protocols`).MatchString(log) || strings.Contains(log, "POST ") {
		t.Errorf("kubectl port-forward did not stay on websockets:\n%s", log)
	}
	metrics := c.must("get", "--raw", "/metrics")
	if want := `apiserver_websocket_streaming_requests_total{proxy_type="translated_at_apiserver",subresource="portforward"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "apiserver_websocket"))
	}
}

// lockedBuffer is a bytes.Buffer a running command writes while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
