package containerd

import (
	"strings"
	"testing"
)

func TestCgroupMounts(t *testing.T) {
	info := `23 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw
50 23 0:40 / /run/foo rw - tmpfs tmpfs rw
`
	got := cgroupMounts(strings.NewReader(info))
	want := []mount{{"/sys/fs/cgroup", "tmpfs", "tmpfs", "rw,mode=755"}, {"/sys/fs/cgroup/cpu", "cgroup", "cgroup", "rw,cpu"},
		{"/sys/fs/cgroup/systemd", "cgroup", "cgroup", "rw,name=systemd"}, {"/sys/fs/cgroup/unified", "cgroup2", "cgroup2", "rw"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mount %d = %v, want %v", i, got[i], want[i])
		}
	}
	if got := cgroupMounts(strings.NewReader("23 1 0:21 / /sys rw - sysfs sysfs rw\n")); len(got) != 0 {
		t.Errorf("no cgroups: got %v", got)
	}
}

func TestRenderConfig(t *testing.T) {
	cfg, err := RenderConfig(Config{Dir: "/var/lib/svcnet/agent/containerd", CNIBinDir: "/usr/lib/cni", CNIConfDir: "/var/lib/svcnet/agent/containerd/net.d"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`address = "/var/lib/svcnet/agent/containerd/containerd.sock"`, `sandbox_image = "` + DefaultSandboxImage + `"`,
		`bin_dir = "/usr/lib/cni"`, `conf_dir = "/var/lib/svcnet/agent/containerd/net.d"`, `SystemdCgroup = false`, `stream_server_address = "127.0.0.1"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	if _, err := RenderConfig(Config{Dir: `/a"b`, CNIBinDir: "/x", CNIConfDir: "/y"}); err == nil {
		t.Error("a quote in a path must be refused")
	}
	if _, err := RenderConfig(Config{CNIBinDir: "/x", CNIConfDir: "/y"}); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("a missing Dir must be named, got %v", err)
	}
}
