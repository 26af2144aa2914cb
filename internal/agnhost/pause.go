package agnhost

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Pause is upstream's pause: it prints "Paused" and waits on sigs for SIGINT
// (exit code 1) or SIGTERM (exit code 2), then, after delay, prints "exiting
// N" and returns N. A SIGCHLD on sigs reaps every exited child (for when
// pause is a pod's PID 1 and inherits orphans).
func Pause(sigs <-chan os.Signal, delay time.Duration, out io.Writer) int {
	fmt.Fprintln(out, "Paused")
	code := 0
	for code == 0 {
		sig, ok := <-sigs
		if !ok {
			break
		}
		switch sig {
		case syscall.SIGINT:
			code = 1
		case syscall.SIGTERM:
			code = 2
		case syscall.SIGCHLD:
			reap()
		}
	}
	if delay > 0 {
		fmt.Fprintf(out, "Sleeping %d seconds before exit ...", int(delay/time.Second))
		time.Sleep(delay)
	}
	fmt.Fprintf(out, "exiting %d\n", code)
	return code
}

// reap waits for every child that has exited, without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
