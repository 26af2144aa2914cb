package apiserver

import (
	"strings"
	"testing"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

// TestEventsGroup: core Events are also served as events.k8s.io/v1 (kube-proxy
// records its events there), one object in two shapes.
func TestEventsGroup(t *testing.T) {
	h := newHarness(t)
	if r := h.must(200, h.do("GET", "/apis/events.k8s.io/v1", "")); !strings.Contains(r.body, `"name":"events"`) {
		t.Fatalf("discovery of events.k8s.io/v1: %s", r.body)
	}
	if r := h.must(200, h.do("GET", "/apis", "")); !strings.Contains(r.body, `"groupVersion":"events.k8s.io/v1"`) {
		t.Fatalf("/apis lacks events.k8s.io/v1: %s", r.body)
	}
	ev := `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"n1.1"},"eventTime":"2026-11-29T18:00:00.000000Z",
		"reportingController":"kube-proxy","reportingInstance":"kube-proxy-n1","action":"StartKubeProxy","reason":"Starting",
		"regarding":{"kind":"Node","name":"n1"},"note":"hello","type":"Normal","series":{"count":2,"lastObservedTime":"2026-11-29T18:01:00.000000Z"}}`
	r := h.must(201, h.do("POST", "/apis/events.k8s.io/v1/namespaces/default/events", ev))
	if r.str("apiVersion") != "events.k8s.io/v1" || r.str("note") != "hello" {
		t.Fatalf("created: %s", r.body)
	}
	core := h.must(200, h.do("GET", "/api/v1/namespaces/default/events/n1.1", ""))
	for _, c := range []struct{ got, want string }{
		{core.str("apiVersion"), "v1"}, {core.str("message"), "hello"}, {core.str("involvedObject", "name"), "n1"},
		{core.str("reportingComponent"), "kube-proxy"}, {core.str("action"), "StartKubeProxy"}, {core.str("series", "count"), "2"},
	} {
		if c.got != c.want {
			t.Errorf("core Event: got %q, want %q in %s", c.got, c.want, core.body)
		}
	}
	// A core write reads back in the group's shape.
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/events/n1.1", `{"message":"changed"}`, "Content-Type", "application/merge-patch+json"))
	if r := h.must(200, h.do("GET", "/apis/events.k8s.io/v1/namespaces/default/events/n1.1", "")); r.str("note") != "changed" || r.str("regarding", "kind") != "Node" {
		t.Fatalf("events.k8s.io/v1 after a core patch: %s", r.body)
	}
	l := h.must(200, h.do("GET", "/apis/events.k8s.io/v1/events", ""))
	if l.str("kind") != "EventList" || l.str("apiVersion") != "events.k8s.io/v1" || !strings.Contains(l.body, `"note":"changed"`) {
		t.Fatalf("list: %s", l.body)
	}
	// kubectl get events.events.k8s.io: the printer's columns for the other shape.
	tbl := h.must(200, h.do("GET", "/apis/events.k8s.io/v1/namespaces/default/events", "", "Accept", tableAccept))
	if !strings.Contains(tbl.body, `"Starting","node/n1"`) || !strings.Contains(tbl.body, `"changed"`) {
		t.Fatalf("table: %s", tbl.body)
	}
	obj := h.must(200, h.do("GET", "/apis/events.k8s.io/v1/namespaces/default/events/n1.1?includeObject=Object", "", "Accept", tableAccept))
	if !strings.Contains(obj.body, `"object":{"kind":"Event","apiVersion":"events.k8s.io/v1"`) {
		t.Fatalf("table row object not in the requested version: %s", obj.body)
	}
}

// TestLegacyVersionTable: tables of an older version print like the current one.
func TestLegacyVersionTable(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/apis/apps/v1/namespaces/default/deployments", deployJSON("web", 2)))
	tbl := h.must(200, h.do("GET", "/apis/apps/v1beta1/namespaces/default/deployments", "", "Accept", tableAccept))
	if !strings.Contains(tbl.body, `"cells":["web","0/2"`) {
		t.Fatalf("apps/v1beta1 table: %s", tbl.body)
	}
}
