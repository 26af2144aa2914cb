package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/svcnet/svcnet/internal/topology"
)

// nextSnapshot reads the event stream up to the next snapshot event.
func nextSnapshot(t *testing.T, sc *bufio.Scanner) topology.Graph {
	t.Helper()
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "snapshot":
			var g topology.Graph
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &g); err != nil {
				t.Fatal(err)
			}
			return g
		}
	}
	t.Fatalf("event stream ended: %v", sc.Err())
	return topology.Graph{}
}

func hasService(g topology.Graph, ns, name string) bool {
	for _, s := range g.Services {
		if s.Namespace == ns && s.Name == name {
			return true
		}
	}
	return false
}

func TestUIEvents(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.http.URL+"/ui/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 16<<20)
	g := nextSnapshot(t, sc)
	if !hasService(g, "default", "kubernetes") || hasService(g, "default", "web") {
		t.Fatalf("initial snapshot: %+v", g.Services)
	}
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("web", "a")))
	for !hasService(g, "default", "web") { // bounded by ctx: the read fails when it ends
		g = nextSnapshot(t, sc)
	}
}

func TestUIPageAndAccess(t *testing.T) {
	h := newHarness(t)
	page := h.must(200, h.do("GET", "/ui/", ""))
	if !strings.Contains(page.body, `"name":"kubernetes"`) || !strings.Contains(page.body, `<script src="app.js">`) {
		t.Fatalf("page lacks the inlined snapshot: %.300s", page.body)
	}
	if js := h.must(200, h.do("GET", "/ui/app.js", "")); !strings.Contains(js.header.Get("Content-Type"), "javascript") {
		t.Fatalf("app.js content type %q", js.header.Get("Content-Type"))
	}
	h.must(401, h.do("GET", "/ui/", "", "Authorization", "Bearer wrong"))
	h.must(404, h.do("GET", "/ui/nothing.css", ""))
	// A user who may not list the page's resources may not see it.
	if r := h.do("GET", "/ui/", "", "Impersonate-User", "nobody"); r.code != 403 || !strings.Contains(r.str("message"), "cannot list resource") {
		t.Fatalf("nobody: %d %s", r.code, r.body)
	}
}
