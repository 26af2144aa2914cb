package proxy

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Tracker records Service and EndpointSlice changes as they come off the
// watches and folds them into the State when the sync function asks, so
// handlers never wait for rules to be written.
type Tracker struct {
	mu       sync.Mutex
	node     string
	local    []Listener                // this node's listeners (MarkNodeLocal)
	services map[string][]*ServicePort // ns/name -> its ports
	slices   map[string][]trackedSlice // ns/name -> its slices, by name
	pending  map[string]change         // ns/name changed since the last Apply
	counts   [2]int                    // of pending: Services with spec changes, with endpoint changes
	triggers []time.Time               // EndpointSlice trigger times not yet programmed
	state    *State
	keys     map[string][]Key // ns/name -> its keys in state
}

// change says what of a Service changed: its spec, its endpoints, or both.
type change uint8

const (
	serviceChanged change = 1 << iota
	endpointsChanged
)

// NewTracker tracks changes for the proxy of node, whose servers answer on
// local (their Services' keys are left alone, see MarkNodeLocal).
func NewTracker(node string, local ...Listener) *Tracker {
	return &Tracker{node: node, local: local, services: map[string][]*ServicePort{}, slices: map[string][]trackedSlice{},
		pending: map[string]change{}, state: NewState(), keys: map[string][]Key{}}
}

// OnService records a Service added, updated or (deleted) removed.
func (t *Tracker) OnService(s *corev1.Service, deleted bool) {
	c, _ := t.convert(s)
	t.onService(c.(*cachedService), deleted)
}

// OnSlice records an EndpointSlice added, updated or (deleted) removed.
func (t *Tracker) OnSlice(es *discoveryv1.EndpointSlice, deleted bool) {
	c, _ := t.convert(es)
	t.onSlice(c.(*cachedSlice), deleted)
}

func (t *Tracker) onService(s *cachedService, deleted bool) {
	name := s.Namespace + "/" + s.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	if deleted {
		delete(t.services, name)
	} else {
		t.services[name] = s.ports
	}
	t.mark(name, serviceChanged)
}

func (t *Tracker) onSlice(es *cachedSlice, deleted bool) {
	name := es.service
	if name == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if deleted {
		t.slices[name] = removeSlice(t.slices[name], es.Name)
	} else {
		t.slices[name] = putSlice(t.slices[name], es.slice)
		if !es.trigger.IsZero() {
			t.triggers = append(t.triggers, es.trigger)
		}
	}
	t.mark(name, endpointsChanged)
}

// mark records a change of Service name (t.mu held), keeping the counts
// Pending reports: it is asked at every event, and counting then would make
// an initial list of n Services cost n².
func (t *Tracker) mark(name string, c change) {
	old := t.pending[name]
	t.pending[name] = old | c
	if c&serviceChanged != 0 && old&serviceChanged == 0 {
		t.counts[0]++
	}
	if c&endpointsChanged != 0 && old&endpointsChanged == 0 {
		t.counts[1]++
	}
}

// Pending reports how many Services have changes not yet applied: of their
// spec, and of their endpoints.
func (t *Tracker) Pending() (services, endpoints int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[0], t.counts[1]
}

// Apply folds the pending changes into the state and returns it with the keys
// whose service port or endpoints may have changed, and the trigger times of
// the EndpointSlice changes included. The state is the tracker's own: read it
// only from the sync goroutine.
func (t *Tracker) Apply() (*State, []Key, []time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := map[Key]bool{}
	for name := range t.pending {
		for _, k := range t.keys[name] {
			changed[k] = true
			delete(t.state.Services, k)
			delete(t.state.Endpoints, k)
		}
		delete(t.keys, name)
		for _, sp := range t.services[name] {
			t.keys[name] = append(t.keys[name], sp.Key)
			changed[sp.Key] = true
			t.state.Services[sp.Key] = sp
			var eps []Endpoint
			seen := map[netip.AddrPort]bool{}
			for _, sl := range t.slices[name] { // by name: an address in two slices, the first slice's wins
				for _, e := range sl.endpoints(sp.Key.Port) {
					if !seen[e.Addr] { // an address in two slices counts once
						seen[e.Addr] = true
						eps = append(eps, e)
					}
				}
			}
			sort.Slice(eps, func(i, j int) bool { return eps[i].Addr.Compare(eps[j].Addr) < 0 })
			t.state.Endpoints[sp.Key] = eps
		}
		if len(t.slices[name]) == 0 {
			delete(t.slices, name)
		}
	}
	t.pending, t.counts = map[string]change{}, [2]int{}
	keys := make([]Key, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	triggers := t.triggers
	t.triggers = nil
	return t.state, keys, triggers
}

// trackedSlice is one EndpointSlice's endpoints per port name (a slice: one
// or two ports are the rule, and a map per slice costs a whole map group).
type trackedSlice struct {
	name  string
	ports []portEndpoints
}

type portEndpoints struct {
	port string
	eps  []Endpoint
}

func (s trackedSlice) endpoints(port string) []Endpoint {
	for _, p := range s.ports {
		if p.port == port {
			return p.eps
		}
	}
	return nil
}

// putSlice adds or replaces s in slices, kept sorted by name.
func putSlice(in []trackedSlice, s trackedSlice) []trackedSlice {
	i, found := slices.BinarySearchFunc(in, s.name, func(a trackedSlice, name string) int { return strings.Compare(a.name, name) })
	if found {
		in[i] = s
		return in
	}
	return slices.Insert(in, i, s)
}

// removeSlice drops the slice called name (nil when none is left).
func removeSlice(in []trackedSlice, name string) []trackedSlice {
	out := slices.DeleteFunc(in, func(s trackedSlice) bool { return s.name == name })
	if len(out) == 0 {
		return nil
	}
	return out
}
