package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// TestChaosAgentRestart (issue 18): the API server keeps running while only
// the node agent (`svcnet agent`, its own process, pods through containerd) is
// stopped with SIGTERM and started again, under load through a cluster IP
// (from the node) and a NodePort (from another machine), a new connection
// each, with one keep-alive connection open. The pods belong to containerd and
// keep running, the kernel rules stay while no agent runs and the new agent's
// first sync replaces them: no request fails, the long connection answers from
// the same pod afterwards, no container was restarted and the Node stayed
// Ready all along.
func TestChaosAgentRestart(t *testing.T) {
	for _, mode := range []string{"nftables", "iptables"} {
		t.Run(mode, func(t *testing.T) { testChaosAgentRestart(t, mode) })
	}
}

func testChaosAgentRestart(t *testing.T, mode string) {
	requireCNI(t)
	images := imagesDir(t, "pause.tar", "agnhost.tar")
	dir := t.TempDir()
	port := freePort(t)
	// The node's own address (192.168.50.1, on the client's veth), as in
	// TestChaosRestart: the node's connections to cluster IPs leave from it.
	client := clientNetns(t)
	criCleanup(t, dir) // runs after both processes stopped: the pods of <dir>/agent's containerd
	cp := startAPIServer(t, dir, "127.0.0.1", port)
	kc := userKubeconfig(t, dir, fmt.Sprintf("https://127.0.0.1:%d", port), "system:node:local", "system:nodes")
	const registered = "svcnet agent: node local registered"
	args := []string{"agent", "--kubeconfig", kc, "--node-name", "local", "--node-ip", "192.168.50.1",
		"--root-dir", filepath.Join(dir, "agent"), "--pod-runtime=on", "--container-runtime=cri", "--images", images,
		"--proxy-mode=" + mode, "--dns-resolv-conf", "", "--healthz-bind-address", "", "--metrics-bind-address", ""}
	agent := startProcess(t, dir, 0, kc, registered, args...)

	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "roll.yaml"), rollApp+"---\n"+rollExtra, 0o644))
	waitReady(t, cp, "roll", 3, 120*time.Second)
	svcIP := strings.TrimSpace(cp.must("get", "svc", "roll", "-o", "jsonpath={.spec.clusterIP}"))
	loops := []*reqLoop{
		{name: "cluster IP " + svcIP + ":80 from the node", get: getNode("http://" + svcIP + "/")},
		{name: "NodePort 192.168.50.1:30090 from the client", get: getFrom(client, "192.168.50.1:30090")},
	}
	for _, l := range loops {
		waitFor(t, l.name, 30*time.Second, func() bool { b, err := l.get(); return err == nil && strings.HasPrefix(b, "roll-") })
	}
	kept, err := dialKept(svcIP + ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.conn.Close()
	first, err := kept.ask()
	if err != nil {
		t.Fatalf("the long-lived connection: %v", err)
	}
	containers := `jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID}/{.status.containerStatuses[0].restartCount} {end}`
	before := cp.must("get", "pods", "-l", "app=roll", "-o", containers)
	readyCond := `jsonpath={.status.conditions[?(@.type=="Ready")].status} since {.status.conditions[?(@.type=="Ready")].lastTransitionTime}`
	readyBefore := cp.must("get", "node", "local", "-o", readyCond)
	if !strings.HasPrefix(readyBefore, "True ") {
		t.Fatalf("node Ready before the restart: %s", readyBefore)
	}

	notReadyBefore := cp.must("get", "events", "-A", "--field-selector", "reason=NodeNotReady", "-o", "name")
	readyChanges := watchNodeReady(t, cp, "local")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Go(func() { l.run(stop) })
	}
	time.Sleep(2 * time.Second) // load before the restart
	start := time.Now()
	agent.stop()
	stopped := time.Since(start)
	startProcess(t, dir, 0, kc, registered, args...) // stopped when the test ends
	down := time.Since(start)
	// Load on while the new agent takes the pods back (relists, probes, status).
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()

	again, err := kept.ask()
	var total, failed int64
	for _, l := range loops {
		total += l.total.Load()
		failed += l.failed.Load()
	}
	t.Logf("agent restart (%s): %d requests, %d failed, stopped in %v, serving again after %v; long-lived connection: %q before, %q after (%v)",
		mode, total, failed, stopped.Round(time.Millisecond), down.Round(time.Millisecond), first, again, err)
	for _, l := range loops {
		l.report(t)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed across the agent restart", failed, total)
	}
	if err != nil || again != first {
		t.Errorf("the connection open across the agent restart: %q, %v; want %q from the same pod", again, err, first)
	}
	if after := cp.must("get", "pods", "-l", "app=roll", "-o", containers); after != before {
		t.Errorf("containers changed across the agent restart:\nbefore %s\nafter  %s", before, after)
	}
	if changes := readyChanges(); len(changes) > 0 {
		t.Errorf("the node's Ready condition changed across the agent restart: %s", strings.Join(changes, "; "))
	}
	if readyAfter := cp.must("get", "node", "local", "-o", readyCond); readyAfter != readyBefore {
		t.Errorf("node Ready across the agent restart: %s before, %s after", readyBefore, readyAfter)
	}
	if ev := cp.must("get", "events", "-A", "--field-selector", "reason=NodeNotReady", "-o", "name"); ev != notReadyBefore {
		t.Errorf("the node was marked NotReady around the agent restart: events %q before, %q after", notReadyBefore, ev)
	}
}

// watchNodeReady watches Node name until the test ends; the returned function
// says each change of its Ready condition seen so far ("15:04:05.000 False
// KubeletNotReady: message").
func watchNodeReady(t *testing.T, c *cluster, name string) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.clientset(t).CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		changes []string
		last    string
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			n, ok := ev.Object.(*corev1.Node)
			if !ok {
				continue
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type != corev1.NodeReady {
					continue
				}
				s := fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message)
				mu.Lock()
				if last != "" && s != last {
					changes = append(changes, time.Now().Format("15:04:05.000")+" "+s)
				}
				last = s
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), changes...)
	}
}
