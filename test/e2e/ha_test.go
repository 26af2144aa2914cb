package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/svcnet/svcnet/internal/storage"
)

// TestTwoServersOneEtcd runs two `svcnet server` processes on one external etcd (as
// in an HA control plane) and creates Services through both at once: every cluster IP
// and node port must be unique, and each server sees every object.
func TestTwoServersOneEtcd(t *testing.T) {
	dir := t.TempDir()
	etcd, err := storage.StartEmbedded(context.Background(), filepath.Join(dir, "etcd-member"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()

	var servers []*cluster
	for i := 0; i < 2; i++ {
		port := freePort(t)
		url := fmt.Sprintf("https://127.0.0.1:%d", port)
		ready := fmt.Sprintf("svcnet API server at %s (admin kubeconfig: svcnet kubeconfig --data-dir %s)", url, dir)
		kc := filepath.Join(dir, fmt.Sprintf("server%d.kubeconfig", i))
		c := startProcess(t, dir, port, kc, ready, "server", "--data-dir", dir, "--etcd-servers", etcd.ClientURL,
			"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port), "--service-node-port-range", "30000-30099")
		out, err := exec.Command(svcnetBin, "kubeconfig", "--data-dir", dir, "--server", url).Output()
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, kc, string(out), 0o600)
		servers = append(servers, c)
	}

	const n = 40
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := servers[i%2]
			if _, e, err := c.kubectl("create", "service", "nodeport", fmt.Sprintf("s%02d", i), "--tcp", "80:8080"); err != nil {
				errs <- e
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("create failed: %s", e)
	}
	for i, c := range servers {
		out := c.must("get", "svc", "-o", "jsonpath={range .items[*]}{.spec.clusterIP} {.spec.ports[0].nodePort}{\"\\n\"}{end}")
		ips, ports := map[string]bool{}, map[string]bool{}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			f := strings.Fields(l)
			if ips[f[0]] || (len(f) > 1 && ports[f[1]]) {
				t.Fatalf("server %d: duplicate allocation %q in\n%s", i, l, out)
			}
			ips[f[0]] = true
			if len(f) > 1 {
				ports[f[1]] = true
			}
		}
		if len(lines) != n+1 || len(ports) != n {
			t.Fatalf("server %d sees %d services with %d node ports, want %d and %d", i, len(lines), len(ports), n+1, n)
		}
	}
	// The same requested node port through both servers at once: exactly one wins.
	var wins, losses int
	var mu sync.Mutex
	for round := 0; round < 5; round++ {
		port := 30000 + round // the lower band, which dynamic allocation leaves to requests
		var wg sync.WaitGroup
		for i, c := range servers {
			wg.Add(1)
			go func(i int, c *cluster) {
				defer wg.Done()
				_, e, err := c.kubectl("create", "service", "nodeport", fmt.Sprintf("race%d-%d", round, i), "--tcp", "80:8080", "--node-port", fmt.Sprint(port))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if strings.Contains(e, "provided port is already allocated") {
					losses++
				} else {
					t.Errorf("unexpected error: %s", e)
				}
			}(i, c)
		}
		wg.Wait()
	}
	if wins != 5 || losses != 5 {
		t.Fatalf("requested-port races: %d wins, %d losses; want 5 and 5", wins, losses)
	}
}
