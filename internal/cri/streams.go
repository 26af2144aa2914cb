package cri

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/svcnet/svcnet/internal/podlogs"
)

// lookup finds a pod's worker and its container instance (container "" = the
// first container; previous = the instance before the newest).
func (r *Runtime) lookup(namespace, podName, container string, previous bool) (*worker, *instance, error) {
	w := r.find(namespace, podName)
	if w == nil {
		return nil, nil, podlogs.NewNotFound(fmt.Sprintf("pod %q not found on this node", podName))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if container == "" && len(w.pod.Spec.Containers) > 0 {
		container = w.pod.Spec.Containers[0].Name
	}
	if specOf(w.pod, container) == nil {
		return nil, nil, podlogs.NewNotFound(fmt.Sprintf("container %q in pod %q not found", container, podName))
	}
	n := 0
	for i := range w.obs.containers {
		if w.obs.containers[i].name != container {
			continue
		}
		if !previous || n == 1 {
			c := w.obs.containers[i]
			return w, &c, nil
		}
		n++
	}
	if previous {
		return nil, nil, podlogs.NewNotFound(fmt.Sprintf("previous terminated container %q in pod %q not found", container, podName))
	}
	return w, nil, nil
}

// Logs writes a container's log to w.
func (r *Runtime) Logs(ctx context.Context, namespace, podName, container string, o podlogs.Options, out io.Writer) error {
	w, c, err := r.lookup(namespace, podName, container, o.Previous)
	if err != nil {
		return err
	}
	if c == nil {
		return nil // not started yet
	}
	if o.Previous {
		o.Follow = false
	}
	path := filepath.Join(w.dir, "logs", logPath(c.name, c.attempt))
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	running := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, x := range w.obs.containers {
			if x.id == c.id {
				return x.state == runtimeapi.ContainerState_CONTAINER_RUNNING
			}
		}
		return false
	}
	return podlogs.Read(ctx, path, o, out, running)
}

// StreamRequest is an exec, attach or port-forward request for the runtime's streaming server.
type StreamRequest struct {
	Verb                       string // exec, attach or portforward
	Namespace, Pod, Container  string
	Command                    []string
	Stdin, Stdout, Stderr, TTY bool
}

// StreamURL asks the runtime for the URL of its streaming server that serves
// req (the kubelet proxies the client's request there).
func (r *Runtime) StreamURL(ctx context.Context, req StreamRequest) (string, error) {
	w, c, err := r.lookup(req.Namespace, req.Pod, req.Container, false)
	if err != nil {
		return "", err
	}
	if req.Verb == "portforward" {
		w.mu.Lock()
		var id string
		if len(w.obs.sandboxes) > 0 && w.obs.sandboxes[0].ready {
			id = w.obs.sandboxes[0].id
		}
		w.mu.Unlock()
		if id == "" {
			return "", podlogs.NewNotFound(fmt.Sprintf("pod %q has no running sandbox", req.Pod))
		}
		resp, err := r.o.Runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: id})
		if err != nil {
			return "", err
		}
		return resp.Url, nil
	}
	if c == nil || c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return "", fmt.Errorf("container %q in pod %q is not running", req.Container, req.Pod)
	}
	switch req.Verb {
	case "exec":
		resp, err := r.o.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: c.id, Cmd: req.Command, Tty: req.TTY,
			Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr})
		if err != nil {
			return "", err
		}
		return resp.Url, nil
	case "attach":
		resp, err := r.o.Runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: c.id, Tty: req.TTY,
			Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr})
		if err != nil {
			return "", err
		}
		return resp.Url, nil
	}
	return "", fmt.Errorf("unknown stream verb %q", req.Verb)
}
