package proxy

import (
	"context"
	"runtime/debug"
	"time"
)

// loop runs the syncs until ctx ends: a full one first (then ready is
// closed), then a partial one for each batch of changes as soon as the
// budget (and the user's MinSyncPeriod) allows, after a coalescing window when
// it was idle; a failed sync is retried as a full one with back-off; every
// SyncPeriod the backend is verified (or, without Verify, fully synced).
func (p *Proxier) loop(ctx context.Context, ready chan<- struct{}) {
	clk := p.o.Clock
	hc := NewHealthChecks(p.o.Log)
	defer hc.Close()
	now := clk.Now()
	bud := newBudget(p.o.SyncShare, now)
	var (
		full, dirty        = true, true  // what the next sync is; whether one is wanted
		reason             = "start"     // why a full sync is wanted (logged)
		since              time.Time     // when the changes waiting began to wait
		retryAt, lastStart time.Time     // after a failure: no sync before retryAt
		lastFull           = now         // the last successful full sync
		retry              = time.Second // the next back-off
		periodAt           = now.Add(p.o.SyncPeriod)
		started            bool // the first sync succeeded
	)
	due := func() time.Time {
		t := bud.next(now)
		if p.o.MinSyncPeriod > 0 && !lastStart.IsZero() {
			t = later(t, lastStart.Add(p.o.MinSyncPeriod))
		}
		if !full {
			t = later(t, since.Add(coalesceWindow))
		}
		return later(t, retryAt)
	}
	for {
		if dirty && !now.Before(due()) {
			lastStart = now
			took, err := p.syncOnce(hc, full, reason)
			now = clk.Now()
			if started {
				bud.spend(now, took)
			} else if err == nil {
				bud.reset(now) // the start-up sync is not charged: nothing could be programmed before it
			}
			if err != nil {
				p.o.Log.Error("proxy rules sync failed; retrying with a full sync", "backend", p.o.Backend.Name(), "err", err, "retryIn", retry)
				full, reason, retryAt = true, "retry after an error", now.Add(retry)
				retry = min(retry*2, 30*time.Second)
				continue
			}
			if full {
				lastFull = now
				if !started && ready != nil {
					close(ready)
				}
				started = true
			}
			full, dirty, retry, retryAt = false, false, time.Second, time.Time{}
			continue
		}
		wake := periodAt
		if dirty {
			wake = earlier(wake, due())
		}
		timer := clk.NewTimer(wake.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-p.kick:
			if !dirty {
				dirty, since = true, clk.Now()
			}
		case <-timer.C():
		}
		timer.Stop()
		now = clk.Now()
		if !now.Before(periodAt) {
			periodAt = now.Add(p.o.SyncPeriod)
			if !full {
				checked := now
				if why := p.drifted(now.Sub(lastFull)); why != "" {
					full, dirty, reason = true, true, why
				}
				now = clk.Now()
				bud.spend(now, now.Sub(checked))
			}
		}
	}
}

// drifted says why the periodic check wants a full sync ("" for none).
func (p *Proxier) drifted(sinceFull time.Duration) string {
	v, ok := p.o.Backend.(Verifier)
	switch {
	case !ok:
		return "periodic resync"
	case sinceFull >= FullSyncPeriod:
		return "full sync period"
	}
	if err := v.Verify(); err != nil {
		p.o.Metrics.drift.Inc()
		p.o.Log.Warn("proxy rules differ from what was written; repairing with a full sync", "backend", p.o.Backend.Name(), "drift", err)
		return "drift: " + err.Error()
	}
	return ""
}

// syncOnce folds the pending changes into the state and has the backend
// write them; it returns what the sync cost.
func (p *Proxier) syncOnce(hc *HealthChecks, full bool, reason string) (time.Duration, error) {
	clk, m := p.o.Clock, p.o.Metrics
	start := clk.Now()
	st, changed, triggers := p.tracker.Apply()
	m.pending(0, 0)
	gc := 0
	if full { // a full sync allocates its whole table at once: fewer GC passes over the informer caches meanwhile
		gc = debug.SetGCPercent(400)
	}
	err := p.o.Backend.Sync(st, changed, full)
	if full {
		debug.SetGCPercent(gc)
	}
	now := clk.Now()
	took := now.Sub(start)
	m.observeSync(took, full)
	if err != nil {
		return took, err
	}
	for _, t := range triggers {
		m.programming.Observe(now.Sub(t).Seconds())
	}
	if full {
		debug.FreeOSMemory() // a full sync's netlink messages are garbage now: give the memory back
		level := p.o.Log.Info
		if reason == "periodic resync" {
			level = p.o.Log.Debug
		}
		level("proxy rules synced", "backend", p.o.Backend.Name(), "servicePorts", len(st.Services), "reason", reason, "took", took)
	} else {
		p.o.Log.Debug("proxy rules synced (partial)", "changed", len(changed), "took", took)
	}
	hc.Sync(st)
	p.mu.Lock()
	p.lastSync, p.synced = now, true
	p.mu.Unlock()
	m.lastSync.Set(float64(now.UnixNano()) / 1e9)
	return took, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
