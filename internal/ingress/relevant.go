package ingress

import (
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// backendFilter tells which Service and EndpointSlice changes matter to the
// table: those of the Services its routes send to. Every other change (most of
// them in a cluster with many Services and few routes) costs no sync.
//
// A change seen while a sync runs is checked again against the set that sync
// produces, so a Service a new route names is never missed.
type backendFilter struct {
	mu       sync.Mutex
	backends map[types.NamespacedName]bool // nil: before the first sync, all matter
	skipped  map[types.NamespacedName]bool // changes not poked since the last sync began
}

// serviceOf is the Service a Service or EndpointSlice (or its tombstone)
// belongs to; ok is false for other objects.
func serviceOf(o any) (types.NamespacedName, bool) {
	if t, is := o.(cache.DeletedFinalStateUnknown); is {
		o = t.Obj
	}
	switch x := o.(type) {
	case *corev1.Service:
		return types.NamespacedName{Namespace: x.Namespace, Name: x.Name}, true
	case *discoveryv1.EndpointSlice:
		return types.NamespacedName{Namespace: x.Namespace, Name: x.Labels[discoveryv1.LabelServiceName]}, true
	}
	return types.NamespacedName{}, false
}

// matters reports whether a change of o needs a sync; when not, it is kept
// to be checked against the next sync's backends.
func (f *backendFilter) matters(o any) bool {
	key, ok := serviceOf(o)
	if !ok {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backends == nil || f.backends[key] {
		return true
	}
	if f.skipped == nil {
		f.skipped = map[types.NamespacedName]bool{}
	}
	f.skipped[key] = true
	return false
}

// syncing is called before a sync reads the caches: what was skipped so far
// is in what it reads.
func (f *backendFilter) syncing() {
	f.mu.Lock()
	f.skipped = nil
	f.mu.Unlock()
}

// synced installs the backends of the table just built and reports whether a
// change skipped meanwhile concerns one of them (then another sync is due).
func (f *backendFilter) synced(backends map[types.NamespacedName]bool) (again bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.skipped {
		again = again || backends[k]
	}
	f.backends, f.skipped = backends, nil
	return again
}

// backendsOf lists the Services t's routes send to.
func backendsOf(t *Table) map[types.NamespacedName]bool {
	out := map[types.NamespacedName]bool{}
	for _, p := range t.Ports {
		for _, h := range p.Hosts {
			for _, r := range h.Routes {
				for _, b := range r.Backends {
					out[b.Service] = true
				}
			}
		}
	}
	return out
}

// readyIPsOf counts the ready endpoints' IPs of the slices of backends.
func readyIPsOf(slices []*discoveryv1.EndpointSlice, backends map[types.NamespacedName]bool) map[netip.Addr]int {
	var use []*discoveryv1.EndpointSlice
	for _, es := range slices {
		if key, _ := serviceOf(es); backends[key] {
			use = append(use, es)
		}
	}
	return readyIPs(use)
}
