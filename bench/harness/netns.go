package harness

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Set in the namespace run by InNetns.
const (
	envBin = "SVCNET_BENCH_BIN"
	envTmp = "SVCNET_BENCH_TMP"
)

// Inside is what a benchmark re-run by InNetns gets: the svcnet binary built
// for the run and a scratch directory removed afterwards.
type Inside struct {
	Bin, Tmp string
}

// InNetns runs a root benchmark in a network namespace of its own. Outside,
// it builds svcnet, makes a loopback-only namespace, re-runs this command in
// it, removes both afterwards and returns (nil, the run's error). Inside, it
// returns where the binary and the scratch directory are.
func InNetns(name string) (*Inside, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("bench/%s needs root (network namespaces, pods, nftables)", name)
	}
	if bin := os.Getenv(envBin); bin != "" {
		return &Inside{Bin: bin, Tmp: os.Getenv(envTmp)}, nil
	}
	tmp, err := os.MkdirTemp("", "svcnet-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "svcnet")
	fmt.Println("building svcnet")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/svcnet").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %v %s", err, out)
	}
	ns := fmt.Sprintf("svcnet-bench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("lo up: %v %s", err, out)
	}
	self, _ := os.Executable()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self}, os.Args[1:]...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envBin+"="+bin, envTmp+"="+tmp)
	// Interrupted (Ctrl-C, kill): the run is told too, and whatever it started
	// in the namespace ends before the namespace and the scratch directory go.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	defer killNetnsProcesses(ns)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return nil, err
	case s := <-sig:
		_ = cmd.Process.Signal(s)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return nil, fmt.Errorf("interrupted (%v)", s)
	}
}

// killNetnsProcesses kills what still runs in network namespace ns (created
// by this run: everything in it is the run's).
func killNetnsProcesses(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

var vmRSS = regexp.MustCompile(`VmRSS:\s+(\d+) kB`)

var rssParts = regexp.MustCompile(`(RssAnon|RssFile):\s+(\d+) kB`)

// RSSParts is pid's resident memory of its own (heap, stacks: RssAnon) and
// of mapped files (its binary's pages: RssFile), in KiB.
func RSSParts(pid int) (anon, file int64) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, m := range rssParts.FindAllSubmatch(data, -1) {
		kb, _ := strconv.ParseInt(string(m[2]), 10, 64)
		if string(m[1]) == "RssAnon" {
			anon = kb
		} else {
			file = kb
		}
	}
	return anon, file
}

// RSSKiB is a process's resident set size in KiB (0 when unknown).
func RSSKiB(pid int) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	m := vmRSS.FindSubmatch(data)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb
}

// Percentile is the nearest-rank p-th percentile of d, rounded to round.
func Percentile(d []time.Duration, p int, round time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(round)
}

// Ratio is a/b (0 when b is 0).
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
