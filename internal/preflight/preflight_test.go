package preflight

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// machine is a root Debian machine with everything installed, minus drop.
func machine(drop ...string) *Fake {
	f := &Fake{Commands: map[string]bool{}, Files: map[string]bool{}}
	for _, c := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "nft"} {
		f.Commands[c] = true
	}
	for _, p := range containerdPlugins {
		f.Files["/usr/lib/cni/"+p] = true
	}
	for _, d := range drop {
		delete(f.Commands, d)
		delete(f.Files, d)
	}
	return f
}

func TestCheck(t *testing.T) {
	dirs := []string{"/usr/lib/cni", "/opt/cni/bin"}
	process := Needs{Pods: true, CNIPluginDirs: dirs}
	own := Needs{Pods: true, CRI: true, OwnContainerd: true, CNIPluginDirs: dirs}
	split := machine("/usr/lib/cni/loopback", "/usr/lib/cni/portmap")
	split.Files["/opt/cni/bin/loopback"], split.Files["/opt/cni/bin/portmap"] = true, true
	nonRoot := machine()
	nonRoot.UID = 1000
	noNF := machine()
	noNF.NFTErr = errors.New("protocol not supported")
	for _, tc := range []struct {
		name  string
		needs Needs
		env   *Fake
		want  []string // "effect flag what | fix", in order
	}{
		{"everything there", Needs{Pods: true, CRI: true, OwnContainerd: true, CNIPluginDirs: dirs, NFTables: true}, machine(), nil},
		{"pod runtime off as root", Needs{}, machine("/usr/lib/cni/bridge"), nil},
		{"no CNI plugins", process, machine("/usr/lib/cni/bridge", "/usr/lib/cni/loopback"),
			[]string{"1 --cni-bin-dir CNI plugins bridge, loopback in /usr/lib/cni, /opt/cni/bin (--cni-bin-dir) | apt-get install containernetworking-plugins"}},
		{"process runtime: plugins in two dirs", process, split, nil},
		{"process runtime needs no portmap", process, machine("/usr/lib/cni/portmap", "iptables", "containerd"), nil},
		{"containerd takes one dir", own, split,
			[]string{"1 --cni-bin-dir CNI plugins loopback, portmap in /usr/lib/cni (--cni-bin-dir) | apt-get install containernetworking-plugins"}},
		{"containerd, no bridge anywhere", own, machine("/usr/lib/cni/bridge"),
			[]string{"1 --cni-bin-dir CNI plugins bridge in /usr/lib/cni, /opt/cni/bin (--cni-bin-dir) | apt-get install containernetworking-plugins"}},
		{"containerd binaries", own, machine("ctr", "runc"), []string{
			"2 --container-runtime=cri the ctr command | apt-get install containerd, or --container-runtime=process",
			"2 --container-runtime=cri the runc command | apt-get install runc, or --container-runtime=process"}},
		{"portmap without iptables", own, machine("iptables"),
			[]string{"0 --container-runtime=cri the iptables command | apt-get install iptables"}},
		{"external CRI runtime brings its own", Needs{Pods: true, CRI: true, CNIPluginDirs: dirs}, machine("containerd", "/usr/lib/cni/bridge"), nil},
		{"not root, pods off", Needs{}, nonRoot,
			[]string{"1 --pod-runtime root privileges | start svcnet as root (sudo)"}},
		{"not root, pods on", process, nonRoot,
			[]string{"2 --pod-runtime=on root privileges | start svcnet as root (sudo), or --pod-runtime=off"}},
		{"not root, nftables", Needs{NFTables: true}, nonRoot, []string{
			"1 --pod-runtime root privileges | start svcnet as root (sudo)",
			"2 --proxy-mode=nftables root privileges | start svcnet as root (sudo), or --proxy-mode=userspace"}},
		{"no nf_tables in the kernel", Needs{NFTables: true}, noNF,
			[]string{"2 --proxy-mode=nftables the kernel's nf_tables (protocol not supported) | modprobe nf_tables, or --proxy-mode=userspace"}},
		{"no nft command", Needs{NFTables: true}, machine("nft"),
			[]string{"0 --proxy-mode=nftables the nft command | apt-get install nftables"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range Check(tc.needs, tc.env) {
				got = append(got, strings.Join([]string{string(rune('0' + p.Effect)), p.Flag, p.What, "|", p.Fix}, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Check =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestErrAndWhyNoPods(t *testing.T) {
	ps := []Problem{
		{What: "the nft command", Why: "explain", Fix: "apt-get install nftables", Flag: "--proxy-mode=nftables", Effect: Degraded},
		{What: "CNI plugins bridge in /x", Why: "pods get no network", Fix: "apt-get install containernetworking-plugins", Flag: "--cni-bin-dir", Effect: NoPods},
		{What: "the runc command", Why: "no containers", Fix: "apt-get install runc", Flag: "--container-runtime=cri", Effect: Fatal},
	}
	if err := Err(ps); err == nil || err.Error() != "--container-runtime=cri: missing the runc command: no containers; fix: apt-get install runc" {
		t.Errorf("Err = %v", err)
	}
	if got := WhyNoPods(ps); got != "missing CNI plugins bridge in /x: pods get no network; fix: apt-get install containernetworking-plugins" {
		t.Errorf("WhyNoPods = %q", got)
	}
	if Err(ps[:2]) != nil || WhyNoPods(ps[2:]) != "" {
		t.Error("Err or WhyNoPods report a problem of another effect")
	}
}

// TestSystem runs the real checks on this machine: they must not fail or block.
func TestSystem(t *testing.T) {
	var s System
	if s.Euid() != os.Geteuid() {
		t.Error("Euid")
	}
	if s.IsFile("/proc") {
		t.Error("IsFile(/proc) = true for a directory")
	}
	if _, err := s.LookPath("sh"); err != nil {
		t.Error(err)
	}
	if os.Geteuid() == 0 {
		if err := s.NFTables(); err != nil {
			t.Logf("nf_tables does not answer here: %v", err)
		}
	}
}
