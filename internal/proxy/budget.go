package proxy

import "time"

// Sync loop defaults, shared by the agent's flags and the loop.
const (
	// DefaultSyncShare is the share of one core the loop may spend syncing
	// under continuous churn: after a sync that cost c, the next waits until
	// the budget is back (c*(1/share-1) once the burst is used up).
	DefaultSyncShare = 0.25
	// DefaultSyncPeriod is how often the backend's kernel state is checked
	// (and repaired) without a change: kube-proxy's syncPeriod default.
	DefaultSyncPeriod = 30 * time.Second
	// FullSyncPeriod bounds the time between two full syncs, for drift a
	// backend's cheap check cannot see (kube-proxy's FullSyncPeriod).
	FullSyncPeriod = time.Hour
	// syncBurst is the sync time the budget lends ahead: a burst of changes
	// after a quiet spell is programmed at once, sync after sync.
	syncBurst = 250 * time.Millisecond
	// coalesceWindow is how long a change waits for its neighbours when the
	// loop is idle: a Service and its EndpointSlice written back to back
	// usually land in one sync.
	coalesceWindow = 2 * time.Millisecond
)

// budget is a token bucket of sync time: it fills at share seconds per
// second up to burst, and each sync takes its measured cost out of it (it may
// go below zero; the next sync waits until it is back at zero).
type budget struct {
	share  float64
	burst  time.Duration
	credit time.Duration
	at     time.Time
}

func newBudget(share float64, now time.Time) *budget {
	return &budget{share: share, burst: syncBurst, credit: syncBurst, at: now}
}

func (b *budget) refill(now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.credit = min(b.burst, b.credit+time.Duration(float64(d)*b.share))
		b.at = now
	}
}

// spend charges a sync that cost cost and ended at now.
func (b *budget) spend(now time.Time, cost time.Duration) {
	b.refill(now)
	b.credit -= cost
}

// reset forgives what was spent (the start-up sync: nothing could run before it).
func (b *budget) reset(now time.Time) { b.credit, b.at = b.burst, now }

// next is when the budget allows the next sync (now or later).
func (b *budget) next(now time.Time) time.Time {
	b.refill(now)
	if b.credit >= 0 {
		return now
	}
	return now.Add(time.Duration(float64(-b.credit) / b.share))
}
