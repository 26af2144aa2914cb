package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

// fakeNode plays a node agent until stopped: it registers a Ready node, renews
// its Lease every 500ms, and gives every pod bound to it an IP and Ready=True.
type fakeNode struct {
	name    string
	cs      *kubernetes.Clientset
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	nextIP  int
	podIPs  map[string]string
	stopped bool
}

func startFakeNode(t *testing.T, c *cluster, name string) *fakeNode {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{name: name, cs: kubernetes.NewForConfigOrDie(cfg), done: make(chan struct{}), podIPs: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	now := metav1.Now()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelTopologyZone: "zone-1"}}}
	if _, err := n.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error { // the pod CIDR allocator writes the node too
		cur, err := n.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now}}
		_, err = n.cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	holder := name
	if _, err := n.cs.CoordinationV1().Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &metav1.MicroTime{Time: time.Now()}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	go n.run(ctx)
	t.Cleanup(n.stop)
	return n
}

func (n *fakeNode) stop() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	n.mu.Unlock()
	n.cancel()
	<-n.done
}

func (n *fakeNode) run(ctx context.Context) {
	defer close(n.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastRenew := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(lastRenew) > 500*time.Millisecond {
			if l, err := n.cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, n.name, metav1.GetOptions{}); err == nil {
				l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				if _, err := n.cs.CoordinationV1().Leases("kube-node-lease").Update(ctx, l, metav1.UpdateOptions{}); err == nil {
					lastRenew = time.Now()
				}
			}
		}
		pods, err := n.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.name})
		if err != nil {
			continue
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil {
				zero := int64(0)
				_ = n.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				continue
			}
			if p.Status.Phase == corev1.PodRunning {
				continue
			}
			n.mu.Lock()
			n.nextIP++
			ip := fmt.Sprintf("10.244.0.%d", n.nextIP)
			n.podIPs[p.Name] = ip
			n.mu.Unlock()
			t := metav1.Now()
			p.Status.Phase, p.Status.PodIP, p.Status.PodIPs = corev1.PodRunning, ip, []corev1.PodIP{{IP: ip}}
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: t}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Ready: true, Image: p.Spec.Containers[0].Image,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t}}}}
			_, _ = n.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}
	}
}

func waitKubectl(t *testing.T, c *cluster, what string, timeout time.Duration, cond func(string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var out, errOut string
	for time.Now().Before(deadline) {
		out, errOut, _ = c.kubectl(args...)
		if cond(out) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	state, _, _ := c.kubectl("get", "deploy,rs,pods,endpoints", "-o", "wide")
	t.Fatalf("%s: not reached within %v; last output:\n%s%s\ncluster:\n%s", what, timeout, out, errOut, state)
	return ""
}

var ipPort = regexp.MustCompile(`10\.244\.0\.\d+:8080`)

func TestControllersEndToEnd(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--node-monitor-grace-period", "2s", "--node-name", "local")
	c.must("cordon", "local") // this test plays node-a itself; the agent's node runs nothing
	node := startFakeNode(t, c, "node-a")
	manifest := writeFile(t, filepath.Join(dir, "web.yaml"), `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      nodeSelector: {topology.kubernetes.io/zone: zone-1} # node-a's: never the agent's node, cordoned or not yet
      containers:
      - name: web
        image: agnhost:v1
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
        ports:
        - name: http
          containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
`, 0o644)
	c.must("apply", "-f", manifest)
	readyAddrs := []string{"get", "endpoints", "web", "-o", "jsonpath={range .subsets[*].addresses[*]}{.ip} {end}"}
	waitAddrs := func(n int) {
		t.Helper()
		waitKubectl(t, c, fmt.Sprintf("%d ready endpoints", n), 30*time.Second, func(o string) bool { return len(strings.Fields(o)) == n }, readyAddrs...)
	}
	waitAddrs(3)
	out := c.must("get", "endpoints", "web")
	rows := wantHeader(t, out, "NAME", "ENDPOINTS", "AGE")
	if len(rows) != 1 || len(strings.Split(rows[0][1], ",")) != 3 {
		t.Fatalf("endpoints row %v", rows)
	}
	d := c.must("describe", "svc", "web")
	if got := len(ipPort.FindAllString(d, -1)); got != 3 || !regexp.MustCompile(`(?m)^TargetPort:\s+http/TCP$`).MatchString(d) {
		t.Fatalf("describe svc shows %d endpoints:\n%s", got, d)
	}
	slices := c.must("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
		"jsonpath={range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready} {.nodeName} {.zone}{\"\\n\"}{end}")
	if strings.Count(slices, " true node-a zone-1") != 3 {
		t.Fatalf("slice endpoints:\n%s", slices)
	}
	if out := c.must("rollout", "status", "deployment/web", "--timeout=30s"); !strings.Contains(out, `deployment "web" successfully rolled out`) {
		t.Fatalf("rollout status: %s", out)
	}
	waitKubectl(t, c, "READY 3/3", 30*time.Second, func(o string) bool {
		r := table(o)
		return len(r) == 2 && r[1][1] == "3/3" && r[1][2] == "3" && r[1][3] == "3"
	}, "get", "deploy", "web")

	c.must("scale", "deployment", "web", "--replicas=5")
	waitAddrs(5)
	c.must("scale", "deployment", "web", "--replicas=1")
	waitAddrs(1)
	waitKubectl(t, c, "1 pod", 30*time.Second, func(o string) bool { return len(table(o)) == 2 }, "get", "pods", "-l", "app=web")
	c.must("scale", "deployment", "web", "--replicas=3")
	waitAddrs(3)

	// Rolling update to a new template.
	c.must("set", "image", "deployment/web", "web=agnhost:v2")
	if out, e, err := c.kubectl("rollout", "status", "deployment/web", "--timeout=60s"); err != nil || !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("rolling update: %v\n%s\n%s", err, out, e)
	}
	images := waitKubectl(t, c, "only new pods", 30*time.Second, func(o string) bool {
		return strings.Count(o, "agnhost:v2") == 3 && !strings.Contains(o, "agnhost:v1")
	}, "get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.spec.containers[0].image} {end}")
	_ = images
	rs := table(c.must("get", "rs", "-l", "app=web"))
	if len(rs) != 3 {
		t.Fatalf("replica sets after one rollout: %v", rs)
	}
	waitAddrs(3)
	ev := c.must("describe", "deployment", "web")
	if !strings.Contains(ev, "ScalingReplicaSet") {
		t.Errorf("describe deployment shows no ScalingReplicaSet events:\n%s", ev)
	}

	// The node dies: within the grace period (2s) its endpoints turn not ready.
	node.stop()
	died := time.Now()
	waitKubectl(t, c, "endpoints not ready", 15*time.Second, func(o string) bool {
		r := table(o)
		return len(r) == 2 && r[1][1] == "<none>"
	}, "get", "endpoints", "web")
	took := time.Since(died)
	t.Logf("endpoints not ready %v after the node's last heartbeat (grace 2s)", took.Round(10*time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("endpoints took %v to turn not ready, grace period is 2s", took)
	}
	nodeRow := table(c.must("get", "node", "node-a"))
	if nodeRow[1][1] != "NotReady" {
		t.Fatalf("node status %v", nodeRow)
	}
	// Deleting the Deployment collects its ReplicaSets; their pods start
	// terminating, but a dead node cannot finish that (as in Kubernetes)...
	c.must("delete", "deployment", "web", "--wait=false")
	waitKubectl(t, c, "replica sets collected", 30*time.Second, func(o string) bool { return strings.TrimSpace(o) == "" },
		"get", "rs", "-l", "app=web", "-o", "name")
	waitKubectl(t, c, "pods terminating", 30*time.Second, func(o string) bool { return strings.Count(o, "Terminating") == 3 },
		"get", "pods", "-l", "app=web")
	// ...until the node is deleted: then its pods go.
	c.must("delete", "node", "node-a")
	waitKubectl(t, c, "pods of the deleted node removed", 30*time.Second, func(o string) bool { return strings.TrimSpace(o) == "" },
		"get", "pods", "-l", "app=web", "-o", "name")
}
