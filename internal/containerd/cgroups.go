package containerd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where runc looks for the cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// mount is one line of /proc/PID/mountinfo that matters here.
type mount struct {
	point, fstype, source, options string
}

// cgroupMounts are the mounts under /sys/fs/cgroup (the tmpfs holding v1
// hierarchies, the hierarchies, or the cgroup2 root) in a mountinfo file.
func cgroupMounts(r io.Reader) []mount {
	var out []mount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(f) < sep+4 {
			continue
		}
		m := mount{point: f[4], fstype: f[sep+1], source: f[sep+2], options: f[sep+3]}
		if m.point != cgroupRoot && !strings.HasPrefix(m.point, cgroupRoot+"/") {
			continue
		}
		if m.fstype == "cgroup" || m.fstype == "cgroup2" || (m.fstype == "tmpfs" && m.point == cgroupRoot) {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].point) < len(out[j].point) })
	return out
}

func readCgroupMounts(path string) ([]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return cgroupMounts(f), nil
}

// EnsureCgroups mounts the host's cgroup hierarchies where this process's
// mount namespace has none: `ip netns exec` remounts /sys, hiding
// /sys/fs/cgroup, and runc cannot create containers without it. The mounts
// live in that private mount namespace only.
func EnsureCgroups() error {
	own, err := readCgroupMounts("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, m := range own {
		if m.fstype != "tmpfs" {
			return nil
		}
	}
	host, err := readCgroupMounts("/proc/1/mountinfo")
	if err != nil {
		return err
	}
	if len(host) == 0 {
		return fmt.Errorf("no cgroup filesystem is mounted at %s (runc needs one: mount -t cgroup2 none %s)", cgroupRoot, cgroupRoot)
	}
	for _, m := range host {
		var opts []string
		for _, o := range strings.Split(m.options, ",") {
			if o != "rw" && o != "ro" {
				opts = append(opts, o)
			}
		}
		if err := os.MkdirAll(m.point, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.source, m.point, m.fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, strings.Join(opts, ",")); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.point, err)
		}
	}
	return nil
}
