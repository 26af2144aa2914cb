package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/svcnet/svcnet/internal/pod"
)

// probe runs the container's startup, readiness and liveness probes for one
// instance until ctx ends; a failed liveness or startup probe is reported on
// unhealthy (and probing stops).
func (c *container) probe(ctx context.Context, unhealthy chan<- string) {
	now := c.w.r.o.Now
	start := now()
	var startup, ready, live *pod.ProbeState
	if p := c.spec.StartupProbe; p != nil {
		startup = pod.NewProbeState(*p, start, false)
	}
	if p := c.spec.ReadinessProbe; p != nil {
		ready = pod.NewProbeState(*p, start, false)
	}
	if p := c.spec.LivenessProbe; p != nil {
		live = pod.NewProbeState(*p, start, true)
	}
	if startup == nil && ready == nil && live == nil {
		return
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		t := now()
		next := t.Add(time.Hour)
		due := func(s *pod.ProbeState) bool {
			ok, at := s.Due(t)
			if !ok && at.Before(next) {
				next = at
			}
			return ok
		}
		if startup != nil && !startup.OK() {
			if due(startup) {
				startup.Record(c.check(ctx, *c.spec.StartupProbe, startup.Timeout()), now())
				if startup.OK() { // readiness and liveness start now
					t = now()
					if ready != nil {
						ready = pod.NewProbeState(*c.spec.ReadinessProbe, t, false)
					}
					if live != nil {
						live = pod.NewProbeState(*c.spec.LivenessProbe, t, true)
					}
				} else if startup.Exhausted() {
					unhealthy <- "startup"
					return
				}
				_, at := startup.Due(now())
				next = at
			}
			if !startup.OK() {
				timer.Reset(max(time.Until(next), time.Millisecond))
				continue
			}
		}
		if ready != nil && due(ready) {
			ok, changed := ready.Record(c.check(ctx, *c.spec.ReadinessProbe, ready.Timeout()), now())
			if changed {
				c.w.mu.Lock()
				if c.state.Running != nil {
					c.ready = ok
				}
				c.w.mu.Unlock()
				c.w.changed()
			}
			if _, at := ready.Due(now()); at.Before(next) {
				next = at
			}
		}
		if live != nil && due(live) {
			if ok, changed := live.Record(c.check(ctx, *c.spec.LivenessProbe, live.Timeout()), now()); changed && !ok {
				unhealthy <- "liveness"
				return
			}
			if _, at := live.Due(now()); at.Before(next) {
				next = at
			}
		}
		timer.Reset(max(time.Until(next), time.Millisecond))
	}
}

// check runs one probe and reports success.
func (c *container) check(ctx context.Context, p corev1.Probe, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.runHandler(ctx, corev1.LifecycleHandler{Exec: p.Exec, HTTPGet: p.HTTPGet, TCPSocket: p.TCPSocket}) == nil
}

// runHandler runs a probe or lifecycle handler (exec, httpGet, tcpSocket, sleep).
func (c *container) runHandler(ctx context.Context, h corev1.LifecycleHandler) error {
	c.w.mu.Lock()
	ip := c.w.ip.String()
	c.w.mu.Unlock()
	switch {
	case h.Exec != nil:
		return c.execProbe(ctx, h.Exec.Command)
	case h.HTTPGet != nil:
		g := h.HTTPGet
		port, err := c.port(g.Port)
		if err != nil {
			return err
		}
		host := g.Host
		if host == "" {
			host = ip
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "kube-probe/1.37")
		for _, hd := range g.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true} //nolint:gosec // probes do not verify, as the kubelet's
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case h.TCPSocket != nil:
		port, err := c.port(h.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = ip
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return nil
	}
	return fmt.Errorf("unsupported probe or hook handler")
}

// port resolves a numeric or named container port.
func (c *container) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %q has no port named %q", c.spec.Name, p.StrVal)
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
