package kubeproxy

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/svcnet/svcnet/internal/netnstest"
)

// TestKernelCleanup writes what kube-proxy leaves (its nftables tables, and
// iptables chains next to the kubelet's) in a fresh network namespace and
// removes it.
func TestKernelCleanup(t *testing.T) {
	netnstest.RequireRoot(t, "nftables and iptables in a network namespace")
	for _, tool := range []string{"nft", "iptables-nft", "iptables-nft-save", "iptables-nft-restore"} {
		_, err := exec.LookPath(tool)
		netnstest.Require(t, err, tool+" (scripts/test-deps.sh installs it)")
	}
	netnstest.Run(t, func() {
		run := func(name string, args ...string) string {
			out, err := exec.Command(name, args...).CombinedOutput()
			if err != nil {
				t.Errorf("%s %v: %v %s", name, args, err, out)
			}
			return string(out)
		}
		run("nft", "add table ip kube-proxy; add chain ip kube-proxy services; add table ip6 kube-proxy; add table ip other")
		for _, args := range [][]string{{"-t", "nat", "-N", "KUBE-SERVICES"}, {"-t", "nat", "-N", "KUBE-SVC-X"},
			{"-t", "nat", "-A", "KUBE-SERVICES", "-d", "10.96.0.1/32", "-j", "KUBE-SVC-X"},
			{"-t", "nat", "-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"},
			{"-t", "filter", "-N", "KUBE-FIREWALL"}, {"-t", "filter", "-A", "INPUT", "-j", "KUBE-FIREWALL"}} {
			run("iptables-nft", args...)
		}
		if t.Failed() {
			return
		}
		removed, err := Cleanup()
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		t.Logf("removed: %v", removed)
		tables := run("nft", "list", "tables")
		if strings.Contains(tables, "kube-proxy") || !strings.Contains(tables, "table ip other") {
			t.Errorf("tables after cleanup:\n%s", tables)
		}
		save := run("iptables-nft-save")
		if strings.Contains(save, "KUBE-SERVICES") || strings.Contains(save, "KUBE-SVC-X") || !strings.Contains(save, "-A INPUT -j KUBE-FIREWALL") {
			t.Errorf("iptables after cleanup:\n%s", save)
		}
		if again, err := Cleanup(); err != nil || len(again) != 0 {
			t.Errorf("second cleanup: %v %v, want nothing to do", again, err)
		}
	})
}
