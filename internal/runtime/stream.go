package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/svcnet/svcnet/internal/podlogs"
)

var (
	_ remotecommand.Executor = (*Runtime)(nil)
	_ remotecommand.Attacher = (*Runtime)(nil)
)

// lookup finds a pod's container; name "" picks the only (or first) one.
func (r *Runtime) lookup(podName, namespace, name string) (*podWorker, *container, error) {
	w := r.find(namespace, podName)
	if w == nil {
		return nil, nil, podlogs.NewNotFound(fmt.Sprintf("pod %q is not running on this node", namespace+"/"+podName))
	}
	if name == "" && len(w.containers) > 0 {
		return w, w.containers[0], nil
	}
	var names, initNames []string
	for _, c := range w.containers {
		if c.spec.Name == name {
			return w, c, nil
		}
		names = append(names, c.spec.Name)
	}
	for _, c := range w.inits {
		if c.spec.Name == name {
			return w, c, nil
		}
		initNames = append(initNames, c.spec.Name)
	}
	msg := fmt.Sprintf("container %s is not valid for pod %s, choose one of: [%s]", name, podName, strings.Join(names, " "))
	if len(initNames) > 0 {
		msg += fmt.Sprintf(" or one of the init containers: [%s]", strings.Join(initNames, " "))
	}
	return nil, nil, podlogs.NewNotFound(msg)
}

// splitName takes the "namespace/name" form the agent passes as the pod name.
func splitName(n string) (ns, name string) {
	ns, name, _ = strings.Cut(n, "/")
	return ns, name
}

// ExecInContainer runs cmd in a running container (name is "namespace/pod").
func (r *Runtime) ExecInContainer(ctx context.Context, name string, _ string, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	ns, podName := splitName(name)
	w, c, err := r.lookup(podName, ns, container)
	if err != nil {
		return err
	}
	w.mu.Lock()
	env, running := c.env, c.running >= 0
	w.mu.Unlock()
	if !running {
		return fmt.Errorf("container %q is not running", c.spec.Name)
	}
	if len(cmd) == 0 {
		return fmt.Errorf("exec needs a command")
	}
	spec := w.spec(c, cmd, env)
	var std stdio
	var closeAfter, readEnds []*os.File // the child's ends, closed after spawn; ours, closed on return
	defer func() {
		for _, f := range readEnds {
			f.Close()
		}
	}()
	copies := make(chan struct{}, 3)
	pending := 0
	copyOut := func(dst io.Writer, src *os.File) {
		pending++
		go func() {
			_, _ = io.Copy(dst, src)
			copies <- struct{}{}
		}()
	}
	if tty {
		master, t, err := pty.Open()
		if err != nil {
			return err
		}
		defer master.Close()
		std.tty = t
		closeAfter = append(closeAfter, t)
		if in != nil {
			go func() { _, _ = io.Copy(master, in) }()
		}
		if out != nil {
			copyOut(out, master)
		}
		go func() {
			for s := range resize {
				_ = pty.Setsize(master, &pty.Winsize{Rows: s.Height, Cols: s.Width})
			}
		}()
	} else {
		if in != nil {
			inR, inW, _ := os.Pipe()
			std.in = inR
			closeAfter = append(closeAfter, inR)
			go func() {
				_, _ = io.Copy(inW, in)
				inW.Close()
			}()
		}
		// outPipe gives the process a pipe whose output is copied to dst.
		outPipe := func(dst io.Writer) *os.File {
			r, w, _ := os.Pipe()
			closeAfter, readEnds = append(closeAfter, w), append(readEnds, r)
			copyOut(dst, r)
			return w
		}
		if out != nil {
			std.out = outPipe(out)
		}
		if errw != nil {
			std.err = outPipe(errw)
		}
	}
	proc, err := spawn(spec, std)
	for _, f := range closeAfter {
		f.Close()
	}
	if err != nil {
		return err
	}
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() { signalGroup(proc, 9) })
		defer t.Stop()
	}
	stop := context.AfterFunc(ctx, func() { signalGroup(proc, 9) })
	defer stop()
	werr := proc.Wait()
	for range pending { // the output drains once the command and its children are gone
		select {
		case <-copies:
		case <-time.After(2 * time.Second):
		}
	}
	if code := exitCode(proc, werr); code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// AttachContainer connects to a running container's stdin and output (name is "namespace/pod").
func (r *Runtime) AttachContainer(ctx context.Context, name string, _ string, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ns, podName := splitName(name)
	w, c, err := r.lookup(podName, ns, container)
	if err != nil {
		return err
	}
	w.mu.Lock()
	exited, stdin, term, running := c.exited, c.stdin, c.tty, c.running >= 0
	w.mu.Unlock()
	if !running {
		return fmt.Errorf("container %q is not running", c.spec.Name)
	}
	a := &attachment{}
	if out != nil {
		a.stdout = out
	}
	if errw != nil {
		a.stderr = errw
	}
	c.out.add(a)
	defer c.out.remove(a)
	if term != nil && resize != nil {
		go func() {
			for s := range resize {
				_ = pty.Setsize(term, &pty.Winsize{Rows: s.Height, Cols: s.Width})
			}
		}()
	}
	inDone := make(chan struct{})
	if in != nil && stdin != nil {
		go func() {
			defer close(inDone)
			_, _ = io.Copy(stdin, in)
			if c.spec.StdinOnce && !c.spec.TTY {
				stdin.Close() // the first client's end of input is the container's
			}
		}()
	}
	select {
	case <-exited:
		time.Sleep(100 * time.Millisecond) // let the last output reach the client
	case <-ctx.Done():
	case <-inDone:
		if c.spec.StdinOnce {
			select {
			case <-exited:
				time.Sleep(100 * time.Millisecond)
			case <-ctx.Done():
			}
		}
	}
	return nil
}

// Logs writes a container's log (namespace/pod, container "" = the first) to w.
func (r *Runtime) Logs(ctx context.Context, namespace, podName, container string, o podlogs.Options, w io.Writer) error {
	pw, c, err := r.lookup(podName, namespace, container)
	if err != nil {
		return err
	}
	pw.mu.Lock()
	instance := c.restarts
	if c.running < 0 && c.state.Waiting != nil && c.last.Terminated != nil {
		instance-- // waiting to restart: the current log is the last instance's
	}
	pw.mu.Unlock()
	if o.Previous {
		instance--
		if instance < 0 {
			return podlogs.NewNotFound(fmt.Sprintf("previous terminated container %q in pod %q not found", c.spec.Name, podName))
		}
		o.Follow = false
	}
	path := c.logPath(instance)
	if _, err := os.Stat(path); err != nil {
		if o.Previous {
			return podlogs.NewNotFound(fmt.Sprintf("previous terminated container %q in pod %q not found", c.spec.Name, podName))
		}
		return nil
	}
	running := func() bool {
		pw.mu.Lock()
		defer pw.mu.Unlock()
		return c.running == instance
	}
	return podlogs.Read(ctx, path, o, w, running)
}
