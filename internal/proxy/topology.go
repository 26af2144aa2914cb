package proxy

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

var _ Backend = (*TopologyBackend)(nil)

// Sync marks the endpoints of the changed keys (all of them on a full sync or
// a new zone) and hands the state to the backend.
func (t *TopologyBackend) Sync(st *State, changed []Key, full bool) error {
	zone := ""
	if t.Zone != nil {
		zone = t.Zone()
	}
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
