package proxy

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// snapshotBackend hands each sync's view (endpoints per key) to a channel.
type snapshotBackend struct{ seen chan map[Key]int }

func (b *snapshotBackend) Name() string   { return "snapshot" }
func (b *snapshotBackend) Cleanup() error { return nil }
func (b *snapshotBackend) Sync(st *State, _ []Key, _ bool) error {
	view := map[Key]int{}
	for k := range st.Services {
		view[k] = len(st.Endpoints[k])
	}
	b.seen <- view
	return nil
}

// TestRunThroughInformers: the informers keep the tracker's converted
// objects (not API objects); adds, a relist's initial state and deletions
// (whose handler gets the cached object) reach the backend.
func TestRunThroughInformers(t *testing.T) {
	client := fake.NewClientset(svcObj("a"), sliceObj("a"), svcObj("b"))
	be := &snapshotBackend{seen: make(chan map[Key]int, 100)}
	p := New(Options{Backend: be, Node: "n1", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan struct{})
	go p.Run(ctx, client, ready)
	a, b := Key{Namespace: "ns", Name: "a"}, Key{Namespace: "ns", Name: "b"}
	await := func(what string, ok func(map[Key]int) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case v := <-be.seen:
				if ok(v) {
					return
				}
			case <-deadline:
				t.Fatalf("no sync with %s", what)
			}
		}
	}
	await("a (1 endpoint) and b (none)", func(v map[Key]int) bool { return len(v) == 2 && v[a] == 1 && v[b] == 0 })
	// An update reaches the tracker through the cached objects.
	two := sliceObj("a")
	two.ResourceVersion = "2"
	two.Endpoints = append(two.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.0.3"}})
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, two, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	await("a's second endpoint", func(v map[Key]int) bool { return v[a] == 2 })
	if err := client.DiscoveryV1().EndpointSlices("ns").Delete(ctx, "a-x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	await("a's slice gone", func(v map[Key]int) bool { _, has := v[a]; return has && v[a] == 0 })
	if err := client.CoreV1().Services("ns").Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	await("b gone", func(v map[Key]int) bool { _, has := v[b]; return !has })
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, sliceObj("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("ns").Create(ctx, svcObj("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	await("b back with its endpoint", func(v map[Key]int) bool { return v[b] == 1 })
}
