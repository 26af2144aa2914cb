package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// startAPIServer runs `svcnet server` (etcd embedded in dir, so stopping it stops
// both) on bind:port and gives it an admin kubeconfig.
func startAPIServer(t *testing.T, dir, bind string, port int, extra ...string) *cluster {
	t.Helper()
	url := fmt.Sprintf("https://%s:%d", bind, port)
	ready := fmt.Sprintf("svcnet API server at %s (admin kubeconfig: svcnet kubeconfig --data-dir %s)", url, dir)
	args := append([]string{"server", "--data-dir", dir, "--bind-address", bind, "--secure-port", fmt.Sprint(port)}, extra...)
	c := startProcess(t, dir, port, "", ready, args...)
	c.kubeconfig = userKubeconfig(t, dir, url, "admin", "system:masters")
	return c
}

// clientset is a client-go clientset for the cluster's admin, with a short
// per-request timeout so that requests to a dead server fail fast.
func (c *cluster) clientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = 1000, 2000, 10*time.Second
	return kubernetes.NewForConfigOrDie(cfg)
}

var repairLineRE = regexp.MustCompile(`allocation repair" services=\d+ restored=\d+ removed=\d+ conflicts=\d+`)

// TestChaosKillDuringCreates: kill -9 of the API server (and its embedded etcd)
// while 8 clients create 1,000 NodePort Services. Every create the server
// acknowledged (201) is there after the restart with the cluster IP and node port
// it was answered with, and no cluster IP or node port is held twice.
func TestChaosKillDuringCreates(t *testing.T) {
	const total, workers, killAfter = 1000, 8, 300
	dir := t.TempDir()
	port := freePort(t)
	srv := startAPIServer(t, dir, "127.0.0.1", port)
	cs := srv.clientset(t)

	type ack struct {
		uid, ip string
		port    int32
	}
	var (
		mu         sync.Mutex
		acked      = map[string]ack{}
		unacked    atomic.Int64 // committed, but the client never heard 201: AlreadyExists on retry
		failed     atomic.Int64 // attempts that got no answer or an error
		ackedCount atomic.Int64
	)
	deadline := time.Now().Add(3 * time.Minute)
	idx := make(chan int, total)
	for i := 0; i < total; i++ {
		idx <- i
	}
	close(idx)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%04d", i)},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
				for time.Now().Before(deadline) {
					out, err := cs.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{})
					if err == nil {
						mu.Lock()
						acked[svc.Name] = ack{string(out.UID), out.Spec.ClusterIP, out.Spec.Ports[0].NodePort}
						mu.Unlock()
						ackedCount.Add(1)
						break
					}
					if apierrors.IsAlreadyExists(err) {
						unacked.Add(1)
						break
					}
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	for ackedCount.Load() < killAfter {
		if time.Now().After(deadline) {
			t.Fatalf("only %d creates acknowledged before the deadline", ackedCount.Load())
		}
		time.Sleep(time.Millisecond)
	}
	_ = srv.cmd.Process.Kill()
	<-srv.done
	killedAt, ackedBeforeKill := time.Now(), ackedCount.Load()
	srv = startAPIServer(t, dir, "127.0.0.1", port)
	restart := time.Since(killedAt)
	wg.Wait()

	list, err := cs.CoreV1().Services("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]corev1.Service{}
	ips, ports := map[string]string{}, map[int32]string{}
	dups := 0
	for _, s := range list.Items {
		byName[s.Name] = s
		if other, ok := ips[s.Spec.ClusterIP]; ok {
			t.Errorf("cluster IP %s held by %s and %s", s.Spec.ClusterIP, other, s.Name)
			dups++
		}
		ips[s.Spec.ClusterIP] = s.Name
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			if other, ok := ports[p.NodePort]; ok {
				t.Errorf("node port %d held by %s and %s", p.NodePort, other, s.Name)
				dups++
			}
			ports[p.NodePort] = s.Name
		}
	}
	lost := 0
	for name, a := range acked {
		s, ok := byName[name]
		if !ok || string(s.UID) != a.uid || s.Spec.ClusterIP != a.ip || s.Spec.Ports[0].NodePort != a.port {
			t.Errorf("acknowledged %s (uid %s, %s, node port %d) is now %v", name, a.uid, a.ip, a.port, s.Spec)
			lost++
		}
	}
	created := len(list.Items) - 1 // the kubernetes Service
	repair := repairLineRE.FindString(srv.logs())
	t.Logf("kill -9 after %d acknowledged creates; server back in %v; %d creates: %d acknowledged, %d committed without an answer, %d attempts failed and retried; "+
		"%d Services stored, %d acknowledged lost, %d duplicate cluster IPs/node ports; restart: %s",
		ackedBeforeKill, restart.Round(time.Millisecond), total, len(acked), unacked.Load(), failed.Load(), created, lost, dups, repair)
	if created != total || len(acked)+int(unacked.Load()) != total {
		t.Errorf("%d Services stored, %d acknowledged + %d unanswered; want %d", created, len(acked), unacked.Load(), total)
	}
	if repair == "" || !strings.HasSuffix(repair, "conflicts=0") {
		t.Errorf("allocation repair after the crash: %q", repair)
	}
}
