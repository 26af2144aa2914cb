package proxy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// ep parses "ip[@node][ z=zone,zone][ n=node,node][ notready][ terminating]".
func ep(s string) Endpoint {
	f := strings.Fields(s)
	addr, node, _ := strings.Cut(f[0], "@")
	e := Endpoint{Addr: netip.AddrPortFrom(netip.MustParseAddr(addr), 80), Ready: true, Serving: true, Node: node, Local: node == "n1"}
	for _, x := range f[1:] {
		switch {
		case strings.HasPrefix(x, "z="):
			e.ZoneHints = strings.Split(x[2:], ",")
		case strings.HasPrefix(x, "n="):
			e.NodeHints = strings.Split(x[2:], ",")
		case x == "notready":
			e.Ready, e.Serving = false, false
		case x == "terminating":
			e.Ready, e.Terminating = false, true
		}
	}
	return e
}

func addrs(eps []Endpoint) string {
	var s []string
	for _, e := range eps {
		s = append(s, e.Addr.Addr().String())
	}
	return strings.Join(s, " ")
}

// TestTopology follows kube-proxy's topology.go: cluster traffic of node n1 in
// zone a goes to the endpoints hinted for its node (PreferSameNode) or zone
// (PreferSameZone / PreferClose) when every ready endpoint has such hints and
// one names this node or zone; else to all. Local traffic ignores hints.
func TestTopology(t *testing.T) {
	for _, c := range []struct {
		name      string
		zone      string
		eps       []string
		mode      string
		cluster   string
		localOnly string
	}{
		{"no hints", "a", []string{"10.0.0.1@n1", "10.0.0.2@n2"}, "", "10.0.0.1 10.0.0.2", "10.0.0.1"},
		{"zone hints, some in zone", "a", []string{"10.0.0.1@n2 z=a", "10.0.0.2@n3 z=b", "10.0.0.3@n4 z=a"}, "PreferSameZone", "10.0.0.1 10.0.0.3", ""},
		{"zone hints, none in zone: fall back", "c", []string{"10.0.0.1@n2 z=a", "10.0.0.2@n3 z=b"}, "", "10.0.0.1 10.0.0.2", ""},
		{"one ready endpoint without hints: all", "a", []string{"10.0.0.1@n2 z=a", "10.0.0.2@n3"}, "", "10.0.0.1 10.0.0.2", ""},
		{"a not-ready endpoint without hints does not count", "a", []string{"10.0.0.1@n2 z=a", "10.0.0.2@n3 z=b", "10.0.0.3@n3 notready"}, "PreferSameZone", "10.0.0.1", ""},
		{"node without a zone label: all", "", []string{"10.0.0.1@n2 z=a", "10.0.0.2@n3 z=b"}, "", "10.0.0.1 10.0.0.2", ""},
		{"node hints naming this node", "a", []string{"10.0.0.1@n1 z=a n=n1", "10.0.0.2@n2 z=a n=n2", "10.0.0.3@n3 z=b n=n3"}, "PreferSameNode", "10.0.0.1", "10.0.0.1"},
		{"node hints, none for this node: zone", "a", []string{"10.0.0.2@n2 z=a n=n2", "10.0.0.3@n3 z=b n=n3"}, "PreferSameZone", "10.0.0.2", ""},
		{"local endpoint hinted elsewhere stays local", "a", []string{"10.0.0.1@n1 z=b", "10.0.0.2@n2 z=a"}, "PreferSameZone", "10.0.0.2", "10.0.0.1"},
		{"only terminating endpoints: all of them", "a", []string{"10.0.0.1@n2 z=a terminating", "10.0.0.2@n3 z=b terminating"}, "", "10.0.0.1 10.0.0.2", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var eps []Endpoint
			for _, s := range c.eps {
				eps = append(eps, ep(s))
			}
			if got := TopologyMode(eps, "n1", c.zone); got != c.mode {
				t.Errorf("mode %q, want %q", got, c.mode)
			}
			marked := Topology(eps, "n1", c.zone)
			if got := addrs(Usable(marked, false)); got != c.cluster {
				t.Errorf("cluster endpoints %q, want %q", got, c.cluster)
			}
			if got := addrs(Usable(marked, true)); got != c.localOnly {
				t.Errorf("local endpoints %q, want %q", got, c.localOnly)
			}
			for _, e := range eps {
				if e.Far {
					t.Errorf("Topology changed its input: %v Far", e)
				}
			}
		})
	}
}

func TestSliceEndpointsHints(t *testing.T) {
	es := slice("web", "web-1", "n2", true, "10.0.0.1")
	es.Endpoints[0].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "a"}}, ForNodes: []discoveryv1.ForNode{{Name: "n2"}}}
	got := SliceEndpoints(es, "n1")
	for _, eps := range got {
		if len(eps) != 1 || fmt.Sprint(eps[0].ZoneHints, eps[0].NodeHints) != "[a] [n2]" {
			t.Errorf("hints %+v", eps)
		}
	}
}

// fakeBackend records what it was asked to sync.
type fakeBackend struct {
	calls []string
}

func (f *fakeBackend) Name() string   { return "fake" }
func (f *fakeBackend) Cleanup() error { return nil }
func (f *fakeBackend) Sync(st *State, changed []Key, full bool) error {
	var s []string
	for _, k := range st.Keys() {
		s = append(s, k.String()+"="+addrs(Usable(st.Endpoints[k], false)))
	}
	f.calls = append(f.calls, fmt.Sprintf("full=%v %s", full, strings.Join(s, ";")))
	return nil
}

// TestTopologyBackend: the backend sees the state with topology applied; a
// change of the node's zone turns the next sync into a full one with every key
// marked again.
func TestTopologyBackend(t *testing.T) {
	tr := NewTracker("n1")
	tr.OnService(svc("web", "10.96.0.5", nil), false)
	es := slice("web", "web-1", "", true, "10.0.0.1", "10.0.0.2")
	for i, z := range []string{"a", "b"} {
		es.Endpoints[i].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: z}}}
	}
	tr.OnSlice(es, false)
	zone := "a"
	fb := &fakeBackend{}
	b := &TopologyBackend{Backend: fb, Node: "n1", Zone: func() string { return zone }}
	sync := func(full bool) {
		st, changed, _ := tr.Apply()
		if err := b.Sync(st, changed, full); err != nil {
			t.Fatal(err)
		}
	}
	sync(true)
	sync(false) // nothing changed, zone the same
	zone = "b"
	sync(false)
	zone = "c" // no endpoint for zone c: all
	sync(false)
	want := []string{"full=true ns/web:http=10.0.0.1", "full=false ns/web:http=10.0.0.1",
		"full=true ns/web:http=10.0.0.2", "full=true ns/web:http=10.0.0.1 10.0.0.2"}
	if fmt.Sprint(fb.calls) != fmt.Sprint(want) {
		t.Errorf("syncs\n%q\nwant\n%q", fb.calls, want)
	}
}

// TestNewTopologyVerify: the wrapper keeps a backend's Verify, and reports a
// new zone of the node as drift until a sync follows it.
func TestNewTopologyVerify(t *testing.T) {
	if _, ok := NewTopology(&loopBackend{}, "n1", nil).(Verifier); ok {
		t.Errorf("a backend without Verify became a Verifier")
	}
	zone := "a"
	be := NewTopology(verifyingBackend{&loopBackend{}}, "n1", func() string { return zone })
	v, ok := be.(Verifier)
	if !ok {
		t.Fatalf("the wrapper hides the backend's Verify")
	}
	if err := be.Sync(NewState(), nil, true); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(); err != nil {
		t.Errorf("Verify after a sync: %v", err)
	}
	zone = "b"
	if err := v.Verify(); err == nil || !strings.Contains(err.Error(), `zone is "b"`) {
		t.Errorf("Verify after a zone change: %v", err)
	}
	if err := be.Sync(NewState(), nil, false); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(); err != nil {
		t.Errorf("Verify after the sync that followed the zone: %v", err)
	}
}
