package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/svcnet/svcnet/internal/storage"
)

// initialEventsEnd is the bookmark annotation that ends WatchList's initial events.
const initialEventsEnd = "k8s.io/initial-events-end"

type watchEvent struct {
	Type   watch.EventType `json:"type"`
	Object json.RawMessage `json:"object"`
}

// watcher writes one watch stream.
type watcher struct {
	s  *Server
	q  *request
	m  matcher
	rc *http.ResponseController
}

func (wt *watcher) send(typ watch.EventType, obj runtime.Object) error {
	var v any
	if typ == watch.Error || typ == watch.Bookmark {
		v = obj
	} else {
		out, err := wt.s.output(wt.q, obj)
		if err != nil {
			return err
		}
		v = out
		if wt.q.accept.table {
			tbl, err := wt.s.table(wt.q, []runtime.Object{out}, accessor(obj).GetResourceVersion(), "")
			if err != nil {
				return err
			}
			v = tbl
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	line, err := json.Marshal(watchEvent{Type: typ, Object: raw})
	if err != nil {
		return err
	}
	if _, err := wt.q.w.Write(append(line, '\n')); err != nil {
		return err
	}
	return wt.rc.Flush()
}

func (wt *watcher) bookmark(rev int64, initialEnd bool) error {
	obj, err := wt.s.output(wt.q, wt.q.res.New())
	if err != nil {
		return err
	}
	m := accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{initialEventsEnd: "true"})
	}
	return wt.send(watch.Bookmark, obj)
}

func (s *Server) handleWatch(q *request) error {
	m, err := parseMatcher(q)
	if err != nil {
		return err
	}
	qs := q.r.URL.Query()
	rvStr := qs.Get("resourceVersion")
	bookmarks := qs.Get("allowWatchBookmarks") == "true"
	sendInitial := qs.Get("sendInitialEvents") == "true"
	if sendInitial && !bookmarks {
		return apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "",
			field.ErrorList{field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents requires setting allowWatchBookmarks=true")})
	}
	timeout := time.Duration(1800+rand.IntN(1800)) * time.Second
	if t := qs.Get("timeoutSeconds"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest("invalid timeoutSeconds " + t)
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	start := time.Now()
	s.log.Debug("watch", "resource", q.res.Resource, "namespace", q.ns, "user", q.user.Name, "resourceVersion", rvStr)
	ctx, cancel := context.WithTimeout(q.r.Context(), timeout)
	defer cancel()

	var from int64
	var initial []runtime.Object
	if rvStr == "" || rvStr == "0" || sendInitial {
		s.logRelist(q, true)
		objs, rev, _, err := s.list(q, m, storage.Page{}, 0)
		if err != nil {
			return err
		}
		initial, from = objs, rev
	} else {
		from, err = strconv.ParseInt(rvStr, 10, 64)
		if err != nil {
			return apierrors.NewBadRequest("invalid resourceVersion " + rvStr)
		}
	}
	events := s.store.Watch(ctx, s.listPrefix(q.res, q.ns), from)
	if ctx.Err() != nil { // the server is shutting down: an empty stream would make the client relist
		return retryLater("the apiserver is shutting down")
	}
	open := s.metrics.watches.WithLabelValues(q.res.Group, q.res.Resource)
	open.Inc()
	defer open.Dec()

	q.w.Header().Set("Content-Type", "application/json")
	q.w.Header().Set("Cache-Control", "no-cache, private")
	q.w.WriteHeader(http.StatusOK)
	wt := &watcher{s: s, q: q, m: m, rc: http.NewResponseController(q.w)}
	if err := wt.rc.Flush(); err != nil {
		return nil
	}
	for _, obj := range initial {
		if wt.send(watch.Added, obj) != nil {
			return nil
		}
	}
	if sendInitial {
		if wt.bookmark(from, true) != nil {
			return nil
		}
		scope := "cluster"
		if q.ns != "" {
			scope = "namespace"
		}
		s.metrics.watchList.WithLabelValues(q.res.Group, q.gv.Version, q.res.Resource, scope).Observe(time.Since(start).Seconds())
	}
	for ev := range events {
		if err := wt.deliver(ev, bookmarks); err != nil {
			if !errors.Is(err, errStop) {
				s.log.Debug("watch ended", "resource", q.res.Resource, "err", err)
			}
			return nil
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) { // shutdown (or the client left: then nobody reads this)
		wt.fail(retryLater("the apiserver is shutting down"))
	}
	return nil
}

// retryLater is Kubernetes' answer while it cannot serve for a moment (429 with
// Retry-After): client-go's reflector then watches again from its resourceVersion
// after a back-off, where an empty or failed watch would make it list everything.
func retryLater(why string) *apierrors.StatusError {
	return apierrors.NewTooManyRequests(why+", please try again later", 1)
}

// fail ends the stream with an ERROR event carrying st.
func (wt *watcher) fail(st *apierrors.StatusError) {
	status := st.Status()
	status.Kind, status.APIVersion = "Status", "v1"
	_ = wt.send(watch.Error, &status)
}

var errStop = errors.New("watch stopped")

// logRelist records who reads a whole collection (a list, or a watch that starts
// with every object): the load an outage's end must not multiply.
func (s *Server) logRelist(q *request, watch bool) {
	s.log.Debug("full list", "resource", q.res.Resource, "namespace", q.ns, "user", q.user.Name, "watch", watch)
}

func (wt *watcher) deliver(ev storage.Event, bookmarks bool) error {
	res := wt.q.res
	if ev.Err != nil {
		if errors.Is(ev.Err, storage.ErrCompacted) {
			wt.fail(apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %s", wt.q.r.URL.Query().Get("resourceVersion"))))
		} else { // etcd unreachable, leaderless or closing: the history is still there
			wt.fail(retryLater("storage watch ended: " + ev.Err.Error()))
		}
		return errStop
	}
	switch ev.Type {
	case storage.Progress:
		if bookmarks {
			return wt.bookmark(ev.KV.Rev, false)
		}
		return nil
	case storage.Delete:
		if ev.Prev == nil {
			return nil
		}
		prev, err := decodeStored(res, *ev.Prev)
		if err != nil {
			return err
		}
		accessor(prev).SetResourceVersion(strconv.FormatInt(ev.KV.Rev, 10))
		if wt.m.matches(prev) {
			return wt.send(watch.Deleted, prev)
		}
		return nil
	}
	cur, err := decodeStored(res, ev.KV)
	if err != nil {
		return err
	}
	curOK, prevOK := wt.m.matches(cur), false
	if ev.Prev != nil {
		prev, err := decodeStored(res, *ev.Prev)
		if err != nil {
			return err
		}
		prevOK = wt.m.matches(prev)
	}
	switch {
	case curOK && ev.Prev != nil && prevOK:
		return wt.send(watch.Modified, cur)
	case curOK:
		return wt.send(watch.Added, cur)
	case prevOK:
		return wt.send(watch.Deleted, cur)
	}
	return nil
}
