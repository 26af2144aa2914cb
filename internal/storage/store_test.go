package storage

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// stores returns every Store implementation, each fresh.
func stores(t *testing.T) map[string]Store {
	t.Helper()
	ctx := context.Background()
	e, err := StartEmbedded(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	et := NewEtcd(e.Client)
	et.ProgressInterval = 200 * time.Millisecond
	return map[string]Store{"memory": NewMemory(), "etcd": et}
}

func next(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch closed")
			}
			if ev.Type == Progress {
				continue
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no watch event within 5s")
		}
	}
}

func TestStoreContract(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			start, err := s.Rev(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w := s.Watch(ctx, "/a/", start)

			rev, err := s.Create(ctx, "/a/1", []byte("one"), []Claim{{Key: "/claims/x", Value: []byte("1")}})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if _, err := s.Create(ctx, "/a/1", []byte("again"), nil); err == nil {
				t.Fatal("second create of /a/1 succeeded")
			} else if k, ok := IsExists(err); !ok || k != "/a/1" {
				t.Fatalf("second create: want ExistsError for /a/1, got %v", err)
			}
			if _, err := s.Create(ctx, "/a/2", []byte("two"), []Claim{{Key: "/claims/x"}}); err == nil {
				t.Fatal("create with a taken claim succeeded")
			} else if k, _ := IsExists(err); k != "/claims/x" {
				t.Fatalf("taken claim: want ExistsError naming /claims/x, got %v", err)
			}
			if _, err := s.Get(ctx, "/a/2"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("failed create left /a/2 behind: %v", err)
			}
			kv, err := s.Get(ctx, "/a/1")
			if err != nil || string(kv.Value) != "one" || kv.Rev != rev {
				t.Fatalf("get = %+v, %v; want one@%d", kv, err, rev)
			}
			if _, err := s.Update(ctx, "/a/1", []byte("stale"), rev-1, nil, nil); !errors.Is(err, ErrConflict) {
				t.Fatalf("stale update: want ErrConflict, got %v", err)
			}
			rev2, err := s.Update(ctx, "/a/1", []byte("uno"), rev, []Claim{{Key: "/claims/y"}}, []string{"/claims/x"})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if _, err := s.Get(ctx, "/claims/x"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("released claim still there: %v", err)
			}
			if _, err := s.Update(ctx, "/a/missing", []byte("x"), 0, nil, nil); !errors.Is(err, ErrNotFound) {
				t.Fatalf("update of missing key: want ErrNotFound, got %v", err)
			}
			for i := 3; i <= 5; i++ {
				if _, err := s.Create(ctx, "/a/"+string(rune('0'+i)), []byte("v"), nil); err != nil {
					t.Fatal(err)
				}
			}
			kvs, _, more, err := s.List(ctx, "/a/", Page{Limit: 2})
			if err != nil || len(kvs) != 2 || !more || kvs[0].Key != "/a/1" {
				t.Fatalf("list page 1 = %v more=%v err=%v", kvs, more, err)
			}
			kvs, _, more, err = s.List(ctx, "/a/", Page{From: kvs[1].Key + "\x00", Limit: 10})
			if err != nil || len(kvs) != 2 || more {
				t.Fatalf("list page 2 = %v more=%v err=%v", kvs, more, err)
			}
			if _, err := s.Delete(ctx, "/a/1", rev, nil); !errors.Is(err, ErrConflict) {
				t.Fatalf("stale delete: want ErrConflict, got %v", err)
			}
			last, err := s.Delete(ctx, "/a/1", rev2, []string{"/claims/y"})
			if err != nil || string(last.Value) != "uno" {
				t.Fatalf("delete = %+v, %v", last, err)
			}

			ev := next(t, w)
			if ev.Type != Put || ev.KV.Key != "/a/1" || ev.Prev != nil {
				t.Fatalf("event 1 = %+v, want PUT /a/1 without prev", ev)
			}
			ev = next(t, w)
			if ev.Type != Put || string(ev.KV.Value) != "uno" || ev.Prev == nil || string(ev.Prev.Value) != "one" {
				t.Fatalf("event 2 = %+v, want PUT uno with prev one", ev)
			}
			for i := 0; i < 3; i++ {
				next(t, w)
			}
			ev = next(t, w)
			if ev.Type != Delete || ev.Prev == nil || string(ev.Prev.Value) != "uno" {
				t.Fatalf("event 6 = %+v, want DELETE with prev uno", ev)
			}

			// A watch from a compacted revision fails with ErrCompacted.
			cur, _ := s.Rev(ctx)
			if err := s.Compact(ctx, cur); err != nil {
				t.Fatalf("compact: %v", err)
			}
			old := s.Watch(ctx, "/a/", start)
			select {
			case ev := <-old:
				if !errors.Is(ev.Err, ErrCompacted) {
					t.Fatalf("watch from compacted rev: want ErrCompacted, got %+v", ev)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("watch from compacted revision did not fail")
			}
		})
	}
}

func TestEtcdProgressBecomesEvents(t *testing.T) {
	s := stores(t)["etcd"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rev, _ := s.Rev(ctx)
	w1, w2 := s.Watch(ctx, "/idle1/", rev), s.Watch(ctx, "/idle2/", rev)
	// One write elsewhere brings the store past the watches' start revision.
	if _, err := s.Create(ctx, "/elsewhere", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	for _, w := range []<-chan Event{w1, w2} {
		select {
		case ev := <-w:
			if ev.Type != Progress || ev.KV.Rev < rev {
				t.Fatalf("idle watch got %+v, want a progress event", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no progress event on an idle watch within 5s")
		}
	}
}
