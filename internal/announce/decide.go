// Package announce makes load-balancer IPs reachable on the node's LAN: for
// each Service with addresses in status.loadBalancer.ingress, one node answers
// ARP for them (a gratuitous ARP when it takes over), chosen by a
// coordination.k8s.io Lease per Service in kube-system, as Cilium's L2
// announcements do. Under externalTrafficPolicy Local only nodes with a ready
// endpoint of the Service contend; a holder that loses its endpoints lets go.
// When the holder dies its Lease expires and another node takes over.
//
// The decision what to do with a Lease is a pure function (Decide); the
// Announcer does the I/O through a client and a Responder (ARP on Linux, a
// fake for tests).
package announce

import (
	"time"
)

// Action is what a node does with one Service's Lease.
type Action int

// Actions Decide returns.
const (
	Wait    Action = iota // someone else holds it, or we may not
	Acquire               // take it: free, expired or released
	Renew                 // ours: extend it
	Keep                  // ours and fresh enough
	Release               // ours but we may no longer announce
)

func (a Action) String() string {
	return [...]string{"wait", "acquire", "renew", "keep", "release"}[a]
}

// Lease is what Decide needs of a Lease: its holder, and when this node last
// saw it change (its own clock: holders' clocks may differ).
type Lease struct {
	Exists   bool
	Holder   string
	Observed time.Time // when this node last saw the lease change
	Duration time.Duration
}

// Decide returns what node me does with l at now: candidate says whether it may
// announce the Service (under Local: has a ready endpoint); renewEvery is how
// often a holder renews.
func Decide(l Lease, me string, candidate bool, now time.Time, renewEvery time.Duration) Action {
	mine := l.Exists && l.Holder == me
	switch {
	case mine && !candidate:
		return Release
	case mine && now.Sub(l.Observed) >= renewEvery:
		return Renew
	case mine:
		return Keep
	case !candidate:
		return Wait
	case !l.Exists || l.Holder == "" || now.Sub(l.Observed) > l.Duration:
		return Acquire
	}
	return Wait
}
