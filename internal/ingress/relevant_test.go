package ingress

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

func TestBackendFilter(t *testing.T) {
	svc := func(ns, name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	slice := func(ns, svcName string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svcName + "-x",
			Labels: map[string]string{discoveryv1.LabelServiceName: svcName}}}
	}
	web := types.NamespacedName{Namespace: "default", Name: "web"}
	var f backendFilter
	if !f.matters(svc("default", "other")) {
		t.Error("before the first sync every change matters")
	}
	f.syncing()
	if f.synced(map[types.NamespacedName]bool{web: true}) {
		t.Error("nothing skipped: no second sync")
	}
	for _, tc := range []struct {
		name string
		o    any
		want bool
	}{
		{"the backend Service", svc("default", "web"), true},
		{"its EndpointSlice", slice("default", "web"), true},
		{"its slice's tombstone", cache.DeletedFinalStateUnknown{Key: "default/web-x", Obj: slice("default", "web")}, true},
		{"a Service of the same name elsewhere", svc("other", "web"), false},
		{"another Service's slice", slice("default", "db"), false},
		{"an Ingress", &struct{}{}, true},
	} {
		if got := f.matters(tc.o); got != tc.want {
			t.Errorf("%s: matters %v, want %v", tc.name, got, tc.want)
		}
	}
	// A change skipped while a sync runs whose table makes its Service a
	// backend (a new route) asks for another sync.
	f.syncing()
	if f.matters(slice("default", "api")) {
		t.Fatal("api is not a backend yet")
	}
	api := types.NamespacedName{Namespace: "default", Name: "api"}
	if !f.synced(map[types.NamespacedName]bool{web: true, api: true}) {
		t.Error("a change of a new backend during the sync: want another sync")
	}
	if !f.matters(svc("default", "api")) {
		t.Error("api is a backend now")
	}
}

func TestReadyIPsOfBackendsOnly(t *testing.T) {
	ready := true
	slice := func(svcName, ip string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}}
	}
	got := readyIPsOf([]*discoveryv1.EndpointSlice{slice("web", "10.244.0.2"), slice("db", "10.244.0.3")},
		map[types.NamespacedName]bool{{Namespace: "default", Name: "web"}: true})
	if len(got) != 1 || got[netip.MustParseAddr("10.244.0.2")] != 1 {
		t.Errorf("ready IPs %v; want only web's 10.244.0.2", got)
	}
	table := &Table{Ports: map[int]*Port{80: {Hosts: map[string]*Host{"": {Routes: []*Route{{Backends: []*Backend{
		{Service: types.NamespacedName{Namespace: "default", Name: "web"}}}}}}}}}}
	if b := backendsOf(table); len(b) != 1 || !b[types.NamespacedName{Namespace: "default", Name: "web"}] {
		t.Errorf("backends %v", b)
	}
}
