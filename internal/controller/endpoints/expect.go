package endpoints

import (
	"strconv"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// expectations remember the slices this controller wrote per Service until its
// informer cache shows them, so a sync never acts on a cache that misses its own
// last writes (which would create duplicate slices). Kubernetes' controller keeps
// an EndpointSliceTracker for the same reason.
type expectations struct {
	mu sync.Mutex
	m  map[string]map[string]int64 // service key -> slice name -> revision written (-1 = deleted)
}

func (e *expectations) record(key string, written map[string]int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]map[string]int64{}
	}
	if len(written) == 0 {
		delete(e.m, key)
		return
	}
	e.m[key] = written
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

func rev(s *discoveryv1.EndpointSlice) int64 {
	n, err := strconv.ParseInt(s.ResourceVersion, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// fresh reports whether the cached slices show every write recorded for key.
func (e *expectations) fresh(key string, cached []*discoveryv1.EndpointSlice) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	want := e.m[key]
	if len(want) == 0 {
		return true
	}
	have := map[string]int64{}
	for _, s := range cached {
		have[s.Name] = rev(s)
	}
	for name, r := range want {
		got, ok := have[name]
		switch {
		case r < 0 && ok:
			return false
		case r >= 0 && (!ok || got < r):
			return false
		}
	}
	delete(e.m, key)
	return true
}
