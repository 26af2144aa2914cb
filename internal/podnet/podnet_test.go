package podnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svcnet/svcnet/internal/netnstest"
)

// TestFailedSetupLeavesNothing sets up pods with plugin directories that lack
// plugins, or whose bridge fails: Setup fails, calls DEL for what it added,
// and no network namespace is left. Needs root (it creates namespaces; no
// traffic leaves them).
func TestFailedSetupLeavesNothing(t *testing.T) {
	netnstest.RequireRoot(t, "to create network namespaces")
	loopback := filepath.Join("/usr/lib/cni", "loopback")
	_, err := os.Stat(loopback)
	netnstest.Require(t, err, "the CNI loopback plugin (apt-get install containernetworking-plugins)")
	log := filepath.Join(t.TempDir(), "calls")
	fakeBridge := fmt.Sprintf("#!/bin/sh\necho \"$CNI_COMMAND\" >> %s\n"+
		"[ \"$CNI_COMMAND\" = ADD ] || exit 0\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"fake bridge failure\"}'\nexit 1\n", log)
	for _, tc := range []struct {
		name    string
		plugins map[string]string // name -> script ("" links the real one)
		err     string
		calls   string // what the fake bridge saw
	}{
		{name: "empty plugin dir", err: `CNI loopback: failed to find plugin "loopback"`},
		{name: "no bridge", plugins: map[string]string{"loopback": ""}, err: `failed to find plugin "bridge"`},
		{name: "bridge fails", plugins: map[string]string{"loopback": "", "bridge": fakeBridge}, err: "fake bridge failure", calls: "ADD DEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(log)
			bin := t.TempDir()
			for name, script := range tc.plugins {
				var err error
				if script == "" {
					err = os.Symlink(filepath.Join("/usr/lib/cni", name), filepath.Join(bin, name))
				} else {
					err = os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			n, err := New(Config{PodCIDR: "10.244.250.0/24", Bridge: "svcnet-tf", DataDir: t.TempDir(), PluginDirs: []string{bin}})
			if err != nil {
				t.Fatal(err)
			}
			ns := fmt.Sprintf("svcnet-fail-%d", os.Getpid())
			t.Cleanup(func() { _ = n.undo(context.Background(), ns, ns) })
			_, err = n.Setup(context.Background(), ns, ns)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Setup: %v, want an error with %q", err, tc.err)
			}
			if _, err := os.Lstat(NetnsPath(ns)); !os.IsNotExist(err) {
				t.Errorf("%s left behind (%v)", NetnsPath(ns), err)
			}
			calls, _ := os.ReadFile(log)
			if got := strings.Join(strings.Fields(string(calls)), " "); got != tc.calls {
				t.Errorf("bridge plugin calls = %q, want %q", got, tc.calls)
			}
		})
	}
}
