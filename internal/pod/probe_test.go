package pod

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestProbeThresholdsAndTiming(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := NewProbeState(corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 3}, t0, false)
	if due, next := p.Due(t0.Add(4 * time.Second)); due || !next.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("probed before initialDelaySeconds (next %v)", next)
	}
	now := t0.Add(5 * time.Second)
	steps := []struct {
		success     bool
		ok, changed bool
	}{
		{true, false, false}, // one success of two
		{true, true, true},   // ready
		{false, true, false},
		{false, true, false},
		{true, true, false}, // resets the failure count
		{false, true, false},
		{false, true, false},
		{false, false, true}, // third consecutive failure: unready
	}
	for i, s := range steps {
		if due, _ := p.Due(now); !due {
			t.Fatalf("step %d: not due at %v", i, now)
		}
		ok, changed := p.Record(s.success, now)
		if ok != s.ok || changed != s.changed {
			t.Fatalf("step %d: ok=%v changed=%v, want %v %v", i, ok, changed, s.ok, s.changed)
		}
		if due, _ := p.Due(now.Add(time.Second)); due {
			t.Fatalf("step %d: due again before periodSeconds", i)
		}
		now = now.Add(2 * time.Second)
	}
	live := NewProbeState(corev1.Probe{}, t0, true)
	if !live.OK() || live.Timeout() != time.Second {
		t.Fatal("liveness defaults: starts alive, 1s timeout")
	}
	for i := 0; i < 2; i++ {
		live.Record(false, t0)
	}
	if !live.OK() {
		t.Fatal("default failureThreshold is 3")
	}
	if ok, changed := live.Record(false, t0); ok || !changed {
		t.Fatal("third failure must kill")
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	t0 := time.Unix(0, 0)
	var got []time.Duration
	for i := 0; i < 8; i++ {
		got = append(got, b.Delay(t0, t0.Add(time.Second)))
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := b.Delay(t0, t0.Add(11*time.Minute)); d != 0 {
		t.Fatalf("after 11 minutes running: %v, want an immediate restart", d)
	}
	if d := b.Delay(t0, t0.Add(time.Second)); d != BackoffInitial {
		t.Fatalf("second crash after the reset: %v, want 10s", d)
	}
}
