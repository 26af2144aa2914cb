package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/svcnet/svcnet/bench/harness"
)

// startTimeout bounds a svcnet process's start; the cri agent starts
// containerd and imports the images (about 80 MB) before it registers.
const startTimeout = 2 * time.Minute

// netnsDir is where CNI (through containerd) names pod network namespaces.
const netnsDir = "/var/run/netns"

// proc is a svcnet process the bench started.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs argv and returns once a line of its output begins with ready.
func start(ready string, argv ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	out, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), ready) {
				close(up)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	select {
	case <-up:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited early", argv[1])
	case <-time.After(startTimeout):
		p.stop()
		return nil, fmt.Errorf("%s not ready in %v", argv[1], startTimeout)
	}
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// node is the agent of one container runtime, in its own root directory.
type node struct {
	bin, kubeconfig, root, runtime, images string
	agent                                  *proc
	pods                                   int             // the most pods it ran (bounds the clean-up)
	netns                                  map[string]bool // the pods' named network namespaces
}

// memory is what a node holds, in KiB.
type memory struct {
	agent, containerd, shimRSS int64
	shims                      int
}

func (n *node) start() error {
	n.netns = map[string]bool{}
	args := []string{n.bin, "agent", "--kubeconfig", n.kubeconfig, "--node-name", "bench", "--node-ip", "127.0.0.1", "--root-dir", n.root,
		"--pod-runtime=on", "--container-runtime=" + n.runtime, "--dns-resolv-conf", "", "--log-level", "error"}
	if n.runtime == "cri" {
		// Only the two images the pods need, whatever else the directory holds.
		dir := n.root + "-images"
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for _, f := range imageFiles {
			src, err := filepath.Abs(filepath.Join(n.images, f))
			if err != nil {
				return err
			}
			if _, err := os.Stat(src); err != nil {
				return fmt.Errorf("-images: %w (scripts/test-images.sh DIR builds it)", err)
			}
			if err := os.Symlink(src, filepath.Join(dir, f)); err != nil {
				return err
			}
		}
		args = append(args, "--images", dir)
	}
	agent, err := start("svcnet agent: node bench registered", args...)
	n.agent = agent
	return err
}

// memory reads the RSS of the agent, of its containerd and of containerd's shims.
func (n *node) memory() memory {
	m := memory{agent: harness.RSSKiB(n.agent.cmd.Process.Pid)}
	for _, pid := range n.containerd() {
		m.containerd += harness.RSSKiB(pid)
	}
	for _, pid := range n.shims() {
		m.shims++
		m.shimRSS += harness.RSSKiB(pid)
	}
	return m
}

// containerd is the containerd run for this node's root (as `containerd --config <root>/containerd/config.toml`).
func (n *node) containerd() []int {
	return pidsWith("containerd --config " + filepath.Join(n.root, "containerd", "config.toml"))
}

// shims are containerd's shims for this node's root (they name its socket).
func (n *node) shims() []int {
	return pidsWith("-address " + filepath.Join(n.root, "containerd", "containerd.sock"))
}

// close deletes the pods, stops the agent and, for cri, removes what
// containerd still runs (svcnet agent --cleanup), then checks that no
// containerd, shim, pod network namespace or veth is left.
func (n *node) close(ctx context.Context, client kubernetes.Interface) error {
	limit := time.Minute + time.Duration(n.pods)*perPodTimeout
	if n.agent != nil {
		if err := deleteAll(ctx, client, n.pods); err != nil {
			fmt.Fprintln(os.Stderr, "bench/pods: deleting pods:", err)
		}
		// A deleted pod is gone from the API once its containers stopped;
		// the agent stops its sandbox (and the shim) after that.
		for t0 := time.Now(); (len(n.shims()) > 0 || len(n.leftNetns()) > 0) && time.Since(t0) < limit; time.Sleep(200 * time.Millisecond) {
		}
		n.agent.stop()
	}
	if n.runtime == "cri" {
		// Retried: the CRI plugin of the containerd it starts may not be
		// initialized yet when it connects ("server is not initialized yet").
		var out []byte
		var err error
		for try := 0; try < 5; try++ {
			ctx, cancel := context.WithTimeout(ctx, limit)
			out, err = exec.CommandContext(ctx, n.bin, "agent", "--cleanup", "--root-dir", n.root, "--log-level", "error").CombinedOutput()
			cancel()
			if err == nil {
				break
			}
			time.Sleep(3 * time.Second)
		}
		if err != nil {
			return fmt.Errorf("svcnet agent --cleanup: %v: %s", err, out)
		}
		fmt.Printf("%s runtime: svcnet agent --cleanup --root-dir %s: %s", n.runtime, n.root, strings.ReplaceAll(string(out), "\nsvcnet agent: ", "; "))
	}
	var left []string
	for t0 := time.Now(); time.Since(t0) < 15*time.Second; time.Sleep(200 * time.Millisecond) {
		left = n.leftovers()
		if len(left) == 0 {
			fmt.Printf("%s runtime: stopped; no containerd, shim or veth left, none of the pods' %d network namespaces left\n", n.runtime, len(n.netns))
			return nil
		}
	}
	return fmt.Errorf("left after cleanup: %s", strings.Join(left, "; "))
}

// leftovers lists what the node's runtime left running or configured.
func (n *node) leftovers() []string {
	var left []string
	if pids := n.containerd(); len(pids) > 0 {
		left = append(left, fmt.Sprintf("containerd %v", pids))
	}
	if pids := n.shims(); len(pids) > 0 {
		left = append(left, fmt.Sprintf("%d shims %v", len(pids), pids))
	}
	for _, name := range n.leftNetns() {
		left = append(left, "netns "+name)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "type", "veth").Output(); len(out) > 0 {
		left = append(left, fmt.Sprintf("%d veths", strings.Count(string(out), "\n")))
	}
	return left
}

// notePodNetns records the named network namespaces (ip netns list) that
// processes under the agent or its shims are in: the node's pods. Other
// sessions' namespaces on the machine are not this bench's to check.
func (n *node) notePodNetns() {
	inodes := map[uint64]bool{}
	for _, pid := range descendants(append(n.shims(), n.agent.cmd.Process.Pid)) {
		if fi, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
			inodes[fi.Sys().(*syscall.Stat_t).Ino] = true
		}
	}
	if fi, err := os.Stat("/proc/self/ns/net"); err == nil {
		delete(inodes, fi.Sys().(*syscall.Stat_t).Ino) // the bench's own namespace, where containerd runs
	}
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if fi, err := os.Stat(filepath.Join(netnsDir, e.Name())); err == nil && inodes[fi.Sys().(*syscall.Stat_t).Ino] {
			n.netns[e.Name()] = true
		}
	}
}

// leftNetns are the pods' network namespaces that still exist.
func (n *node) leftNetns() []string {
	var left []string
	for name := range n.netns {
		if _, err := os.Lstat(filepath.Join(netnsDir, name)); err == nil {
			left = append(left, name)
		}
	}
	return left
}

// descendants are the processes below roots (roots excluded).
func descendants(roots []int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				if ppid, err := strconv.Atoi(f[1]); err == nil {
					children[ppid] = append(children[ppid], pid)
				}
			}
		}
	}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 && len(out) < len(entries) {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, children[pid]...)
		queue = append(queue, children[pid]...)
	}
	return out
}

// pidsWith lists the processes whose command line (arguments joined by
// spaces) contains s.
func pidsWith(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}
