package runtime

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/probe"
)

// probe runs the container's startup, readiness and liveness probes for one
// instance until ctx ends; a failed liveness or startup probe is reported on
// unhealthy (and probing stops).
func (c *container) probe(ctx context.Context, unhealthy chan<- string) {
	ready := func(ok bool) {
		c.w.mu.Lock()
		if c.state.Running != nil {
			c.ready = ok
		}
		c.w.mu.Unlock()
		c.w.changed()
	}
	probe.Run(ctx, c.spec, c.w.r.o.Now, c.check, ready, func(kind string) { unhealthy <- kind })
}

// check runs one probe and reports success.
func (c *container) check(ctx context.Context, p corev1.Probe, timeout time.Duration) bool {
	return probe.Check(ctx, p, timeout, c.podIP(), c.spec, c.execProbe)
}

// runHandler runs a probe or lifecycle handler (exec, httpGet, tcpSocket, sleep).
func (c *container) runHandler(ctx context.Context, h corev1.LifecycleHandler) error {
	return probe.Handle(ctx, h, c.podIP(), c.spec, c.execProbe)
}

func (c *container) podIP() string {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.ip.String()
}

// execProbe runs a command in the container and succeeds on exit code 0.
func (c *container) execProbe(ctx context.Context, command []string) error {
	if len(command) == 0 {
		return fmt.Errorf("exec probe without a command")
	}
	c.w.mu.Lock()
	env := c.env
	c.w.mu.Unlock()
	cmd, err := spawn(c.w.spec(c, command, env), stdio{})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		signalGroup(cmd, 9)
		<-done
		return ctx.Err()
	}
}
