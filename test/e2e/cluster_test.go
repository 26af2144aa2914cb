package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cluster is one `svcnet up` process started by a test.
type cluster struct {
	t          *testing.T
	dir        string
	port       int
	kubeconfig string
	cmd        *exec.Cmd
	done       chan struct{}
	mu         sync.Mutex
	log        bytes.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startCluster runs `svcnet up` on dir and waits until it says it is up. The
// process is stopped when the test ends.
func startCluster(t *testing.T, dir string, port int, extra ...string) *cluster {
	t.Helper()
	if !slices.ContainsFunc(extra, func(s string) bool { return strings.HasPrefix(s, "--pod-runtime") }) {
		extra = append(extra, "--pod-runtime=off") // only the pod tests run pods
	}
	if !slices.ContainsFunc(extra, func(s string) bool { return strings.HasPrefix(s, "--container-runtime") }) {
		extra = append(extra, "--container-runtime=process") // only the image tests start containerd
	}
	if !slices.ContainsFunc(extra, func(s string) bool { return strings.HasPrefix(s, "--proxy-mode") }) {
		extra = append(extra, "--proxy-mode=none") // and only the proxy tests program nftables
	}
	want := fmt.Sprintf("svcnet is up at https://127.0.0.1:%d. Use it with: export KUBECONFIG=%s; kubectl get svc", port, filepath.Join(dir, "kubeconfig"))
	args := append([]string{"up", "--data-dir", dir, "--secure-port", fmt.Sprint(port)}, extra...)
	return startProcess(t, dir, port, filepath.Join(dir, "kubeconfig"), want, args...)
}

// startProcess runs svcnet with args and waits for the line ready on stdout.
func startProcess(t *testing.T, dir string, port int, kubeconfig, ready string, args ...string) *cluster {
	t.Helper()
	return startCommand(t, dir, port, kubeconfig, ready, append([]string{svcnetBin}, args...))
}

// startCommand runs argv (svcnet, possibly behind `ip netns exec`) like startProcess.
func startCommand(t *testing.T, dir string, port int, kubeconfig, ready string, argv []string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: dir, port: port, kubeconfig: kubeconfig, done: make(chan struct{})}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	args := argv[1:]
	if i := slices.Index(argv, svcnetBin); i >= 0 {
		args = argv[i+1:]
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = lockedWriter{&c.mu, &c.log}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = lockedWriter{&c.mu, &c.log}.Write([]byte(line + "\n"))
			if strings.HasPrefix(line, "svcnet ") {
				select {
				case up <- line:
				default:
				}
			}
		}
	}()
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(c.stop)
	select {
	case line := <-up:
		if line != ready {
			t.Errorf("startup line = %q, want %q", line, ready)
		}
	case <-c.done:
		t.Fatalf("svcnet %s exited early:\n%s", args[0], c.logs())
	case <-time.After(90 * time.Second):
		t.Fatalf("svcnet %s not ready within 90s:\n%s", args[0], c.logs())
	}
	return c
}

func (c *cluster) logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// stop ends the process this test started (SIGTERM, then SIGKILL after 15s).
func (c *cluster) stop() {
	terminate(c.t, "svcnet", c.cmd, c.done, 15*time.Second)
	if c.t.Failed() {
		c.t.Logf("svcnet log:\n%s", c.logs())
	}
}

// kubectl runs kubectl against the cluster and returns stdout, stderr.
func (c *cluster) kubectl(args ...string) (string, string, error) {
	return c.kubectlEnv(nil, args...)
}

func (c *cluster) kubectlEnv(env []string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBin, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+c.dir), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// must runs kubectl and fails the test on error.
func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.kubectl(args...)
	if err != nil {
		c.t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fails runs kubectl, expects it to fail, and returns stderr.
func (c *cluster) fails(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.kubectl(args...)
	if err == nil {
		c.t.Fatalf("kubectl %s succeeded, want failure\nstdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}

// table splits kubectl's column output into rows of fields.
func table(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}
