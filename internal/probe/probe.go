// Package probe runs a container's startup, readiness and liveness probes and
// its lifecycle handlers (exec, httpGet, tcpSocket, sleep) as the kubelet does,
// for any pod runtime: the runtime supplies how to exec in its containers.
package probe

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

// Checker runs one probe with a timeout and reports success.
type Checker func(ctx context.Context, p corev1.Probe, timeout time.Duration) bool

// Run runs c's startup, readiness and liveness probes for one instance until
// ctx ends. ready gets each change of the readiness result; a liveness or
// startup probe that fails for good is reported once on unhealthy ("liveness"
// or "startup") and ends probing.
func Run(ctx context.Context, c corev1.Container, now func() time.Time, check Checker, ready func(ok bool), unhealthy func(kind string)) {
	RunFrom(ctx, c, now(), now, check, ready, unhealthy)
}

// RunFrom is Run for a container that started at start: initial delays count
// from then, as the kubelet counts them (a restarted agent does not delay a
// running container's probes again).
func RunFrom(ctx context.Context, c corev1.Container, start time.Time, now func() time.Time, check Checker, ready func(ok bool), unhealthy func(kind string)) {
	var startupS, readyS, liveS *pod.ProbeState
	if p := c.StartupProbe; p != nil {
		startupS = pod.NewProbeState(*p, start, false)
	}
	if p := c.ReadinessProbe; p != nil {
		readyS = pod.NewProbeState(*p, start, false)
	}
	if p := c.LivenessProbe; p != nil {
		liveS = pod.NewProbeState(*p, start, true)
	}
	if startupS == nil && readyS == nil && liveS == nil {
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
		if startupS != nil && !startupS.OK() {
			if due(startupS) {
				startupS.Record(check(ctx, *c.StartupProbe, startupS.Timeout()), now())
				if startupS.OK() { // readiness and liveness start now
					t = now()
					if readyS != nil {
						readyS = pod.NewProbeState(*c.ReadinessProbe, t, false)
					}
					if liveS != nil {
						liveS = pod.NewProbeState(*c.LivenessProbe, t, true)
					}
				} else if startupS.Exhausted() {
					unhealthy("startup")
					return
				}
				_, at := startupS.Due(now())
				next = at
			}
			if !startupS.OK() {
				timer.Reset(max(time.Until(next), time.Millisecond))
				continue
			}
		}
		if readyS != nil && due(readyS) {
			if ok, changed := readyS.Record(check(ctx, *c.ReadinessProbe, readyS.Timeout()), now()); changed {
				ready(ok)
			}
			if _, at := readyS.Due(now()); at.Before(next) {
				next = at
			}
		}
		if liveS != nil && due(liveS) {
			if ok, changed := liveS.Record(check(ctx, *c.LivenessProbe, liveS.Timeout()), now()); changed && !ok {
				unhealthy("liveness")
				return
			}
			if _, at := liveS.Due(now()); at.Before(next) {
				next = at
			}
		}
		timer.Reset(max(time.Until(next), time.Millisecond))
	}
}

// Check runs one probe of container c (at podIP) within timeout and reports
// success; exec runs a command in the container.
func Check(ctx context.Context, p corev1.Probe, timeout time.Duration, podIP string, c corev1.Container, exec func(ctx context.Context, cmd []string) error) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return Handle(ctx, corev1.LifecycleHandler{Exec: p.Exec, HTTPGet: p.HTTPGet, TCPSocket: p.TCPSocket}, podIP, c, exec) == nil
}

// Handle runs a probe or lifecycle handler of container c (at podIP): exec
// through the callback, httpGet, tcpSocket or sleep. Named ports are c's.
func Handle(ctx context.Context, h corev1.LifecycleHandler, podIP string, c corev1.Container, exec func(ctx context.Context, cmd []string) error) error {
	switch {
	case h.Exec != nil:
		if exec == nil {
			return fmt.Errorf("exec handlers are not supported here")
		}
		return exec(ctx, h.Exec.Command)
	case h.HTTPGet != nil:
		g := h.HTTPGet
		port, err := port(c, g.Port)
		if err != nil {
			return err
		}
		host := g.Host
		if host == "" {
			host = podIP
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
		port, err := port(c, h.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = podIP
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

// port resolves a numeric or named port of container c.
func port(c corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %q has no port named %q", c.Name, p.StrVal)
}
