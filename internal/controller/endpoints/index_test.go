package endpoints

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TestServicesSlices: a Service's slices come from the index by namespace and
// service-name label, not from other namespaces' Services of the same name.
func TestServicesSlices(t *testing.T) {
	ix := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{byService: sliceService})
	slice := func(ns, name, svc string) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if svc != "" {
			s.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
		}
		return s
	}
	for _, s := range []*discoveryv1.EndpointSlice{slice("a", "web-1", "web"), slice("a", "web-2", "web"), slice("b", "web-1", "web"),
		slice("a", "db-1", "db"), slice("a", "orphan", "")} {
		if err := ix.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]int{"a/web": 2, "b/web": 1, "a/db": 1, "a/orphan": 0, "c/web": 0} {
		got, err := servicesSlices(ix, key)
		if err != nil || len(got) != want {
			t.Errorf("%s: %d slices, %v; want %d", key, len(got), err, want)
		}
		for _, s := range got {
			if s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName] != key {
				t.Errorf("%s: got %s/%s", key, s.Namespace, s.Name)
			}
		}
	}
}
