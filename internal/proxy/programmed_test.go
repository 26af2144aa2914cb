package proxy

import (
	"errors"
	"maps"
	"net/netip"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// countingReporter keeps the counts a Reporter is told, as internal/drain does.
type countingReporter struct{ counts map[netip.Addr]int }

func (r *countingReporter) Replace(_ string, ready map[netip.Addr]int) { r.counts = maps.Clone(ready) }
func (r *countingReporter) Update(_ string, delta map[netip.Addr]int) {
	for ip, d := range delta {
		if r.counts[ip] += d; r.counts[ip] == 0 {
			delete(r.counts, ip)
		}
	}
}

// failingBackend fails its syncs while fail is set.
type failingBackend struct{ fail bool }

func (b *failingBackend) Name() string { return "fake" }
func (b *failingBackend) Sync(*State, []Key, bool) error {
	if b.fail {
		return errors.New("sync failed")
	}
	return nil
}
func (b *failingBackend) Cleanup() error { return nil }

type checkingBackend struct{ *failingBackend }

func (checkingBackend) Verify() error { return nil }

// terminating marks ip of a slice terminating, as the endpointslice controller does.
func terminating(es *discoveryv1.EndpointSlice, ip string) *discoveryv1.EndpointSlice {
	f, tr := false, true
	for i := range es.Endpoints {
		if es.Endpoints[i].Addresses[0] == ip {
			es.Endpoints[i].Conditions = discoveryv1.EndpointConditions{Ready: &f, Serving: &tr, Terminating: &tr}
		}
	}
	return es
}

func TestProgrammedReportsReadyEndpoints(t *testing.T) {
	tr := NewTracker("n1")
	be := &failingBackend{}
	r := &countingReporter{}
	p := NewProgrammed(be, "proxy", r)
	if _, ok := p.(verifier); ok {
		t.Error("a backend that cannot verify gained Verify through the wrapper")
	}
	if _, ok := NewProgrammed(checkingBackend{be}, "proxy", r).(verifier); !ok {
		t.Error("a backend that can verify lost Verify through the wrapper")
	}
	sync := func(full bool) error {
		st, changed, _ := tr.Apply()
		return p.Sync(st, changed, full)
	}
	ip := netip.MustParseAddr
	want := func(step string, counts map[netip.Addr]int) {
		t.Helper()
		if !maps.Equal(r.counts, counts) {
			t.Errorf("%s: reported %v, want %v", step, r.counts, counts)
		}
	}
	tr.OnService(svc("web", "10.96.0.5", nil), false)
	tr.OnService(svc("api", "10.96.0.6", nil), false)
	tr.OnSlice(slice("web", "web-a", "n1", true, "10.244.0.2", "10.244.0.3"), false)
	tr.OnSlice(slice("api", "api-a", "n1", true, "10.244.0.2"), false)
	if err := sync(true); err != nil {
		t.Fatal(err)
	}
	want("first full sync", map[netip.Addr]int{ip("10.244.0.2"): 2, ip("10.244.0.3"): 1})

	tr.OnSlice(terminating(slice("web", "web-a", "n1", true, "10.244.0.2", "10.244.0.3"), "10.244.0.2"), false)
	if err := sync(false); err != nil {
		t.Fatal(err)
	}
	want("10.244.0.2 terminating in web", map[netip.Addr]int{ip("10.244.0.2"): 1, ip("10.244.0.3"): 1})

	be.fail = true
	tr.OnSlice(terminating(slice("api", "api-a", "n1", true, "10.244.0.2"), "10.244.0.2"), false)
	if err := sync(false); err == nil {
		t.Fatal("the failing sync succeeded")
	}
	want("a failed sync reports nothing", map[netip.Addr]int{ip("10.244.0.2"): 1, ip("10.244.0.3"): 1})

	be.fail = false
	if err := sync(true); err != nil { // the full sync after the error
		t.Fatal(err)
	}
	want("the full sync after the error", map[netip.Addr]int{ip("10.244.0.3"): 1})

	tr.OnService(svc("web", "10.96.0.5", nil), true)
	if err := sync(false); err != nil {
		t.Fatal(err)
	}
	want("web deleted", map[netip.Addr]int{})
}
