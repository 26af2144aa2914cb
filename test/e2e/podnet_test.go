package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svcnet/svcnet/internal/podnet"
)

func TestPodNetworkThroughCNI(t *testing.T) {
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Fatalf("CNI plugins missing (scripts/test-deps.sh installs containernetworking-plugins): %v", err)
	}
	dir := t.TempDir()
	network, err := podnet.New(podnet.Config{PodCIDR: "10.244.9.0/24", Bridge: "svcnet-t0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	names := []string{fmt.Sprintf("svcnet-pa-%d", os.Getpid()), fmt.Sprintf("svcnet-pb-%d", os.Getpid())}
	ips := map[string]netip.Addr{}
	for _, n := range names {
		ip, err := network.Setup(ctx, n, n)
		if err != nil {
			t.Fatalf("setup %s: %v", n, err)
		}
		n := n
		t.Cleanup(func() { _ = network.Teardown(ctx, n, n) })
		if !netip.MustParsePrefix("10.244.9.0/24").Contains(ip) {
			t.Fatalf("pod IP %s outside the pod CIDR", ip)
		}
		ips[n] = ip
	}
	if ips[names[0]] == ips[names[1]] {
		t.Fatalf("two pods got %s", ips[names[0]])
	}
	// A process in pod A: reachable from the node and from pod B, without NAT.
	cmd := exec.Command("ip", "netns", "exec", names[0], svcnetBin, "agnhost", "serve-hostname", "--port", "8080")
	cmd.Env = append(os.Environ(), "HOSTNAME=pod-a")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	target := net.JoinHostPort(ips[names[0]].String(), "8080")
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		res, err := (&http.Client{Timeout: time.Second}).Get("http://" + target)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			body = string(b)
			break
		}
	}
	if body != "pod-a" {
		t.Fatalf("from the node: %q", body)
	}
	if got, err := getPath(names[1], target, "/"); err != nil || got != "pod-a" {
		t.Fatalf("from pod B: %q %v", got, err)
	}
	if held, _ := filepath.Glob(filepath.Join(dir, "ipam", "svcnet", "10.244.9.*")); len(held) != 2 {
		t.Fatalf("host-local should hold 2 reservations, has %v", held)
	}
	// Teardown leaves nothing: namespaces, veths and IP reservations are gone.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	for _, n := range names {
		if err := network.Teardown(ctx, n, n); err != nil {
			t.Fatalf("teardown %s: %v", n, err)
		}
		if err := network.Teardown(ctx, n, n); err != nil {
			t.Fatalf("second teardown %s: %v", n, err)
		}
		if _, err := os.Stat(podnet.NetnsPath(n)); err == nil {
			t.Fatalf("namespace %s left behind", n)
		}
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "type", "veth").CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("veths left behind:\n%s", out)
	}
	reserved, _ := filepath.Glob(filepath.Join(dir, "ipam", "svcnet", "10.244.9.*"))
	if len(reserved) != 0 {
		t.Fatalf("IP reservations left behind: %v", reserved)
	}
}
