package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestClusterDNS runs `svcnet dns` on the cluster DNS IP (added to loopback of the
// test's network namespace) and resolves names as a pod would.
func TestClusterDNS(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t))
	dnsIP := strings.TrimSpace(c.must("-n", "kube-system", "get", "svc", "kube-dns", "-o", "jsonpath={.spec.clusterIP}"))
	if dnsIP != "10.96.0.10" {
		t.Fatalf("kube-dns clusterIP %q, want 10.96.0.10", dnsIP)
	}
	if out, err := exec.Command("ip", "addr", "add", dnsIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startProcess(t, dir, 53, c.kubeconfig, "svcnet dns serving cluster.local. on "+dnsIP+":53 (udp+tcp)",
		"dns", "--kubeconfig", c.kubeconfig, "--listen", dnsIP+":53", "--resolv-conf", "", "--metrics-listen", metrics)
	waitHTTP(t, "http://"+metrics+"/ready")

	manifest := writeFile(t, filepath.Join(dir, "dns.yaml"), `apiVersion: v1
kind: Service
metadata:
  name: httpd-svc
  namespace: default
spec:
  selector:
    app: httpd
  ports:
  - name: http
    port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: httpd2-svc
  namespace: kube-public
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: default
spec:
  clusterIP: None
  ports:
  - name: pg
    port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: db
  namespace: default
subsets:
- addresses:
  - ip: 10.244.0.5
    hostname: db-0
  - ip: 10.244.0.6
    hostname: db-1
  ports:
  - name: pg
    port: 5432
---
apiVersion: v1
kind: Service
metadata:
  name: ext
  namespace: default
spec:
  type: ExternalName
  externalName: db.example.com
`, 0o644)
	c.must("apply", "-f", manifest)
	ip := strings.TrimSpace(c.must("get", "svc", "httpd-svc", "-o", "jsonpath={.spec.clusterIP}"))
	ip2 := strings.TrimSpace(c.must("-n", "kube-public", "get", "svc", "httpd2-svc", "-o", "jsonpath={.spec.clusterIP}"))

	dig := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("dig", append([]string{"@" + dnsIP, "+short", "+tries=1", "+time=2"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// Wait for the headless endpoints to be mirrored and indexed.
	deadline := time.Now().Add(20 * time.Second)
	for dig("db.default.svc.cluster.local") != "10.244.0.5\n10.244.0.6" {
		if time.Now().After(deadline) {
			t.Fatalf("headless answer: %q", dig("db.default.svc.cluster.local"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A pod's view: its own resolv.conf bind-mounted in a private mount namespace.
	resolv := writeFile(t, filepath.Join(dir, "resolv.conf"),
		"nameserver "+dnsIP+"\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n", 0o644)
	for name, want := range map[string]string{
		"httpd-svc":                           ip + " httpd-svc.default.svc.cluster.local",
		"httpd-svc.default":                   ip + " httpd-svc.default.svc.cluster.local",
		"httpd2-svc.kube-public":              ip2 + " httpd2-svc.kube-public.svc.cluster.local",
		"httpd-svc.default.svc.cluster.local": ip + " httpd-svc.default.svc.cluster.local",
	} {
		out, err := exec.Command("unshare", "--mount", "sh", "-c", "mount --bind "+resolv+" /etc/resolv.conf && getent hosts "+name).CombinedOutput()
		if got := strings.Join(strings.Fields(string(out)), " "); err != nil || got != want {
			t.Errorf("getent hosts %s = %q (%v), want %q", name, got, err, want)
		}
	}
	if got := dig("SRV", "_http._tcp.httpd-svc.default.svc.cluster.local"); got != "0 100 8080 httpd-svc.default.svc.cluster.local." {
		t.Errorf("SRV: %q", got)
	}
	if got := dig("-x", ip); got != "httpd-svc.default.svc.cluster.local." {
		t.Errorf("PTR: %q", got)
	}
	if got := dig("SRV", "_pg._tcp.db.default.svc.cluster.local"); got != "0 50 5432 db-0.db.default.svc.cluster.local.\n0 50 5432 db-1.db.default.svc.cluster.local." {
		t.Errorf("headless SRV: %q", got)
	}
	if got := dig("db-1.db.default.svc.cluster.local"); got != "10.244.0.6" {
		t.Errorf("per-endpoint name: %q", got)
	}
	if got := dig("-x", "10.244.0.5"); got != "db-0.db.default.svc.cluster.local." {
		t.Errorf("headless PTR: %q", got)
	}
	if got := dig("ext.default.svc.cluster.local"); !strings.HasPrefix(got, "db.example.com.") {
		t.Errorf("ExternalName: %q", got)
	}

	// Deleting a Service makes its name NXDOMAIN within 100 ms.
	cfg, _ := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	cs := kubernetes.NewForConfigOrDie(cfg)
	q := new(mdns.Msg)
	q.SetQuestion("httpd-svc.default.svc.cluster.local.", mdns.TypeA)
	client := &mdns.Client{Timeout: time.Second}
	start := time.Now()
	if err := cs.CoreV1().Services("default").Delete(context.Background(), "httpd-svc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		m, _, err := client.Exchange(q, dnsIP+":53")
		if err == nil && m.Rcode == mdns.RcodeNameError {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("still answering 5s after the delete: %v %v", m, err)
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("NXDOMAIN %v after the delete request started", took.Round(100*time.Microsecond))
	if took > 100*time.Millisecond {
		t.Errorf("NXDOMAIN after %v, want within 100ms", took)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 30s", url)
}
