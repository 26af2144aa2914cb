package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// wsBackend is a Service with no selector whose one endpoint is a server in
// this test process (on 127.0.0.1, inside the test's network namespace): a
// websocket echo on /ws, "ws-backend PATH" on any other path.
const wsBackend = `apiVersion: v1
kind: Service
metadata: {name: ws}
spec:
  ports: [{name: web, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ws-1
  labels: {kubernetes.io/service-name: ws}
addressType: IPv4
ports: [{name: web, port: %d, protocol: TCP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
`

// editedIngresses is two Ingresses; edit i adds path /edit-i (i even) to the
// first or host other-i.test (i odd) to the second, both to Service svc.
func editedIngresses(name, host, path, svc string, edit int) string {
	extraPath, extraHost := "", "other.test"
	if edit%2 == 0 {
		extraPath = fmt.Sprintf("\n      - {path: /edit-%d, pathType: Exact, backend: {service: {name: %s, port: {number: 80}}}}", edit, svc)
	} else {
		extraHost = fmt.Sprintf("other-%d.test", edit)
	}
	return fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[1]s}
spec:
  rules:
  - host: %[2]s
    http:
      paths:
      - {path: %[3]s, pathType: Prefix, backend: {service: {name: %[4]s, port: {number: 80}}}}%[5]s
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[1]s-other}
spec:
  rules:
  - host: %[6]s
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: %[4]s, port: {number: 80}}}}]}
`, name, host, path, svc, extraPath, extraHost)
}

// editURL is a URL that only edit i routes.
func editURL(edit int) string {
	if edit%2 == 0 {
		return fmt.Sprintf("http://ws.test/edit-%d", edit)
	}
	return fmt.Sprintf("http://other-%d.test/edit-%d", edit, edit)
}

// TestIngressWebsocketAcrossEdits holds one websocket open through the Ingress
// while 20 route edits (of the same and of another Ingress) are applied with
// kubectl; after each edit is routed, the socket must still echo.
func TestIngressWebsocketAcrossEdits(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(c *websocket.Conn) { _, _ = io.Copy(c, c) }))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "ws-backend %s", r.URL.Path) })
	backend := &http.Server{Handler: mux}
	go func() { _ = backend.Serve(ln) }()
	defer backend.Close()

	c := startCluster(t, dir, freePort(t), "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "ws.yaml"), fmt.Sprintf(wsBackend, ln.Addr().(*net.TCPAddr).Port), 0o644))
	apply := func(edit int) {
		t.Helper()
		c.must("apply", "-f", writeFile(t, filepath.Join(dir, "ing.yaml"), editedIngresses("ws", "ws.test", "/ws", "ws", edit), 0o644))
	}
	apply(0)
	hc := ingressClient("127.0.0.1")
	routed := func(url string, timeout time.Duration) bool {
		deadline := time.Now().Add(timeout)
		for {
			if resp, err := hc.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.HasPrefix(string(b), "ws-backend /edit-") {
					return true
				}
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !routed(editURL(0), 20*time.Second) {
		t.Fatalf("the Ingress to the in-process backend was not served")
	}

	conn, err := net.DialTimeout("tcp", "127.0.0.1:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg, err := websocket.NewConfig("ws://ws.test/ws", "http://ws.test")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("websocket handshake through the ingress: %v", err)
	}
	echo := func(msg string) error {
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		if err := websocket.Message.Send(ws, msg); err != nil {
			return err
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			return err
		}
		if got != msg {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		start := time.Now()
		apply(i)
		if !routed(editURL(i), 5*time.Second) {
			t.Fatalf("edit %d: %s not routed within 5 s", i, editURL(i))
		}
		if err := echo(fmt.Sprintf("after edit %d", i)); err != nil {
			t.Fatalf("websocket after edit %d: %v", i, err)
		}
		t.Logf("edit %d routed and echoed after %v", i, time.Since(start).Round(time.Millisecond))
	}
}

const rollApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: roll}
spec:
  replicas: 3
  selector: {matchLabels: {app: roll}}
  template:
    metadata: {labels: {app: roll}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: roll}
spec:
  selector: {app: roll}
  ports: [{name: web, port: 80, targetPort: http}]
`

// TestIngressNoLossDuringChanges runs a bounded 30 s request loop through the
// Ingress (keep-alive and new-connection clients) while routes are edited
// every second and the backend Deployment is rolled twice; no request may fail.
func TestIngressNoLossDuringChanges(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--proxy-mode=none", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "roll.yaml"), rollApp, 0o644))
	var editMu sync.Mutex // kubectl apply of the same file
	apply := func(edit int) error {
		editMu.Lock()
		defer editMu.Unlock()
		_, errOut, err := c.kubectl("apply", "-f", writeFile(t, filepath.Join(dir, "ing.yaml"), editedIngresses("roll", "roll.test", "/", "roll", edit), 0o644))
		if err != nil {
			return fmt.Errorf("%v: %s", err, errOut)
		}
		return nil
	}
	if err := apply(0); err != nil {
		t.Fatal(err)
	}
	waitKubectl(t, c, "roll endpoints", 60*time.Second, func(s string) bool { return strings.Count(s, "true") == 3 },
		"get", "endpointslices", "-l", "kubernetes.io/service-name=roll", "-o", "jsonpath={range .items[*].endpoints[*]}{.conditions.ready} {end}")
	before := c.must("get", "pods", "-l", "app=roll", "-o", "jsonpath={.items[*].metadata.name}")

	keepAlive := ingressClient("127.0.0.1")
	keepAlive.Transport.(*http.Transport).DisableKeepAlives = false
	fresh := ingressClient("127.0.0.1")
	var total, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	seen := sync.Map{}
	const loop = 30 * time.Second
	end := time.Now().Add(loop)
	var wg sync.WaitGroup
	for i := range 4 {
		hc := fresh
		if i%2 == 0 {
			hc = keepAlive
		}
		wg.Go(func() {
			for time.Now().Before(end) {
				total.Add(1)
				resp, err := hc.Get("http://roll.test/")
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil && (resp.StatusCode != 200 || !strings.HasPrefix(string(body), "roll-")) {
					err = fmt.Errorf("%d %q", resp.StatusCode, body)
				}
				if err != nil {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, time.Now().Format("15:04:05.000")+" "+err.Error())
					failMu.Unlock()
					continue
				}
				seen.Store(string(body), true)
			}
		})
	}
	edits := 0
	wg.Go(func() {
		for i := 1; time.Now().Before(end.Add(-time.Second)); i++ {
			if err := apply(i); err != nil {
				t.Errorf("edit %d: %v", i, err)
			}
			edits = i
			time.Sleep(time.Second)
		}
	})
	rolled := 0
	wg.Go(func() {
		time.Sleep(2 * time.Second)
		rolled = rollOut(t, c, "deployment/roll", 2, "12s")
	})
	wg.Wait()
	pods := 0
	seen.Range(func(any, any) bool { pods++; return true })
	t.Logf("%d requests through the ingress in %v, %d failed; %d route edits; %d rollouts; %d distinct pods answered",
		total.Load(), loop, failed.Load(), edits, rolled, pods)
	for i, f := range failures {
		if i == 20 {
			t.Logf("... and %d more", len(failures)-20)
			break
		}
		t.Logf("failed: %s", f)
	}
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed", failed.Load(), total.Load())
	}
	if rolled != 2 {
		t.Errorf("%d rollouts completed in the loop, want 2", rolled)
	}
	after := c.must("get", "pods", "-l", "app=roll", "-o", "jsonpath={.items[*].metadata.name}")
	for _, p := range strings.Fields(before) {
		if strings.Contains(after, p) {
			t.Errorf("pod %s of before the rollouts is still there: %s", p, after)
		}
	}
}
