package announce

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	d := 2 * time.Second
	renew := 500 * time.Millisecond
	tests := []struct {
		name      string
		l         Lease
		candidate bool
		at        time.Duration // after t0
		want      Action
	}{
		{"no lease: take it", Lease{}, true, 0, Acquire},
		{"no lease, no endpoints here", Lease{}, false, 0, Wait},
		{"released: take it", Lease{Exists: true, Observed: t0, Duration: d}, true, 0, Acquire},
		{"held by a live node", Lease{Exists: true, Holder: "b", Observed: t0, Duration: d}, true, time.Second, Wait},
		{"held by a dead node: take over", Lease{Exists: true, Holder: "b", Observed: t0, Duration: d}, true, 2*time.Second + time.Millisecond, Acquire},
		{"dead holder, but we may not", Lease{Exists: true, Holder: "b", Observed: t0, Duration: d}, false, time.Minute, Wait},
		{"ours, fresh", Lease{Exists: true, Holder: "a", Observed: t0, Duration: d}, true, 100 * time.Millisecond, Keep},
		{"ours, due", Lease{Exists: true, Holder: "a", Observed: t0, Duration: d}, true, renew, Renew},
		{"ours, endpoints gone", Lease{Exists: true, Holder: "a", Observed: t0, Duration: d}, false, 0, Release},
	}
	for _, tt := range tests {
		if got := Decide(tt.l, "a", tt.candidate, t0.Add(tt.at), renew); got != tt.want {
			t.Errorf("%s: Decide = %v, want %v", tt.name, got, tt.want)
		}
	}
}
