package proxy

import "fmt"

// TopologyBackend applies topology hints (trafficDistribution PreferClose,
// PreferSameZone, PreferSameNode) to the state before its Backend sees it: the
// endpoints of the keys synced get Far set by Topology for this node and its
// zone, so every backend's Usable keeps cluster traffic in the zone (or on the
// node) that has endpoints and falls back to all when it has none.
type TopologyBackend struct {
	Backend
	Node string
	// Zone returns this node's topology.kubernetes.io/zone label ("" when it
	// has none); read at every sync, a change rewrites every key.
	Zone func() string

	zone   string
	synced bool
}

// NewTopology wraps be in a TopologyBackend for node; a backend that can
// verify its rules still can through the wrapper, and then a change of the
// node's zone counts as drift, so the periodic check applies it.
func NewTopology(be Backend, node string, zone func() string) Backend {
	t := &TopologyBackend{Backend: be, Node: node, Zone: zone}
	if v, ok := be.(verifier); ok {
		return &topologyVerifier{t, v}
	}
	return t
}

type topologyVerifier struct {
	*TopologyBackend
	v verifier
}

func (t *topologyVerifier) Verify() error {
	if z := t.currentZone(); t.synced && z != t.zone {
		return Drift([]string{fmt.Sprintf("the node's zone is %q, the rules follow %q", z, t.zone)})
	}
	return t.v.Verify()
}

func (t *TopologyBackend) currentZone() string {
	if t.Zone == nil {
		return ""
	}
	return t.Zone()
}

// Sync marks the endpoints of the changed keys (all of them on a full sync or
// a new zone) and hands the state to the backend.
func (t *TopologyBackend) Sync(st *State, changed []Key, full bool) error {
	zone := t.currentZone()
	if !t.synced || zone != t.zone {
		full = true
	}
	keys := changed
	if full {
		keys = st.Keys()
	}
	for _, k := range keys {
		if eps, ok := st.Endpoints[k]; ok {
			st.Endpoints[k] = Topology(eps, t.Node, zone)
		}
	}
	if err := t.Backend.Sync(st, changed, full); err != nil {
		return err
	}
	t.zone, t.synced = zone, true
	return nil
}
