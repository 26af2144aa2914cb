package cri

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/svcnet/svcnet/internal/probe"
)

// syncProbes starts the probes of running instances and stops those of ended ones.
func (w *worker) syncProbes(obs observed) {
	running := map[string]instance{}
	for _, c := range obs.containers {
		if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			running[c.id] = c
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, cancel := range w.probes {
		if _, ok := running[id]; !ok {
			cancel()
			delete(w.probes, id)
			delete(w.ready, id)
			delete(w.started, id)
		}
	}
	ip := ""
	if len(obs.sandboxes) > 0 {
		ip = obs.sandboxes[0].ip
	}
	if w.pod.Spec.HostNetwork {
		ip = w.pod.Status.HostIP
	}
	for id, c := range running {
		if _, ok := w.probes[id]; ok {
			continue
		}
		spec := specOf(w.pod, c.name)
		if spec == nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		w.probes[id] = cancel
		if spec.ReadinessProbe == nil {
			w.ready[id] = true
		}
		if spec.StartupProbe == nil {
			w.started[id] = true
		}
		go w.runProbes(ctx, id, *spec, ip, time.Unix(0, c.started))
	}
}

// runProbes probes one instance until it ends.
func (w *worker) runProbes(ctx context.Context, id string, spec corev1.Container, ip string, started time.Time) {
	exec := w.execFn(id)
	check := func(ctx context.Context, p corev1.Probe, timeout time.Duration) bool {
		return probe.Check(ctx, p, timeout, ip, spec, exec)
	}
	if started.Unix() <= 0 {
		started = w.r.o.Now()
	}
	probe.RunFrom(ctx, spec, started, w.r.o.Now, check, func(ok bool) {
		w.mu.Lock()
		w.ready[id] = ok
		if ok {
			w.started[id] = true
		}
		w.mu.Unlock()
		w.changed()
	}, func(kind string) {
		w.log().Info("container failed its probe and is restarted", "container", spec.Name, "probe", kind)
		w.mu.Lock()
		w.unhealthy[id] = true
		w.mu.Unlock()
		w.wake()
	})
}

// stopProbes stops the probes of one instance, or of all with "".
func (w *worker) stopProbes(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, cancel := range w.probes {
		if id == "" || k == id {
			cancel()
			delete(w.probes, k)
		}
	}
}
