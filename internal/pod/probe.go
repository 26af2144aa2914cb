package pod

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ProbeState tracks one container probe the way the kubelet does: nothing is
// probed before initialDelaySeconds; a readiness probe starts as failing and a
// liveness probe as succeeding; the result flips only after successThreshold
// consecutive successes or failureThreshold consecutive failures.
type ProbeState struct {
	spec      corev1.Probe
	started   time.Time
	last      time.Time
	ok        bool
	successes int32
	failures  int32
}

// NewProbeState starts tracking spec for a container started at start; ready
// probes begin unready (initial false), liveness probes begin alive (true).
func NewProbeState(spec corev1.Probe, start time.Time, initial bool) *ProbeState {
	if spec.PeriodSeconds <= 0 {
		spec.PeriodSeconds = 10
	}
	if spec.SuccessThreshold <= 0 {
		spec.SuccessThreshold = 1
	}
	if spec.FailureThreshold <= 0 {
		spec.FailureThreshold = 3
	}
	if spec.TimeoutSeconds <= 0 {
		spec.TimeoutSeconds = 1
	}
	return &ProbeState{spec: spec, started: start, ok: initial}
}

// Due reports whether a probe should run at now, and otherwise when the next is due.
func (p *ProbeState) Due(now time.Time) (bool, time.Time) {
	first := p.started.Add(time.Duration(p.spec.InitialDelaySeconds) * time.Second)
	next := first
	if !p.last.IsZero() {
		next = p.last.Add(time.Duration(p.spec.PeriodSeconds) * time.Second)
	}
	if now.Before(next) {
		return false, next
	}
	return true, next
}

// Timeout is how long one probe may take.
func (p *ProbeState) Timeout() time.Duration {
	return time.Duration(p.spec.TimeoutSeconds) * time.Second
}

// Record takes one probe result at now and returns the state and whether it changed.
func (p *ProbeState) Record(success bool, now time.Time) (ok, changed bool) {
	p.last = now
	if success {
		p.successes, p.failures = p.successes+1, 0
		if !p.ok && p.successes >= p.spec.SuccessThreshold {
			p.ok = true
			return true, true
		}
	} else {
		p.failures, p.successes = p.failures+1, 0
		if p.ok && p.failures >= p.spec.FailureThreshold {
			p.ok = false
			return false, true
		}
	}
	return p.ok, false
}

// Exhausted reports whether the last failureThreshold probes all failed (a
// startup probe that never succeeds ends its container this way).
func (p *ProbeState) Exhausted() bool { return p.failures >= p.spec.FailureThreshold }

// OK returns the current state.
func (p *ProbeState) OK() bool { return p.ok }

// Backoff is the kubelet's container restart back-off: the first restart is
// immediate, then 10s, doubling up to 5m; a container that ran for 10 minutes
// starts over.
type Backoff struct {
	next    time.Duration
	crashed bool
}

// Back-off bounds.
const (
	BackoffInitial = 10 * time.Second
	BackoffMax     = 300 * time.Second
	BackoffReset   = 10 * time.Minute
)

// Delay returns how long to wait before restarting a container that started at
// started and exited at exited.
func (b *Backoff) Delay(started, exited time.Time) time.Duration {
	if !b.crashed || exited.Sub(started) >= BackoffReset {
		b.crashed, b.next = true, 0
		return 0
	}
	if b.next == 0 {
		b.next = BackoffInitial
	} else {
		b.next = min(b.next*2, BackoffMax)
	}
	return b.next
}
