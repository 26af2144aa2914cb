package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, dir, port)
	c.must("create", "namespace", "keep")
	c.must("-n", "keep", "create", "service", "nodeport", "web", "--tcp", "80:8080", "--node-port", "30500")
	c.must("-n", "keep", "create", "configmap", "cfg", "--from-literal", "k=v")
	want := c.must("-n", "keep", "get", "svc", "web", "-o", "jsonpath={.metadata.uid} {.spec.clusterIP} {.spec.ports[0].nodePort}")
	c.stop()

	c2 := startCluster(t, dir, port)
	if got := c2.must("-n", "keep", "get", "svc", "web", "-o", "jsonpath={.metadata.uid} {.spec.clusterIP} {.spec.ports[0].nodePort}"); got != want {
		t.Fatalf("after restart service = %q, want %q", got, want)
	}
	if got := c2.must("-n", "keep", "get", "cm", "cfg", "-o", "jsonpath={.data.k}"); got != "v" {
		t.Fatalf("configmap after restart: %q", got)
	}
	// The allocations survived too: the node port and cluster IP are still taken.
	e := c2.fails("-n", "keep", "create", "service", "nodeport", "web2", "--tcp", "80:8080", "--node-port", "30500")
	if !strings.Contains(e, "provided port is already allocated") {
		t.Fatalf("node port reusable after restart: %s", e)
	}
	ip := strings.Fields(want)[1]
	clash := writeFile(t, filepath.Join(dir, "clash.yaml"), "apiVersion: v1\nkind: Service\nmetadata:\n  name: clash\n  namespace: keep\nspec:\n  clusterIP: "+ip+"\n  ports:\n  - port: 80\n", 0o644)
	if e := c2.fails("apply", "-f", clash); !strings.Contains(e, "provided IP is already allocated") {
		t.Fatalf("cluster IP reusable after restart: %s", e)
	}
	if !strings.Contains(c2.logs(), "restored=0 removed=0 conflicts=0") {
		t.Errorf("repair after a clean restart should change nothing:\n%s", c2.logs())
	}
}

// TestInformerAcrossRestart runs a client-go informer (list + watch, WatchList on by
// default in this client-go) through a restart of the API server.
func TestInformerAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, dir, port)
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().Services().Informer()
	var mu sync.Mutex
	seen := map[string]string{}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { mu.Lock(); seen[o.(*corev1.Service).Name] = "added"; mu.Unlock() },
		UpdateFunc: func(_, o any) {
			mu.Lock()
			seen[o.(*corev1.Service).Name] = "updated:" + o.(*corev1.Service).Labels["v"]
			mu.Unlock()
		},
		DeleteFunc: func(o any) {
			if s, ok := o.(*corev1.Service); ok {
				mu.Lock()
				seen[s.Name] = "deleted"
				mu.Unlock()
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	waitSeen := func(name, state string) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			mu.Lock()
			got := seen[name]
			mu.Unlock()
			if got == state {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("informer: %s is %q, want %q", name, got, state)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSeen("kubernetes", "added")
	mk := func(name string) {
		t.Helper()
		_, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	mk("before")
	waitSeen("before", "added")

	c.stop()
	c2 := startCluster(t, dir, port)
	mk("after")
	waitSeen("after", "added")
	svc, err := cs.CoreV1().Services("default").Get(ctx, "before", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Labels = map[string]string{"v": "2"}
	if _, err := cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSeen("before", "updated:2")
	if err := cs.CoreV1().Services("default").Delete(ctx, "after", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSeen("after", "deleted")
	_ = c2
}

// TestOldClientGo runs an informer built with client-go v0.32 (plain list+watch,
// no WatchList) against the server.
func TestOldClientGo(t *testing.T) {
	c := startCluster(t, t.TempDir(), freePort(t))
	out, err := exec.Command(informerBin, "--kubeconfig", c.kubeconfig).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "informer: ok") {
		t.Fatalf("client-go v0.32 informer: %v\n%s", err, out)
	}
}

func TestIdentities(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, dir, port)
	server := fmt.Sprintf("https://127.0.0.1:%d", port)

	// Anonymous requests get 401; the CA in the data directory verifies the server.
	caPEM, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	res, err := hc.Get(server + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("anonymous: %d, want 401", res.StatusCode)
	}

	kc := func(user string) string {
		out, err := exec.Command(svcnetBin, "kubeconfig", "--data-dir", dir, "--server", server, "--user", user).Output()
		if err != nil {
			t.Fatalf("svcnet kubeconfig --user %s: %v", user, err)
		}
		return writeFile(t, filepath.Join(dir, strings.ReplaceAll(user, ":", "-")+".kubeconfig"), string(out), 0o600)
	}
	as := func(path string, args ...string) (string, string, error) {
		return c.kubectl(append([]string{"--kubeconfig", path}, args...)...)
	}
	viewer := kc("viewer")
	if out, e, err := as(viewer, "get", "svc", "-A"); err != nil || !strings.Contains(out, "kubernetes") {
		t.Fatalf("viewer list: %v %s %s", err, out, e)
	}
	if _, e, err := as(viewer, "create", "configmap", "x"); err == nil || !strings.Contains(e, `User "viewer" cannot create resource "configmaps"`) {
		t.Fatalf("viewer create: %v %s", err, e)
	}
	if _, e, err := as(viewer, "get", "secrets"); err == nil || !strings.Contains(e, "Forbidden") {
		t.Fatalf("viewer secrets: %v %s", err, e)
	}
	if out, _, _ := as(viewer, "auth", "can-i", "create", "services"); strings.TrimSpace(out) != "no" {
		t.Fatalf("viewer can-i create services: %q", out)
	}
	if out, e, err := as(viewer, "auth", "whoami"); err != nil || !strings.Contains(out, "svcnet:viewers") {
		t.Fatalf("viewer whoami: %v %s %s", err, out, e)
	}
	node := kc("system:node:n1")
	nodeYAML := func(name string) string {
		return writeFile(t, filepath.Join(dir, name+".yaml"), "apiVersion: v1\nkind: Node\nmetadata:\n  name: "+name+"\n", 0o644)
	}
	if _, e, err := as(node, "create", "-f", nodeYAML("n1")); err != nil {
		t.Fatalf("node creates itself: %v %s", err, e)
	}
	if _, e, err := as(node, "create", "-f", nodeYAML("n2")); err == nil || !strings.Contains(e, "Forbidden") {
		t.Fatalf("node creates another node: %v %s", err, e)
	}
	if _, e, err := as(node, "label", "node", "n1", "zone=a"); err != nil {
		t.Fatalf("node labels itself: %v %s", err, e)
	}
	if _, e, err := c.kubectl("kubeconfig-does-not-matter"); err == nil {
		t.Fatalf("bogus kubectl verb accepted: %s", e)
	}
	if out, err := exec.Command(svcnetBin, "kubeconfig", "--data-dir", dir, "--user", "root").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), `--user: unknown identity "root"`) {
		t.Fatalf("bad --user: %v %s", err, out)
	}
}
