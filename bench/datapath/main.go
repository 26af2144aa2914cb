// Command datapath measures the service proxy's data path: requests per second
// (a new connection each) and bulk throughput to a pod through its Service's
// cluster IP, against the same directly to the pod IP, measured in the same run,
// for each backend (nftables, userspace). Needs root: `svcnet up` runs in a
// network namespace of its own, with one `svcnet agnhost netexec` pod.
//
//	go run ./bench/datapath [-requests 3000] [-bytes 2147483648]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/svcnet/svcnet/bench/harness"
)

func main() {
	requests := flag.Int("requests", 3000, "requests per measurement (a new connection each)")
	bytes := flag.Int64("bytes", 2<<30, "bytes per bulk download")
	flag.Parse()
	in, err := harness.InNetns("datapath")
	if in != nil {
		for _, mode := range []string{"nftables", "userspace"} {
			if err = inside(in, mode, *requests, *bytes); err != nil {
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/datapath:", err)
		os.Exit(1)
	}
}

const app = `apiVersion: v1
kind: Pod
metadata: {name: bulk, labels: {app: bulk}}
spec:
  containers:
  - name: netexec
    image: svcnet/agnhost
    command: ["svcnet", "agnhost", "netexec", "--http-port", "8080", "--udp-port", "0"]
---
apiVersion: v1
kind: Service
metadata: {name: bulk}
spec:
  selector: {app: bulk}
  ports: [{port: 80, targetPort: 8080}]
`

func inside(in *harness.Inside, mode string, requests int, bytes int64) error {
	bin, tmp := in.Bin, in.Tmp
	data := filepath.Join(tmp, mode)
	up := exec.Command(bin, "up", "--data-dir", data, "--secure-port", "6443", "--proxy-mode", mode, "--dns-resolv-conf", "", "--log-level", "error")
	out, _ := up.StdoutPipe()
	if err := up.Start(); err != nil {
		return err
	}
	defer func() { _ = up.Process.Signal(os.Interrupt); _ = up.Wait() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "svcnet is up") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		return fmt.Errorf("svcnet up not ready")
	}
	kc := filepath.Join(data, "kubeconfig")
	kubectl := func(args ...string) (string, error) {
		c := exec.Command("kubectl", args...)
		c.Env = append(os.Environ(), "KUBECONFIG="+kc)
		b, err := c.CombinedOutput()
		return strings.TrimSpace(string(b)), err
	}
	manifest := filepath.Join(tmp, "bulk.yaml")
	if err := os.WriteFile(manifest, []byte(app), 0o644); err != nil {
		return err
	}
	if out, err := kubectl("apply", "-f", manifest); err != nil {
		return fmt.Errorf("apply: %v %s", err, out)
	}
	var podIP, svcIP string
	for i := 0; i < 300; i++ {
		podIP, _ = kubectl("get", "pod", "bulk", "-o", "jsonpath={.status.podIP}")
		eps, _ := kubectl("get", "endpoints", "bulk", "-o", "jsonpath={.subsets[0].addresses[0].ip}")
		svcIP, _ = kubectl("get", "svc", "bulk", "-o", "jsonpath={.spec.clusterIP}")
		if podIP != "" && eps == podIP {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	direct, service := "http://"+podIP+":8080", "http://"+svcIP+":80"
	for _, u := range []string{direct, service} { // warm up, and check both answer
		if _, err := rps(u, 50); err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
	}
	fmt.Printf("\n%s backend (%d requests, a connection each; %d MiB downloads; 3 alternating rounds, best of each):\n", mode, requests, bytes>>20)
	var bestD, bestS, tpD, tpS float64
	for round := 0; round < 3; round++ {
		d, err := rps(direct, requests)
		if err != nil {
			return err
		}
		s, err := rps(service, requests)
		if err != nil {
			return err
		}
		td, err := throughput(direct, bytes)
		if err != nil {
			return err
		}
		ts, err := throughput(service, bytes)
		if err != nil {
			return err
		}
		bestD, bestS, tpD, tpS = max(bestD, d), max(bestS, s), max(tpD, td), max(tpS, ts)
	}
	fmt.Printf("  requests/s: pod IP %.0f, cluster IP %.0f: ratio %.2f\n", bestD, bestS, bestS/bestD)
	fmt.Printf("  throughput: pod IP %.0f MiB/s, cluster IP %.0f MiB/s: ratio %.2f\n", tpD, tpS, tpS/tpD)
	return nil
}

// rps makes n sequential requests, each on a new connection.
func rps(base string, n int) (float64, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	for i := 0; i < n; i++ {
		resp, err := client.Get(base + "/hostname")
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// throughput downloads n bytes and returns MiB/s.
func throughput(base string, n int64) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/bytes?n=%d", base, n), nil)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil || got != n {
		return 0, fmt.Errorf("downloaded %d of %d bytes: %v", got, n, err)
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}
