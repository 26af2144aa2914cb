package e2e

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// terminate ends cmd, a process this test started whose Wait closes done:
// SIGTERM, then SIGKILL (and a test error) when it lingers past grace. name
// says what it is in the error.
func terminate(t testing.TB, name string, cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	t.Helper()
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		t.Errorf("%s did not stop within %v of SIGTERM; killing pid %d", name, grace, cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-done
	}
}
