package e2e

import (
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPodsOverVXLAN: two nodes on two subnets (192.168.86.0/24 and
// 192.168.87.0/24, each its own bridge) joined only through a router namespace
// (no route out of the test): with the default --pod-network auto each node
// sees the other as routed and reaches its pods over VXLAN (the route to the
// other pod CIDR goes through svcnet.1), both ways, with the pod's own source
// IP (no NAT).
func TestPodsOverVXLAN(t *testing.T) {
	dir := t.TempDir()
	b1 := newBridge(t, "svce2evx1", "192.168.86.")
	b2 := newBridge(t, "svce2evx2", "192.168.87.")
	// The router: eth0 on the first subnet (.253), eth1 on the second (.253);
	// it has no route to any pod CIDR, so only encapsulated pod traffic passes.
	router := b1.node("vxr", 253)
	b2.ip("link", "add", "vvxr2", "type", "veth", "peer", "name", "eth1", "netns", router)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "vvxr2").Run() })
	b2.ip("link", "set", "vvxr2", "master", b2.name, "up")
	b2.ip("-n", router, "addr", "add", "192.168.87.253/24", "dev", "eth1")
	b2.ip("-n", router, "link", "set", "eth1", "up")
	if out, err := exec.Command("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("ip_forward: %v %s", err, out)
	}
	cp, startAgent := podServer(t, b1, dir)
	nodeA := b1.node("vxa", 1)
	b1.ip("-n", nodeA, "route", "add", "192.168.87.0/24", "via", "192.168.86.253")
	nodeB := b2.node("vxb", 1)
	b2.ip("-n", nodeB, "route", "add", "192.168.86.0/24", "via", "192.168.87.253")
	startAgent(nodeA, "vx-a", "192.168.86.1")
	startAgent(nodeB, "vx-b", "192.168.87.1")
	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "pods.yaml"), pinnedNetexec("pod-a", "vx-a")+pinnedNetexec("pod-b", "vx-b"), 0o644))
	out := waitKubectl(t, cp, "pods on both nodes running", 90*time.Second, func(s string) bool { return strings.Count(s, "Running") == 2 },
		"get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName} {.status.phase}{"\n"}{end}`)
	ips := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		ips[f[0]] = f[1]
	}
	cidrB := cp.must("get", "node", "vx-b", "-o", "jsonpath={.spec.podCIDR}")
	if !netip.MustParsePrefix(cidrB).Contains(netip.MustParseAddr(ips["pod-b"])) {
		t.Fatalf("pod-b %s not in vx-b's pod CIDR %s", ips["pod-b"], cidrB)
	}

	// clientIP asks pod to's /clientip from pod from, until it answers.
	clientIP := func(from, to string) string {
		t.Helper()
		var got, errOut string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			got, errOut, _ = cp.kubectl("exec", from, "--", "svcnet", "agnhost", "get", "--timeout", "2s", "http://"+ips[to]+":8080/clientip")
			if got != "" {
				return got
			}
		}
		t.Fatalf("%s -> %s: no answer (%s)", from, to, errOut)
		return ""
	}
	if got := clientIP("pod-a", "pod-b"); !strings.HasPrefix(got, ips["pod-a"]+":") {
		t.Errorf("pod-a -> pod-b /clientip = %q, want pod-a's own IP %s (no NAT)", got, ips["pod-a"])
	}
	if got := clientIP("pod-b", "pod-a"); !strings.HasPrefix(got, ips["pod-b"]+":") {
		t.Errorf("pod-b -> pod-a /clientip = %q, want pod-b's own IP %s (no NAT)", got, ips["pod-b"])
	}
	// Segments larger than the tunnel's MTU (1450) both ways: 4000 bytes up in
	// the request, the same back in the answer.
	msg := strings.Repeat("vxlan", 800)
	if got, errOut, err := cp.kubectl("exec", "pod-a", "--", "svcnet", "agnhost", "get", "--timeout", "5s", "http://"+ips["pod-b"]+":8080/echo?msg="+msg); got != msg {
		t.Errorf("pod-a -> pod-b /echo of %d bytes: got %d bytes (%v %s)", len(msg), len(got), err, errOut)
	}
	// The path is the tunnel: node A's route to B's pods goes through svcnet.1,
	// its FDB sends B's VTEP MAC to B's node IP.
	route, _ := exec.Command("ip", "-n", nodeA, "route", "show", cidrB).CombinedOutput()
	if !strings.Contains(string(route), "dev svcnet.1") || !strings.Contains(string(route), "onlink") {
		t.Errorf("node A's route to %s: %s, want it through svcnet.1", cidrB, route)
	}
	fdb, _ := exec.Command("ip", "netns", "exec", nodeA, "bridge", "fdb", "show", "dev", "svcnet.1").CombinedOutput()
	if !strings.Contains(string(fdb), "dst 192.168.87.1") {
		t.Errorf("node A's VXLAN FDB: %s, want an entry to 192.168.87.1", fdb)
	}
	link, _ := exec.Command("ip", "-n", nodeA, "-d", "link", "show", "svcnet.1").CombinedOutput()
	t.Logf("node A: %s%s%s", route, fdb, link)
}
