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

	readyCond := `jsonpath={.status.conditions[?(@.type=="Ready")].status} since {.status.conditions[?(@.type=="Ready")].lastTransitionTime}`
	var readyBefore, notReadyBefore string
	var readyChanges func() []string
	var stopped time.Duration
	r := restartUnderLoad(t, cp, client, func() *cluster {
		readyBefore = cp.must("get", "node", "local", "-o", readyCond)
		if !strings.HasPrefix(readyBefore, "True ") {
			t.Errorf("node Ready before the restart: %s", readyBefore)
		}
		notReadyBefore = cp.must("get", "events", "-A", "--field-selector", "reason=NodeNotReady", "-o", "name")
		readyChanges = watchNodeReady(t, cp, "local")
		start := time.Now()
		agent.stop()
		stopped = time.Since(start)
		startProcess(t, dir, 0, kc, registered, args...) // stopped when the test ends
		return cp
	})
	r.check(t, fmt.Sprintf("agent restart (stopped in %v)", stopped.Round(time.Millisecond)), mode)
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
