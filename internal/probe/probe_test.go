package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestHandle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != "kube-probe/1.37" || r.Header.Get("X-Probe") != "yes" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/healthz":
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound) // not followed: success
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portStr)
	c := corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	get := func(path string, p intstr.IntOrString) corev1.LifecycleHandler {
		return corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: p,
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		h    corev1.LifecycleHandler
		err  string // "" for success
	}{
		{"named port, path without slash", get("healthz", intstr.FromString("http")), ""},
		{"numeric port", get("/healthz", intstr.FromInt32(int32(port))), ""},
		{"redirect is not followed", get("/moved", intstr.FromString("http")), ""},
		{"server error", get("/broken", intstr.FromString("http")), "statuscode: 500"},
		{"unknown port name", get("/healthz", intstr.FromString("admin")), `container "web" has no port named "admin"`},
		{"no handler", corev1.LifecycleHandler{}, "unsupported"},
	} {
		err := Handle(ctx, tc.h, "127.0.0.1", c, nil)
		if (tc.err == "" && err != nil) || (tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err))) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp := corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(ln.Addr().(*net.TCPAddr).Port)}}
	if err := Handle(ctx, tcp, "127.0.0.1", c, nil); err != nil {
		t.Errorf("tcpSocket to a listening port: %v", err)
	}
	ln.Close()
	if err := Handle(ctx, tcp, "127.0.0.1", c, nil); err == nil {
		t.Errorf("tcpSocket to a closed port succeeded")
	}

	var ran []string
	failed := errors.New("exit status 1")
	exec := func(_ context.Context, cmd []string) error { ran = cmd; return failed }
	h := corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}}
	if err := Handle(ctx, h, "127.0.0.1", c, exec); !errors.Is(err, failed) || !slices.Equal(ran, []string{"cat", "/tmp/ready"}) {
		t.Errorf("exec: %v, ran %q", err, ran)
	}
	if err := Handle(ctx, h, "127.0.0.1", c, nil); err == nil {
		t.Errorf("exec without a callback succeeded")
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := Handle(done, corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 3600}}, "", c, nil); err != nil {
		t.Errorf("sleep ended by ctx: %v", err)
	}
}

func TestCheck(t *testing.T) {
	p := corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	var deadline time.Time
	exec := func(ctx context.Context, _ []string) error { deadline, _ = ctx.Deadline(); return nil }
	start := time.Now()
	if !Check(context.Background(), p, 5*time.Second, "", corev1.Container{}, exec) {
		t.Errorf("exec probe exiting 0 failed")
	}
	if d := deadline.Sub(start); d < 4*time.Second || d > 6*time.Second {
		t.Errorf("probe deadline %v from now, want the 5s timeout", d)
	}
	if Check(context.Background(), p, time.Second, "", corev1.Container{}, func(context.Context, []string) error { return errors.New("no") }) {
		t.Errorf("failing exec probe succeeded")
	}
}

// probeRun is what one Run did, in seconds since it started.
type probeRun struct {
	checks    []string // "<probe>@<second>"
	ready     []string // "<ok>@<second>"
	unhealthy string
}

// run runs Run under a fake clock for up to d; results holds each probe's
// answers (by its exec command), the last repeating.
func run(t *testing.T, c corev1.Container, results map[string][]bool, d time.Duration) probeRun {
	t.Helper()
	var r probeRun
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		at := func() string { return strconv.Itoa(int(time.Since(start) / time.Second)) }
		check := func(_ context.Context, p corev1.Probe, timeout time.Duration) bool {
			name := p.Exec.Command[0]
			r.checks = append(r.checks, name+"@"+at())
			rs := results[name]
			ok := rs[0]
			if len(rs) > 1 {
				results[name] = rs[1:]
			}
			return ok
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, c, time.Now, check, func(ok bool) { r.ready = append(r.ready, strconv.FormatBool(ok)+"@"+at()) },
				func(kind string) {
					if r.unhealthy != "" {
						t.Errorf("unhealthy twice: %s, %s", r.unhealthy, kind)
					}
					r.unhealthy = kind + "@" + at()
				})
		}()
		select {
		case <-done:
		case <-time.After(d):
		}
		cancel()
		<-done
	})
	return r
}

func execProbe(name string, p corev1.Probe) *corev1.Probe {
	p.Exec = &corev1.ExecAction{Command: []string{name}}
	return &p
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       corev1.Container
		results map[string][]bool
		want    probeRun
	}{
		{
			name:    "readiness flips after the thresholds",
			c:       corev1.Container{ReadinessProbe: execProbe("ready", corev1.Probe{PeriodSeconds: 2, FailureThreshold: 2})},
			results: map[string][]bool{"ready": {false, true, false, true, false, false}},
			want: probeRun{checks: []string{"ready@0", "ready@2", "ready@4", "ready@6", "ready@8", "ready@10", "ready@12", "ready@14"},
				ready: []string{"true@2", "false@10"}},
		},
		{
			name:    "liveness fails for good",
			c:       corev1.Container{LivenessProbe: execProbe("live", corev1.Probe{InitialDelaySeconds: 3, PeriodSeconds: 1, FailureThreshold: 2})},
			results: map[string][]bool{"live": {true, false, false}},
			want:    probeRun{checks: []string{"live@3", "live@4", "live@5"}, unhealthy: "liveness@5"},
		},
		{
			name: "startup gates readiness and liveness",
			c: corev1.Container{StartupProbe: execProbe("startup", corev1.Probe{PeriodSeconds: 1, FailureThreshold: 5}),
				ReadinessProbe: execProbe("ready", corev1.Probe{PeriodSeconds: 5}),
				LivenessProbe:  execProbe("live", corev1.Probe{InitialDelaySeconds: 4, PeriodSeconds: 10})},
			results: map[string][]bool{"startup": {false, false, true}, "ready": {true}, "live": {true}},
			want: probeRun{checks: []string{"startup@0", "startup@1", "startup@2", "ready@2", "live@6", "ready@7", "ready@12"},
				ready: []string{"true@2"}},
		},
		{
			name:    "startup exhausted",
			c:       corev1.Container{StartupProbe: execProbe("startup", corev1.Probe{PeriodSeconds: 1, FailureThreshold: 2}), ReadinessProbe: execProbe("ready", corev1.Probe{})},
			results: map[string][]bool{"startup": {false}},
			want:    probeRun{checks: []string{"startup@0", "startup@1"}, unhealthy: "startup@1"},
		},
		{name: "no probes", want: probeRun{}},
	} {
		got := run(t, tc.c, tc.results, 15*time.Second)
		if !slices.Equal(got.checks, tc.want.checks) || !slices.Equal(got.ready, tc.want.ready) || got.unhealthy != tc.want.unhealthy {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.name, got, tc.want)
		}
	}
}
