package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/topology"
)

const (
	// uiMinInterval coalesces bursts of changes: a viewer gets at most four
	// snapshots a second however fast objects change.
	uiMinInterval = 250 * time.Millisecond
	// uiHeartbeat keeps idle event streams open through proxies.
	uiHeartbeat = 30 * time.Second
	// uiRetry is how long the event stream waits after a failed list.
	uiRetry = time.Second
)

// uiResources are what the topology page shows; a viewer must be allowed to
// list each of them cluster-wide.
var uiResources = []struct{ group, resource string }{
	{"", "namespaces"}, {"", "services"}, {discoveryv1.GroupName, "endpointslices"}, {"", "pods"}, {"", "nodes"},
}

// serveUI serves the live topology page under /ui/ and its event stream
// /ui/events, for users allowed to list every resource the page shows.
func (s *Server) serveUI(w http.ResponseWriter, r *http.Request, user *auth.User) {
	for _, res := range uiResources {
		a := auth.Attributes{User: user, Verb: "list", APIGroup: res.group, Resource: res.resource}
		if ok, reason := s.authorize(a); !ok {
			writeError(w, forbidden(a, reason))
			return
		}
	}
	switch p := r.URL.Path; {
	case p == "/ui":
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	case p == "/ui/" || p == "/ui/index.html":
		s.serveUIIndex(w, r)
	case p == "/ui/events":
		s.serveUIEvents(w, r)
	default:
		sub, _ := fs.Sub(topology.Assets, "web")
		http.StripPrefix("/ui/", http.FileServerFS(sub)).ServeHTTP(w, r)
	}
}

// serveUIIndex sends the page with the current snapshot inlined, so it draws
// before the event stream connects.
func (s *Server) serveUIIndex(w http.ResponseWriter, r *http.Request) {
	page, err := topology.Assets.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if g, _, err := s.topologySnapshot(r.Context()); err == nil {
		if data, err := json.Marshal(g); err == nil { // json escapes <, > and & so it cannot close the script
			page = bytes.Replace(page, []byte("/*SNAPSHOT*/"), data, 1)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}

// serveUIEvents streams snapshots as Server-Sent Events: one at once, then a
// new one after objects change (at most one per uiMinInterval), until the
// client goes away.
func (s *Server) serveUIEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	ctx := r.Context()
	heartbeat := time.NewTicker(uiHeartbeat)
	defer heartbeat.Stop()
	var last []byte
	for ctx.Err() == nil {
		g, rev, err := s.topologySnapshot(ctx)
		if err != nil {
			s.log.Debug("topology snapshot", "err", err)
			if !sleepCtx(ctx, uiRetry) {
				return
			}
			continue
		}
		data, _ := json.Marshal(g)
		if !bytes.Equal(data, last) {
			if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", data); err != nil {
				return
			}
			flusher.Flush()
			last = data
		}
		if !s.waitTopologyChange(ctx, rev, heartbeat.C, func() bool {
			_, err := fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
			return err == nil
		}) {
			return
		}
		if !sleepCtx(ctx, uiMinInterval) {
			return
		}
	}
}

// waitTopologyChange watches the page's resources after rev and returns true at
// the first change (or when a watch ends, so the caller relists), false when
// ctx ends or a heartbeat cannot be written.
func (s *Server) waitTopologyChange(ctx context.Context, rev int64, beat <-chan time.Time, keepalive func() bool) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	for _, res := range uiResources {
		ch := s.store.Watch(wctx, s.listPrefix(s.res(res.group, res.resource), ""), rev)
		go func() {
			<-ch
			select { // an event, or the end of the watch: either way relist
			case changed <- struct{}{}:
			default:
			}
			for range ch { // drain until the watch closes
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-changed:
			return true
		case <-beat:
			if !keepalive() {
				return false
			}
		}
	}
}

// topologySnapshot lists the page's resources at one revision and builds the graph.
func (s *Server) topologySnapshot(ctx context.Context) (topology.Graph, int64, error) {
	var (
		rev  int64
		ns   []*corev1.Namespace
		svcs []*corev1.Service
		eps  []*discoveryv1.EndpointSlice
		pods []*corev1.Pod
		node []*corev1.Node
	)
	for _, r := range uiResources {
		res := s.res(r.group, r.resource)
		kvs, at, err := listAll(ctx, s.store, s.listPrefix(res, ""), rev)
		if err != nil {
			return topology.Graph{}, 0, err
		}
		rev = at
		for _, kv := range kvs {
			obj, err := decodeStored(res, kv)
			if err != nil {
				continue
			}
			switch o := obj.(type) {
			case *corev1.Namespace:
				ns = append(ns, o)
			case *corev1.Service:
				svcs = append(svcs, o)
			case *discoveryv1.EndpointSlice:
				eps = append(eps, o)
			case *corev1.Pod:
				pods = append(pods, o)
			case *corev1.Node:
				node = append(node, o)
			}
		}
	}
	return topology.Build(ns, svcs, eps, pods, node), rev, nil
}

// isUIPath reports whether path (without its trailing slash) is the topology page's.
func isUIPath(path string) bool { return path == "/ui" || strings.HasPrefix(path, "/ui/") }

// sleepCtx waits d or until ctx ends, reporting whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
