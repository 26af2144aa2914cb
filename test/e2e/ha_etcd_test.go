package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/internal/apilb"
)

// TestThreeServersThreeMembers runs the scaled-out control plane: three
// `svcnet server`s, each with an embedded member of one three-member etcd
// (--etcd-initial-cluster). A client that fails over between them
// (internal/apilb, what `svcnet agent --server` and `svcnet join A,B,C` use)
// creates ConfigMaps while the server it talks to is killed with its etcd
// member: the creates go on through the others and no acknowledged one is lost.
func TestThreeServersThreeMembers(t *testing.T) {
	names := []string{"a", "b", "c"}
	var dirs, urls, peers []string
	var ports []int
	for _, n := range names {
		dirs = append(dirs, t.TempDir())
		ports = append(ports, freePort(t))
		urls = append(urls, fmt.Sprintf("https://127.0.0.1:%d", ports[len(ports)-1]))
		peers = append(peers, fmt.Sprintf("%s=http://127.0.0.1:%d", n, freePort(t)))
	}
	initial := strings.Join(peers, ",")
	start := func(i int) *cluster {
		ready := fmt.Sprintf("svcnet API server at %s (admin kubeconfig: svcnet kubeconfig --data-dir %s)", urls[i], dirs[i])
		return startProcess(t, dirs[i], ports[i], filepath.Join(dirs[i], "admin.kubeconfig"), ready, "server", "--data-dir", dirs[i],
			"--etcd-name", names[i], "--etcd-initial-cluster", initial, "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(ports[i]))
	}
	// Server a makes the cluster's CA, service account key and tokens before
	// it waits for its etcd peers; the others get copies, as the README says.
	servers := make([]*cluster, 3)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); servers[0] = start(0) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dirs[0], "etcd")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server a made no etcd directory within 60s")
		}
		time.Sleep(50 * time.Millisecond) // polling for a file another process writes
	}
	for _, d := range dirs[1:] {
		if out, err := exec.Command("cp", "-a", filepath.Join(dirs[0], "pki"), filepath.Join(dirs[0], "tokens.csv"), d).CombinedOutput(); err != nil {
			t.Fatalf("copy the PKI: %v: %s", err, out)
		}
	}
	for i := 1; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); servers[i] = start(i) }()
	}
	wg.Wait()
	for _, s := range servers {
		if s == nil {
			t.FailNow() // start reported why
		}
	}
	kc, err := exec.Command(svcnetBin, "kubeconfig", "--data-dir", dirs[0], "--server", urls[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addrs, _ := apilb.Addresses("servers", urls)
	lb, err := apilb.Start(ctx, addrs, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Timeout = lb.URL(), 10*time.Second
	client := kubernetes.NewForConfigOrDie(cfg)

	// 300 creates; after the 100th, server a (the one the client uses) dies
	// with its etcd member. A create that fails is tried again (bounded).
	const total, killAt = 300, 100
	var acked []string
	retries := 0
	for i := 0; i < total; i++ {
		if i == killAt {
			if err := servers[0].cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-servers[0].done
		}
		name := fmt.Sprintf("cm-%03d", i)
		for attempt := 0; ; attempt++ {
			_, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if err == nil || strings.Contains(err.Error(), "already exists") { // a create whose answer was lost on the way
				break
			}
			if attempt == 20 || ctx.Err() != nil {
				t.Fatalf("create %s: %v (after %d retries)", name, err, attempt)
			}
			retries++
			time.Sleep(250 * time.Millisecond) // back-off between retries of one request, not a wait for a condition
		}
		acked = append(acked, name)
	}
	// Every acknowledged create is there, read through each surviving server.
	for _, i := range []int{1, 2} {
		c, err := clientcmd.RESTConfigFromKubeConfig(kc)
		if err != nil {
			t.Fatal(err)
		}
		c.Host = urls[i]
		list, err := kubernetes.NewForConfigOrDie(c).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list through server %s: %v", names[i], err)
		}
		have := map[string]bool{}
		for _, cm := range list.Items {
			have[cm.Name] = true
		}
		for _, n := range acked {
			if !have[n] {
				t.Fatalf("server %s: acknowledged ConfigMap %s is missing", names[i], n)
			}
		}
	}
	t.Logf("3 servers / 3 etcd members: %d creates acknowledged, server a and its member killed after %d, %d retries during the failover, 0 lost", len(acked), killAt, retries)
}
