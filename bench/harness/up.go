package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Up is a `svcnet up` process run by a benchmark inside its namespace.
type Up struct {
	cmd        *exec.Cmd
	kubeconfig string
}

// StartUp runs `svcnet up` (process runtime, no DNS resolv.conf, errors-only
// logs, port 6443) with data dir data and extra flags, sends its stderr to
// stderr (nil drops it) and waits up to 60 s for "svcnet is up".
func StartUp(bin, data string, stderr io.Writer, extra ...string) (*Up, error) {
	args := append([]string{"up", "--data-dir", data, "--secure-port", "6443", "--container-runtime", "process",
		"--dns-resolv-conf", "", "--log-level", "error"}, extra...)
	cmd := exec.Command(bin, args...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	u := &Up{cmd: cmd, kubeconfig: filepath.Join(data, "kubeconfig")}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "svcnet is up") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
		return u, nil
	case <-time.After(60 * time.Second):
		u.Stop()
		return nil, fmt.Errorf("svcnet up not ready within 60 s")
	}
}

// Stop interrupts svcnet up and waits for it to exit.
func (u *Up) Stop() { _ = u.cmd.Process.Signal(os.Interrupt); _ = u.cmd.Wait() }

// Kubectl runs kubectl against the cluster and returns its trimmed combined output.
func (u *Up) Kubectl(args ...string) (string, error) {
	c := exec.Command("kubectl", args...)
	c.Env = append(os.Environ(), "KUBECONFIG="+u.kubeconfig)
	b, err := c.CombinedOutput()
	return strings.TrimSpace(string(b)), err
}
