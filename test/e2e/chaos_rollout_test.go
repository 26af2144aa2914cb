package e2e

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The fault suite's data-path scenarios (issue 18): requests under a rolling
// update, a killed backend and (chaos_restart_test.go) a restart, each loop
// bounded in time and count, each printing its counts.

// reqLoop sends requests one after the other (a new connection each) until
// stopped or max is reached, and counts them.
type reqLoop struct {
	name          string
	get           func() (string, error) // one request; the body
	total, failed atomic.Int64
	mu            sync.Mutex
	failures      []string // the first few, with their time
	failedAt      []time.Time
	bodies        map[string]int
}

const (
	loopMax   = 3000                  // requests per loop at most
	loopPause = 15 * time.Millisecond // between two requests: ~50/s per loop on 2 shared cores
)

// run loops until stop is closed (or loopMax requests); call it in a goroutine.
func (l *reqLoop) run(stop <-chan struct{}) {
	l.bodies = map[string]int{}
	for i := 0; i < loopMax; i++ {
		select {
		case <-stop:
			return
		default:
		}
		l.once()
		time.Sleep(loopPause)
	}
}

// once sends one request and records its outcome.
func (l *reqLoop) once() {
	start := time.Now()
	body, err := l.get()
	l.total.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed.Add(1)
		l.failedAt = append(l.failedAt, start)
		if len(l.failures) < 10 {
			l.failures = append(l.failures, fmt.Sprintf("%s (%v): %v", start.Format("15:04:05.000"), time.Since(start).Round(time.Millisecond), err))
		}
		return
	}
	if l.bodies != nil {
		l.bodies[body]++
	}
}

// report logs the counts and the first failures.
func (l *reqLoop) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("  %s: %d requests, %d failed, answered by %d pods", l.name, l.total.Load(), l.failed.Load(), len(l.bodies))
	for _, f := range l.failures {
		t.Logf("    failed: %s", f)
	}
}

// getFrom sends GET / on a new connection to addr from inside network
// namespace ns (the client machine) and returns the body.
func getFrom(ns, addr string) func() (string, error) {
	return func() (string, error) { return getPath(ns, addr, "/") }
}

// getNode sends GET url from the node on a new connection (3 s timeout).
func getNode(url string) func() (string, error) {
	return func() (string, error) { return httpGet(url) }
}

// getIngress sends GET http://host/ to the node's ingress on a new connection.
func getIngress(host string) func() (string, error) {
	hc := ingressClient("127.0.0.1")
	return func() (string, error) {
		resp, err := hc.Get("http://" + host + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("%d %q", resp.StatusCode, b)
		}
		return string(b), err
	}
}

// rollExtra is the roll Deployment's (rollApp, ingress_loss_test.go) node port
// and Ingress.
const rollExtra = `apiVersion: v1
kind: Service
metadata: {name: roll-np}
spec:
  type: NodePort
  selector: {app: roll}
  ports: [{name: web, port: 80, targetPort: http, nodePort: 30090}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: roll}
spec:
  rules:
  - host: roll.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: roll, port: {number: 80}}}}]}
`

// TestChaosRollout: two rolling updates of a 3-replica Deployment with no
// preStop hook while requests run through its cluster IP (from the node), its
// NodePort (from another machine) and the Ingress, a new connection each: no
// request fails, in each proxy mode. The pod runtime sends SIGTERM only once
// the node's proxy and ingress no longer route to the pod (internal/drain).
func TestChaosRollout(t *testing.T) {
	for _, mode := range []string{"nftables", "iptables", "userspace"} {
		t.Run(mode, func(t *testing.T) { testChaosRollout(t, mode) })
	}
}

func testChaosRollout(t *testing.T, mode string) {
	dir := t.TempDir()
	c := podCluster(t, dir, mode)
	client := clientNetns(t)
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "roll.yaml"), rollApp+"---\n"+rollExtra, 0o644))
	waitReady(t, c, "roll", 3, 60*time.Second)
	svcIP := strings.TrimSpace(c.must("get", "svc", "roll", "-o", "jsonpath={.spec.clusterIP}"))
	loops := []*reqLoop{
		{name: "cluster IP " + svcIP + ":80 from the node", get: getNode("http://" + svcIP + "/")},
		{name: "NodePort 192.168.50.1:30090 from the client", get: getFrom(client, "192.168.50.1:30090")},
		{name: "Ingress roll.test on the node", get: getIngress("roll.test")},
	}
	for _, l := range loops { // each path serves before the load starts
		waitFor(t, l.name, 30*time.Second, func() bool { b, err := l.get(); return err == nil && strings.HasPrefix(b, "roll-") })
	}
	before := c.must("get", "pods", "-l", "app=roll", "-o", "jsonpath={.items[*].metadata.name}")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Go(func() { l.run(stop) })
	}
	start := time.Now()
	rolled := rollOut(t, c, "deployment/roll", 2, "40s")
	// The last old pods are terminating still: the load runs until they are gone.
	waitKubectl(t, c, "only the new pods", 30*time.Second, func(s string) bool { return len(strings.Fields(s)) == 3 },
		"get", "pods", "-l", "app=roll", "-o", "jsonpath={.items[*].metadata.name}")
	close(stop)
	wg.Wait()
	var total, failed int64
	for _, l := range loops {
		total += l.total.Load()
		failed += l.failed.Load()
	}
	t.Logf("rollout (%s): %d rollouts, %d requests, %d failed in %v", mode, rolled, total, failed, time.Since(start).Round(time.Millisecond))
	for _, l := range loops {
		l.report(t)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed during the rollouts", failed, total)
	}
	if rolled != 2 {
		t.Errorf("%d rollouts completed, want 2", rolled)
	}
	after := c.must("get", "pods", "-l", "app=roll", "-o", "jsonpath={.items[*].metadata.name}")
	for _, p := range strings.Fields(before) {
		if strings.Contains(after, p) {
			t.Errorf("pod %s of before the rollouts is still there: %s", p, after)
		}
	}
}

// podCluster runs `svcnet up` with process pods and the proxy of mode on dir.
func podCluster(t *testing.T, dir, mode string) *cluster {
	t.Helper()
	requireCNI(t)
	criCleanup(t, dir) // after svcnet stops: the kernel rules it leaves (as kube-proxy does) would answer the next test's node ports
	return startCluster(t, dir, freePort(t), "--pod-runtime=on", "--proxy-mode="+mode, "--node-name", "local", "--dns-resolv-conf", "")
}

// waitReady waits until Service svc has n ready endpoints.
func waitReady(t *testing.T, c *cluster, svc string, n int, timeout time.Duration) {
	t.Helper()
	waitKubectl(t, c, fmt.Sprintf("%d ready %s endpoints", n, svc), timeout, func(s string) bool { return strings.Count(s, "true") == n },
		"get", "endpointslices", "-l", "kubernetes.io/service-name="+svc, "-o", "jsonpath={range .items[*].endpoints[*]}{.conditions.ready} {end}")
}

// waitFor polls cond every 100 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready within %v", what, timeout)
		}
	}
}

// killApp is two replicas and one bare pod (restartPolicy Never, so its
// SIGKILL ends it for good) behind one Service.
const killApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: kill}
spec:
  replicas: 2
  selector: {matchLabels: {app: kill}}
  template:
    metadata: {labels: {app: kill}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: victim, labels: {app: kill}}
spec:
  restartPolicy: Never
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.56
    command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: kill}
spec:
  selector: {app: kill}
  ports: [{port: 80, targetPort: http}]
`

// TestChaosKill: SIGKILL of one of three backends while requests run through
// the cluster IP. The userspace proxy loses none (a refused connection is
// retried on another endpoint); the kernel path loses only requests sent
// before the endpoint was removed, which takes at most 1 s.
func TestChaosKill(t *testing.T) {
	for _, mode := range []string{"nftables", "userspace"} {
		t.Run(mode, func(t *testing.T) { testChaosKill(t, mode) })
	}
}

func testChaosKill(t *testing.T, mode string) {
	dir := t.TempDir()
	c := podCluster(t, dir, mode)
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "kill.yaml"), killApp, 0o644))
	waitReady(t, c, "kill", 3, 60*time.Second)
	svcIP := strings.TrimSpace(c.must("get", "svc", "kill", "-o", "jsonpath={.spec.clusterIP}"))
	victim := strings.Fields(c.must("get", "pod", "victim", "-o", "jsonpath={.metadata.uid} {.status.podIP}"))
	st := agentPods(t, filepath.Join(dir, "agent"))[victim[0]]
	if len(victim) != 2 || len(st.Procs) != 1 {
		t.Fatalf("victim pod %v: want its uid, IP and one recorded process, have %+v", victim, st)
	}
	cs := kubeClient(t, c)
	l := &reqLoop{name: "cluster IP " + svcIP + ":80 from the node", get: getNode("http://" + svcIP + "/")}
	waitFor(t, l.name, 30*time.Second, func() bool { _, err := l.get(); return err == nil })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { l.run(stop) })
	time.Sleep(2 * time.Second) // load before the kill
	killed := time.Now()
	if err := syscall.Kill(st.Procs[0].Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the victim's process: %v", err)
	}
	removed := waitRemoved(t, cs, "kill", victim[1], 10*time.Second)
	time.Sleep(3 * time.Second) // load after the removal
	close(stop)
	wg.Wait()
	removal := removed.Sub(killed)
	t.Logf("kill (%s): %d requests, %d failed; endpoint removed from the EndpointSlice %v after the SIGKILL",
		mode, l.total.Load(), l.failed.Load(), removal.Round(time.Millisecond))
	l.report(t)
	if removal > time.Second {
		t.Errorf("the killed pod's endpoint was removed %v after the SIGKILL, want <= 1s", removal)
	}
	switch mode {
	case "userspace":
		if l.failed.Load() != 0 {
			t.Errorf("%d of %d requests failed around the SIGKILL; the userspace proxy retries on another endpoint", l.failed.Load(), l.total.Load())
		}
	default:
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, at := range l.failedAt {
			// A request fails only if it was in flight at the SIGKILL (sent
			// just before it) or sent before the proxy had the endpoint out
			// (its sync follows the slice within milliseconds).
			if at.Before(killed.Add(-time.Second)) || at.After(removed.Add(200*time.Millisecond)) {
				t.Errorf("a request sent %v after the SIGKILL failed; the endpoint was out after %v", at.Sub(killed), removal)
			}
		}
	}
}

// kubeClient is a client-go clientset for the cluster's admin.
func kubeClient(t *testing.T, c *cluster) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// waitRemoved polls the Service's EndpointSlices every 10 ms until ip is no
// ready endpoint of it, and returns when it saw that.
func waitRemoved(t *testing.T, cs kubernetes.Interface, svc, ip string, timeout time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		list, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err == nil && !readyIn(list.Items, ip) {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s still a ready endpoint of %s after %v", ip, svc, timeout)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func readyIn(slices []discoveryv1.EndpointSlice, ip string) bool {
	for _, es := range slices {
		for _, ep := range es.Endpoints {
			if len(ep.Addresses) > 0 && ep.Addresses[0] == ip && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
				return true
			}
		}
	}
	return false
}

// rollOut restarts the rollout of deploy times times, each waited for with
// kubectl rollout status (timeout); it returns how many completed, reporting
// the first failure with t.Errorf.
func rollOut(t *testing.T, c *cluster, deploy string, times int, timeout string) int {
	for i := range times {
		if _, errOut, err := c.kubectl("rollout", "restart", deploy); err != nil {
			t.Errorf("rollout restart: %v %s", err, errOut)
			return i
		}
		if out, errOut, err := c.kubectl("rollout", "status", deploy, "--timeout="+timeout); err != nil {
			t.Errorf("rollout status: %v %s %s", err, out, errOut)
			return i
		}
	}
	return times
}
