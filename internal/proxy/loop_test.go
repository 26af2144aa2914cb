package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// loopSync is one call of loopBackend.Sync.
type loopSync struct {
	at      time.Time
	changed []Key
	full    bool
}

// loopBackend records its syncs; each costs cost (of the bubble's fake time)
// and fails while fail > 0. As a Verifier it reports drift while drifted.
type loopBackend struct {
	mu      sync.Mutex
	cost    time.Duration
	fail    int
	drifted bool
	checks  int
	syncs   []loopSync
}

func (f *loopBackend) Name() string   { return "fake" }
func (f *loopBackend) Cleanup() error { return nil }

func (f *loopBackend) Sync(_ *State, changed []Key, full bool) error {
	time.Sleep(f.cost)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs = append(f.syncs, loopSync{time.Now(), changed, full})
	if f.fail > 0 {
		f.fail--
		return errors.New("kernel said no")
	}
	f.drifted = false
	return nil
}

func (f *loopBackend) calls() []loopSync {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]loopSync(nil), f.syncs...)
}

// verifyingBackend adds Verify to loopBackend.
type verifyingBackend struct{ *loopBackend }

func (v verifyingBackend) Verify() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.checks++
	if v.drifted {
		return errors.New("chain nat-prerouting: 0 rules, want 3")
	}
	return nil
}

func svcObj(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
}

func sliceObj(name string) *discoveryv1.EndpointSlice {
	port := int32(8080)
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: name}}, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.2"}}}, Ports: []discoveryv1.EndpointPort{{Port: &port}}}
}

// startLoop runs the loop of a proxier over be in the bubble and waits for
// its first sync; stop ends it.
func startLoop(t *testing.T, be Backend, o Options) (p *Proxier, stop func()) {
	t.Helper()
	o.Backend, o.Log = be, slog.New(slog.NewTextHandler(io.Discard, nil))
	p = New(o)
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); p.loop(ctx, ready) }()
	<-ready
	return p, func() { cancel(); <-done }
}

func TestLoopReadyAfterFirstSuccessfulSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &loopBackend{fail: 2}
		p := New(Options{Backend: be, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ready := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); p.loop(ctx, ready) }()
		start := time.Now()
		synctest.Wait()
		select {
		case <-ready:
			t.Fatal("ready before a successful sync")
		default:
		}
		if ok, _ := p.Healthy(time.Hour); ok {
			t.Fatal("healthy before a successful sync")
		}
		<-ready
		// Two failures: retried after 1 s, then 2 s more (back-off), each a full sync.
		if took := time.Since(start); took != 3*time.Second {
			t.Errorf("ready after %v, want 3s (back-off 1s, 2s)", took)
		}
		calls := be.calls()
		if len(calls) != 3 || !calls[0].full || !calls[1].full || !calls[2].full {
			t.Errorf("syncs %+v, want 3 full ones", calls)
		}
		if ok, _ := p.Healthy(time.Hour); !ok {
			t.Error("not healthy after the first sync")
		}
		cancel()
		<-done
	})
}

func TestLoopIsolatedChangeAtOnceBurstCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &loopBackend{cost: 500 * time.Microsecond}
		p, stop := startLoop(t, be, Options{})
		defer stop()
		time.Sleep(time.Second) // idle
		// The two writes of a new Service, 1 ms apart (the second API round trip).
		start := time.Now()
		p.onChange(svcObj("a"), false)
		time.Sleep(time.Millisecond)
		p.onChange(sliceObj("a"), false)
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		calls := be.calls()[1:]
		if len(calls) != 1 || calls[0].full || len(calls[0].changed) != 1 {
			t.Fatalf("syncs after the two writes %+v, want one partial sync of ns/a", calls)
		}
		if at := calls[0].at.Sub(start); at > coalesceWindow+be.cost {
			t.Errorf("programmed %v after the change, want within the coalescing window (%v) plus the sync", at, coalesceWindow)
		}
		// A burst of 1,000 changes in 100 ms: far fewer syncs than changes.
		for i := range 1000 {
			p.onChange(svcObj(fmt.Sprintf("b%d", i)), false)
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(time.Second)
		burst := be.calls()[2:]
		changed := map[Key]bool{}
		for _, c := range burst {
			for _, k := range c.changed {
				changed[k] = true
			}
		}
		if len(changed) != 1000 {
			t.Errorf("%d service ports synced in the burst, want 1000", len(changed))
		}
		if len(burst) > 1000/10 {
			t.Errorf("%d syncs for 1,000 changes in 100 ms: the burst did not coalesce", len(burst))
		}
	})
}

func TestLoopErrorLeadsToFullSyncWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &loopBackend{}
		p, stop := startLoop(t, be, Options{})
		defer stop()
		be.mu.Lock()
		be.fail = 2
		be.mu.Unlock()
		start := time.Now()
		p.onChange(svcObj("a"), false)
		time.Sleep(100 * time.Millisecond)
		p.onChange(svcObj("b"), false) // changes do not cut the back-off short
		time.Sleep(5 * time.Second)
		calls := be.calls()[1:]
		if len(calls) != 3 {
			t.Fatalf("syncs %+v, want the failed partial, two full retries (one failing), and nothing else", calls)
		}
		want := []struct {
			at   time.Duration
			full bool
		}{{coalesceWindow, false}, {coalesceWindow + time.Second, true}, {coalesceWindow + 3*time.Second, true}}
		for i, w := range want {
			if got := calls[i].at.Sub(start); got != w.at || calls[i].full != w.full {
				t.Errorf("sync %d at %v (full %v), want at %v (full %v)", i, got, calls[i].full, w.at, w.full)
			}
		}
	})
}

func TestLoopPeriod(t *testing.T) {
	for _, tc := range []struct {
		name      string
		verifier  bool
		drift     bool
		wantFulls int // in 3.5 periods
		wantCheck int
	}{
		{"no verifier: full sync every period", false, false, 3, 0},
		{"verifier, no drift: checks only", true, false, 0, 3},
		{"verifier, drift: repaired once", true, true, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fb := &loopBackend{}
				var be Backend = fb
				if tc.verifier {
					be = verifyingBackend{fb}
				}
				_, stop := startLoop(t, be, Options{SyncPeriod: 10 * time.Second})
				defer stop()
				fb.mu.Lock()
				fb.drifted = tc.drift // someone flushed the table by hand
				fb.mu.Unlock()
				time.Sleep(35 * time.Second)
				calls := fb.calls()[1:]
				fulls := 0
				for _, c := range calls {
					if c.full {
						fulls++
					}
				}
				if fulls != tc.wantFulls || len(calls) != fulls || fb.checks != tc.wantCheck {
					t.Errorf("syncs %+v (%d full), checks %d; want %d full syncs, nothing else, %d checks", calls, fulls, fb.checks, tc.wantFulls, tc.wantCheck)
				}
				if tc.drift && len(calls) > 0 && calls[0].at.Sub(calls[0].at.Truncate(10*time.Second)) != 0 {
					t.Errorf("drift repaired at %v, want on the period", calls[0].at)
				}
			})
		})
	}
}

func TestLoopBudgetUnderChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &loopBackend{cost: 10 * time.Millisecond}
		p, stop := startLoop(t, be, Options{SyncShare: 0.2})
		defer stop()
		start := time.Now()
		const churn = 20 * time.Second
		for i := 0; time.Since(start) < churn; i++ { // a change every millisecond
			p.onChange(svcObj(fmt.Sprintf("s%d", i%100)), false)
			time.Sleep(time.Millisecond)
		}
		calls := be.calls()[1:]
		busy := time.Duration(len(calls)) * be.cost
		// The budget lends syncBurst ahead, then holds the share.
		if limit := syncBurst + time.Duration(0.2*float64(churn)); busy > limit+be.cost {
			t.Errorf("%d syncs (%v) in %v of churn, want at most %v (share 0.2 + burst)", len(calls), busy, churn, limit)
		}
		if busy < time.Duration(0.18*float64(churn)) {
			t.Errorf("%d syncs (%v) in %v of churn: the loop starves below its share", len(calls), busy, churn)
		}
		var gap time.Duration
		for i := 1; i < len(calls); i++ {
			gap = max(gap, calls[i].at.Sub(calls[i-1].at))
		}
		// Steady state: a sync every cost/share (50 ms), never a longer silence.
		if want := be.cost * 5; gap > want+coalesceWindow {
			t.Errorf("longest gap between syncs %v, want about %v", gap, want)
		}
	})
}

func TestLoopMinSyncPeriodFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &loopBackend{}
		p, stop := startLoop(t, be, Options{MinSyncPeriod: 100 * time.Millisecond})
		defer stop()
		time.Sleep(time.Second)
		start := time.Now()
		p.onChange(svcObj("a"), false)
		time.Sleep(10 * time.Millisecond)
		p.onChange(svcObj("b"), false)
		time.Sleep(time.Second)
		calls := be.calls()[1:]
		if len(calls) != 2 {
			t.Fatalf("syncs %+v, want 2", calls)
		}
		if d := calls[1].at.Sub(calls[0].at); d != 100*time.Millisecond {
			t.Errorf("second sync %v after the first (started %v after the change), want the 100ms floor", d, calls[0].at.Sub(start))
		}
	})
}
