package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/internal/pod"
	"github.com/svcnet/svcnet/internal/podlogs"
	"github.com/svcnet/svcnet/internal/podvol"
)

// container is one container of a pod and its current process. Fields below
// mu are guarded by the worker's mutex.
type container struct {
	w    *podWorker
	spec corev1.Container
	init bool // an init container: runs until it succeeds

	state    corev1.ContainerState
	last     corev1.ContainerState
	restarts int32
	ready    bool
	started  bool
	env      []string
	mounts   []podvol.Mount // of the running instance; exec and probes get them too
	running  int32          // restart number of the running instance, -1 when none
	exited   chan struct{}
	stdin    io.WriteCloser
	tty      *os.File
	out      hub
}

// configError is why a container cannot be started at all.
type configError struct{ reason, msg string }

func (e *configError) Error() string { return e.msg }

// argv is the process a container runs: command + args, or args alone (an
// image without an entrypoint runs its arguments, as busybox does).
func argv(c corev1.Container, env map[string]string) ([]string, error) {
	if len(c.Command) == 0 && len(c.Args) == 0 {
		return nil, &configError{"CreateContainerError", fmt.Sprintf("container %q has no command: svcnet runs containers as processes "+
			"of the node and cannot pull image %q; set command (and args) in the container spec", c.Name, c.Image)}
	}
	var out []string
	for _, s := range append(append([]string{}, c.Command...), c.Args...) {
		out = append(out, pod.Expand(s, env))
	}
	return out, nil
}

// configRetry is how soon a container whose config could not be made (a
// missing ConfigMap, Secret or token) is tried again.
const configRetry = 5 * time.Second

// loop runs the container until the restart policy says it is done or the pod
// is stopped, and reports whether its last run succeeded. An init container
// restarts until it succeeds, unless the pod's policy is Never.
func (c *container) loop() bool {
	var bo pod.Backoff
	for {
		started := c.w.r.o.Now()
		code, reason, msg, cerr := c.runOnce()
		finished := c.w.r.o.Now()
		w := c.w
		if cerr != nil {
			w.mu.Lock()
			c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: cerr.reason, Message: cerr.msg}}
			w.mu.Unlock()
			w.changed()
			if cerr.reason != "CreateContainerConfigError" { // the spec cannot change: wait for the deletion
				<-w.stopCh
				return false
			}
			select {
			case <-w.stopCh:
				return false
			case <-time.After(configRetry):
				continue
			}
		}
		w.mu.Lock()
		term := &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason, Message: msg,
			StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(finished), ContainerID: c.id()}
		if c.state.Running != nil {
			term.StartedAt = c.state.Running.StartedAt
		}
		c.state = corev1.ContainerState{Terminated: term}
		c.ready, c.started = false, false
		policy := w.pod.Spec.RestartPolicy
		w.mu.Unlock()
		w.changed()
		if w.stopping() || (c.init && code == 0) || policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && code == 0) {
			return code == 0 && !w.stopping()
		}
		if d := bo.Delay(started, finished); d > 0 {
			w.mu.Lock()
			c.last = c.state
			c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", d, c.spec.Name, w.name, w.namespace, w.uid)}}
			w.mu.Unlock()
			w.changed()
			select {
			case <-w.stopCh:
				return false
			case <-time.After(d):
			}
		}
		w.mu.Lock()
		if c.state.Terminated != nil {
			c.last = c.state
		}
		c.restarts++
		w.mu.Unlock()
	}
}

func (c *container) id() string {
	return fmt.Sprintf("svcnet://%s-%s-%d", c.w.uid, c.spec.Name, c.restarts)
}

func (c *container) logPath(instance int32) string {
	return filepath.Join(c.w.dir, "logs", c.spec.Name, strconv.Itoa(int(instance))+".log")
}

// runOnce starts one instance of the container and waits for it to end.
func (c *container) runOnce() (code int, reason, msg string, cerr *configError) {
	w := c.w
	env, err := w.containerEnv(c.spec)
	if err != nil {
		return 0, "", "", &configError{"CreateContainerConfigError", err.Error()}
	}
	args, err := argv(c.spec, pod.EnvMap(env))
	if err != nil {
		var ce *configError
		errors.As(err, &ce)
		return 0, "", "", ce
	}
	mounts, err := w.containerMounts(c.spec)
	if err != nil {
		return 0, "", "", &configError{"CreateContainerConfigError", err.Error()}
	}
	w.mu.Lock()
	c.mounts = mounts
	w.mu.Unlock()
	w.mu.Lock()
	instance := c.restarts
	w.mu.Unlock()
	_ = os.MkdirAll(filepath.Dir(c.logPath(instance)), 0o750)
	_ = os.Remove(c.logPath(instance - 2)) // keep the current and the previous instance
	_ = os.Remove(c.logPath(instance-2) + ".1")
	logf, err := podlogs.Open(c.logPath(instance), w.r.o.LogMaxSize, w.r.o.Now)
	if err != nil {
		return 128, "StartError", err.Error(), nil
	}
	defer logf.Close()

	var std stdio
	var parentEnds, childEnds []*os.File
	var readers sync.WaitGroup
	pump := func(r *os.File, stream string) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 32*1024)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					logf.Write(stream, buf[:n])
					c.out.write(stream, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	var stdinW io.WriteCloser
	if c.spec.TTY {
		master, tty, err := pty.Open()
		if err != nil {
			return 128, "StartError", err.Error(), nil
		}
		std.tty = tty
		parentEnds, childEnds = append(parentEnds, master), append(childEnds, tty)
		pump(master, "stdout")
		if c.spec.Stdin {
			stdinW = master
		}
	} else {
		outR, outW, _ := os.Pipe()
		errR, errW, _ := os.Pipe()
		std.out, std.err = outW, errW
		parentEnds, childEnds = append(parentEnds, outR, errR), append(childEnds, outW, errW)
		pump(outR, "stdout")
		pump(errR, "stderr")
		if c.spec.Stdin {
			inR, inW, _ := os.Pipe()
			std.in = inR
			parentEnds, childEnds = append(parentEnds, inW), append(childEnds, inR)
			stdinW = inW
		}
	}
	cmd, err := spawn(w.spec(c, args, env), std)
	for _, f := range childEnds {
		f.Close()
	}
	defer func() {
		for _, f := range parentEnds {
			f.Close()
		}
	}()
	if err != nil {
		readers.Wait()
		return 128, "StartError", err.Error(), nil
	}
	exited := make(chan struct{})
	w.mu.Lock()
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(w.r.o.Now())}}
	c.started = true
	c.ready = c.spec.ReadinessProbe == nil
	c.env, c.running, c.exited, c.stdin = env, instance, exited, stdinW
	c.tty = nil
	if c.spec.TTY {
		c.tty = parentEnds[0]
	}
	w.mu.Unlock()
	key := c.spec.Name
	w.recordProc(key, cmd.Process.Pid)
	w.changed()

	probeCtx, stopProbes := context.WithCancel(context.Background())
	unhealthy := make(chan string, 1)
	go c.probe(probeCtx, unhealthy)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	killedBy := ""
	select {
	case waitErr = <-done:
	case <-w.stopCh:
		w.mu.Lock()
		grace := w.grace
		w.mu.Unlock()
		waitErr = c.terminate(cmd, grace, done, true)
	case why := <-unhealthy:
		killedBy = why
		waitErr = c.terminate(cmd, c.graceSeconds(), done, false)
	}
	stopProbes()
	close(exited)
	w.recordProc(key, 0)
	w.mu.Lock()
	c.running, c.stdin, c.tty = -1, nil, nil
	w.mu.Unlock()
	if stdinW != nil && !c.spec.TTY {
		stdinW.Close()
	}
	waitReaders(&readers, 2*time.Second)
	code = exitCode(cmd, waitErr)
	reason = "Completed"
	if code != 0 {
		reason = "Error"
	}
	if killedBy != "" {
		w.log().Info("container failed its probe and is restarted", "container", c.spec.Name, "probe", killedBy)
	}
	return code, reason, "", nil
}

func waitReaders(wg *sync.WaitGroup, limit time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(limit): // a background child still holds the output open
	}
}

// exitCode is the container's exit code; a signal gives 128+signal, as runtimes report.
func exitCode(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState == nil {
		return 128
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

func (c *container) graceSeconds() time.Duration {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if g := c.w.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return corev1.DefaultTerminationGracePeriodSeconds * time.Second
}

// terminate runs the preStop hook, waits (for a deleted pod, drained) until the
// node routes no new connection to the pod, sends SIGTERM, and SIGKILL once
// grace (which the hook and the wait count against) is over.
func (c *container) terminate(cmd *exec.Cmd, grace time.Duration, done <-chan error, drained bool) error {
	deadline := time.Now().Add(grace)
	if h := c.spec.Lifecycle; h != nil && h.PreStop != nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		c.runHandler(ctx, *h.PreStop)
		cancel()
	}
	if drained {
		c.w.waitDrained(deadline)
	}
	signalGroup(cmd, syscall.SIGTERM)
	select {
	case err := <-done:
		signalGroup(cmd, syscall.SIGKILL) // what the process left behind in its group
		return err
	case <-time.After(time.Until(deadline)):
	}
	signalGroup(cmd, syscall.SIGKILL)
	return <-done
}

// killRecorded kills a process group a previous agent left running.
func killRecorded(p proc) {
	if p.Pid <= 0 || procStart(p.Pid) != p.Start {
		return // gone, or the pid belongs to someone else now
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = syscall.Kill(p.Pid, syscall.SIGKILL)
}

// hub copies a running container's output to attached clients.
type hub struct {
	mu   sync.Mutex
	outs map[*attachment]struct{}
}

type attachment struct{ stdout, stderr io.Writer }

func (h *hub) add(a *attachment) {
	h.mu.Lock()
	if h.outs == nil {
		h.outs = map[*attachment]struct{}{}
	}
	h.outs[a] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(a *attachment) {
	h.mu.Lock()
	delete(h.outs, a)
	h.mu.Unlock()
}

func (h *hub) write(stream string, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for a := range h.outs {
		dst := a.stdout
		if stream == "stderr" {
			dst = a.stderr
		}
		if dst != nil {
			if _, err := dst.Write(p); err != nil {
				delete(h.outs, a)
			}
		}
	}
}
