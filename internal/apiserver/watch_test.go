package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/svcnet/svcnet/internal/storage"
)

type event struct {
	Type   string         `json:"type"`
	Object map[string]any `json:"object"`
}

func (e event) meta(k string) string {
	m, _ := e.Object["metadata"].(map[string]any)
	s, _ := m[k].(string)
	return s
}

// watchStream opens a watch and returns a function reading the next event.
func (h *harness) watchStream(path string) func() event {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", h.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		h.t.Fatalf("watch status %d", res.StatusCode)
	}
	events := make(chan event, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
	}()
	return func() event {
		h.t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				h.t.Fatal("watch closed")
			}
			return e
		case <-time.After(5 * time.Second):
			h.t.Fatal("no watch event within 5s")
		}
		return event{}
	}
}

func TestWatchFromResourceVersion(t *testing.T) {
	h := newHarness(t)
	l := h.must(200, h.do("GET", "/api/v1/namespaces/default/services", ""))
	next := h.watchStream("/api/v1/namespaces/default/services?watch=true&resourceVersion=" + l.str("metadata", "resourceVersion"))
	c := h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("web", "a")))
	e := next()
	if e.Type != "ADDED" || e.meta("name") != "web" || e.Object["kind"] != "Service" || e.Object["apiVersion"] != "v1" ||
		e.meta("resourceVersion") != c.str("metadata", "resourceVersion") {
		t.Fatalf("event 1 = %+v", e)
	}
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/services/web", `{"metadata":{"labels":{"v":"2"}}}`, "Content-Type", "application/merge-patch+json"))
	if e := next(); e.Type != "MODIFIED" {
		t.Fatalf("event 2 = %s", e.Type)
	}
	d := h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/web", ""))
	_ = d
	if e := next(); e.Type != "DELETED" || e.meta("name") != "web" {
		t.Fatalf("event 3 = %+v", e)
	}
}

func TestWatchSelectorTransitions(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("web", "a")))
	next := h.watchStream("/api/v1/namespaces/default/services?watch=true&labelSelector=app%3Da")
	if e := next(); e.Type != "ADDED" || e.meta("name") != "web" {
		t.Fatalf("initial event = %+v", e)
	}
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/services/web", `{"metadata":{"labels":{"app":"b"}}}`, "Content-Type", "application/merge-patch+json"))
	if e := next(); e.Type != "DELETED" {
		t.Fatalf("object left the selector: %s", e.Type)
	}
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/services/web", `{"metadata":{"labels":{"app":"a"}}}`, "Content-Type", "application/merge-patch+json"))
	if e := next(); e.Type != "ADDED" {
		t.Fatalf("object entered the selector: %s", e.Type)
	}
}

func TestWatchListInitialEvents(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"name":"a"}}`))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"name":"b"}}`))
	r := h.do("GET", "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "")
	if r.code != 422 {
		t.Fatalf("sendInitialEvents without bookmarks: %d, want 422", r.code)
	}
	next := h.watchStream("/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
	names := []string{next().meta("name"), next().meta("name")}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("initial events %v", names)
	}
	b := next()
	ann, _ := b.Object["metadata"].(map[string]any)["annotations"].(map[string]any)
	if b.Type != "BOOKMARK" || ann[initialEventsEnd] != "true" || b.meta("resourceVersion") == "" {
		t.Fatalf("end bookmark = %+v", b)
	}
	h.must(201, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"name":"c"}}`))
	if e := next(); e.Type != "ADDED" || e.meta("name") != "c" {
		t.Fatalf("after bookmark: %+v", e)
	}
	// A WatchList is a full relist: counted apart from watches that resume.
	want := `apiserver_watch_list_duration_seconds_count{group="",resource="configmaps",scope="namespace",version="v1"} 1`
	if m := h.must(200, h.do("GET", "/metrics", "")); !strings.Contains(m.body, want) {
		t.Errorf("metrics lack %q in\n%s", want, grepLines(m.body, "apiserver_watch_list"))
	}
}

func TestWatchCompactedIsGone(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"name":"a"}}`))
	rev, _ := h.store.Rev(context.Background())
	_ = h.store.Compact(context.Background(), rev)
	next := h.watchStream("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2")
	e := next()
	if e.Type != "ERROR" || e.Object["code"] != float64(410) || e.Object["reason"] != "Expired" {
		t.Fatalf("compacted watch: %+v", e)
	}
}

func TestTableOutput(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", nodePortSvc("np", 31775)))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services",
		`{"metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","selector":{"a":"b"},"ports":[{"port":8080}]}}`))
	accept := "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	r := h.must(200, h.do("GET", "/api/v1/namespaces/default/services", "", "Accept", accept))
	if r.str("kind") != "Table" {
		t.Fatalf("not a table: %s", r.body)
	}
	var tbl struct {
		Columns []struct {
			Name     string `json:"name"`
			Priority int    `json:"priority"`
		} `json:"columnDefinitions"`
		Rows []struct {
			Cells  []any          `json:"cells"`
			Object map[string]any `json:"object"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(r.body), &tbl); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range tbl.Columns {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, ",") != "Name,Type,Cluster-IP,External-IP,Port(s),Age,Selector" || tbl.Columns[6].Priority != 1 {
		t.Fatalf("columns %v", cols)
	}
	rows := map[string][]any{}
	for _, row := range tbl.Rows {
		rows[row.Cells[0].(string)] = row.Cells
		if row.Object["kind"] != "PartialObjectMetadata" {
			t.Fatalf("row object kind %v", row.Object["kind"])
		}
	}
	if rows["np"][4] != "80:31775/TCP" || rows["np"][3] != "<none>" || rows["np"][6] != "app=x" {
		t.Fatalf("NodePort row %v", rows["np"])
	}
	if rows["lb"][3] != "<pending>" || !strings.HasPrefix(rows["lb"][4].(string), "8080:") {
		t.Fatalf("LoadBalancer row %v", rows["lb"])
	}
	if rows["kubernetes"][4] != "443/TCP" || rows["kubernetes"][2] != "10.96.0.1" || rows["kubernetes"][6] != "<none>" {
		t.Fatalf("kubernetes row %v", rows["kubernetes"])
	}
	ep := h.must(200, h.do("GET", "/api/v1/namespaces/default/endpoints/kubernetes", "", "Accept", accept))
	if !strings.Contains(ep.body, `"192.0.2.1:6443"`) {
		t.Fatalf("kubernetes endpoints row: %s", ep.body)
	}
}

func TestWatchBookmarks(t *testing.T) {
	h := newHarness(t)
	l := h.must(200, h.do("GET", "/api/v1/namespaces/default/configmaps", ""))
	next := h.watchStream("/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=" + l.str("metadata", "resourceVersion"))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("elsewhere", "x")))
	h.store.RequestProgress()
	b := next()
	if b.Type != "BOOKMARK" || b.Object["kind"] != "ConfigMap" || b.meta("resourceVersion") == l.str("metadata", "resourceVersion") {
		t.Fatalf("bookmark = %+v (list rv %s)", b, l.str("metadata", "resourceVersion"))
	}
}

// failingWatch is a store whose watches end at once with a storage error.
type failingWatch struct{ storage.Store }

func (failingWatch) Watch(context.Context, string, int64) <-chan storage.Event {
	ch := make(chan storage.Event, 1)
	ch <- storage.Event{Err: errors.New("etcdserver: no leader")}
	close(ch)
	return ch
}

// A watch the server cannot go on with (storage trouble, shutdown) says 429, as
// kube-apiserver does: client-go then watches again from its resourceVersion
// instead of listing everything.
func TestWatchEndsWithRetryLater(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Store = failingWatch{c.Store} })
	e := h.watchStream("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1")()
	if e.Type != "ERROR" || e.Object["code"] != float64(429) || e.Object["reason"] != "TooManyRequests" {
		t.Fatalf("storage watch failure: %+v", e)
	}

	h = newHarness(t)
	shutdown, cancel := context.WithCancel(context.Background())
	cancel()
	srv := httptest.NewUnstartedServer(h.srv)
	srv.Config.BaseContext = func(net.Listener) context.Context { return shutdown }
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("watch while shutting down: %d Retry-After %q, want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
}
