package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The revision contract, run against every Store: reads at a past revision see
// the data as it was, paging stays at the first page's revision while writes
// happen between pages, watches replay from a revision, and revisions outside
// the kept history fail as etcd fails them.

// put writes key=value (creating or updating it) and returns the new revision.
func put(t *testing.T, s Store, key, value string) int64 {
	t.Helper()
	ctx := context.Background()
	rev, err := s.Update(ctx, key, []byte(value), 0, nil, nil)
	if errors.Is(err, ErrNotFound) {
		rev, err = s.Create(ctx, key, []byte(value), nil)
	}
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return rev
}

// listed renders kvs as key=value@rev lines.
func listed(kvs []KV) string {
	out := ""
	for _, kv := range kvs {
		out += fmt.Sprintf("%s=%s@%d ", kv.Key, kv.Value, kv.Rev)
	}
	return out
}

func TestListAtRevision(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a1 := put(t, s, "/r/a", "1")
			b1 := put(t, s, "/r/b", "1")
			put(t, s, "/other", "x") // outside the prefix
			then, _ := s.Rev(ctx)
			a2 := put(t, s, "/r/a", "2")
			if _, err := s.Delete(ctx, "/r/b", 0, nil); err != nil {
				t.Fatal(err)
			}
			c1 := put(t, s, "/r/c", "1")
			now, _ := s.Rev(ctx)

			for _, tt := range []struct {
				rev     int64
				want    string
				wantRev int64
			}{
				{then, fmt.Sprintf("/r/a=1@%d /r/b=1@%d ", a1, b1), then},
				{a2, fmt.Sprintf("/r/a=2@%d /r/b=1@%d ", a2, b1), a2},
				{now, fmt.Sprintf("/r/a=2@%d /r/c=1@%d ", a2, c1), now},
				{0, fmt.Sprintf("/r/a=2@%d /r/c=1@%d ", a2, c1), now},
				{a1 - 1, "", a1 - 1},
			} {
				kvs, rev, more, err := s.List(ctx, "/r/", Page{Rev: tt.rev})
				if err != nil || listed(kvs) != tt.want || rev != tt.wantRev || more {
					t.Errorf("list at %d = %q rev %d more %v err %v; want %q rev %d", tt.rev, listed(kvs), rev, more, err, tt.want, tt.wantRev)
				}
			}
			// A page of an old revision starts at From and is cut by Limit there.
			kvs, rev, more, err := s.List(ctx, "/r/", Page{Rev: then, From: "/r/a\x00", Limit: 1})
			if err != nil || listed(kvs) != fmt.Sprintf("/r/b=1@%d ", b1) || rev != then || more {
				t.Errorf("page at %d from /r/b = %q rev %d more %v err %v", then, listed(kvs), rev, more, err)
			}
			kvs, _, more, err = s.List(ctx, "/r/", Page{Rev: then, Limit: 1})
			if err != nil || len(kvs) != 1 || !more {
				t.Errorf("first page of 1 at %d = %q more %v err %v; want one key and more", then, listed(kvs), more, err)
			}

			if _, _, _, err := s.List(ctx, "/r/", Page{Rev: now + 1}); !errors.Is(err, ErrFutureRev) {
				t.Errorf("list at a future revision: want ErrFutureRev, got %v", err)
			}
			if err := s.Compact(ctx, a2); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := s.List(ctx, "/r/", Page{Rev: a2 - 1}); !errors.Is(err, ErrCompacted) {
				t.Errorf("list below the compacted revision: want ErrCompacted, got %v", err)
			}
			if kvs, _, _, err := s.List(ctx, "/r/", Page{Rev: a2}); err != nil || listed(kvs) != fmt.Sprintf("/r/a=2@%d /r/b=1@%d ", a2, b1) {
				t.Errorf("list at the compacted revision itself = %q, %v", listed(kvs), err)
			}
		})
	}
}

// TestPagingAcrossWrites pages through a list the way the API server's continue
// tokens do (the revision of the first page, then From after the last key),
// with writes to every part of the range between pages.
func TestPagingAcrossWrites(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			want := ""
			for i := range 7 {
				k := fmt.Sprintf("/p/%02d", i)
				rev := put(t, s, k, "v")
				want += fmt.Sprintf("%s=v@%d ", k, rev)
			}
			var got string
			var pageRev int64
			from := ""
			for page := 0; ; page++ {
				kvs, rev, more, err := s.List(ctx, "/p/", Page{Rev: pageRev, From: from, Limit: 3})
				if err != nil {
					t.Fatalf("page %d: %v", page, err)
				}
				if page == 0 {
					pageRev = rev
				} else if rev != pageRev {
					t.Errorf("page %d read at revision %d, want the first page's %d", page, rev, pageRev)
				}
				got += listed(kvs)
				if !more {
					break
				}
				from = kvs[len(kvs)-1].Key + "\x00"
				// Between pages: change a key already listed, one not yet listed,
				// delete one not yet listed, add one at the end and one in the middle.
				put(t, s, "/p/00", "changed")
				put(t, s, fmt.Sprintf("/p/%02d", 3*page+4), "changed")
				if _, err := s.Delete(ctx, fmt.Sprintf("/p/%02d", 3*page+5), 0, nil); err != nil && !errors.Is(err, ErrNotFound) {
					t.Fatal(err)
				}
				put(t, s, fmt.Sprintf("/p/%02d-new", 3*page+3), "new")
				put(t, s, "/p/99", "new")
			}
			if got != want {
				t.Errorf("paged list across writes =\n%s\nwant the first page's snapshot\n%s", got, want)
			}
		})
	}
}

func TestWatchFromRevision(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r1 := put(t, s, "/w/a", "1")
			r2 := put(t, s, "/w/a", "2")
			put(t, s, "/elsewhere", "x")
			if _, err := s.Delete(ctx, "/w/a", 0, nil); err != nil {
				t.Fatal(err)
			}
			r4 := put(t, s, "/w/b", "1")

			// From r1: the update, the delete and the create, each with its previous value.
			w := s.Watch(ctx, "/w/", r1)
			for i, want := range []string{
				fmt.Sprintf("PUT /w/a=2@%d prev 1", r2),
				"DELETE /w/a prev 2",
				fmt.Sprintf("PUT /w/b=1@%d prev -", r4),
			} {
				ev := next(t, w)
				prev := "-"
				if ev.Prev != nil {
					prev = string(ev.Prev.Value)
				}
				got := fmt.Sprintf("%s %s=%s@%d prev %s", ev.Type, ev.KV.Key, ev.KV.Value, ev.KV.Rev, prev)
				if ev.Type == Delete {
					got = fmt.Sprintf("%s %s prev %s", ev.Type, ev.KV.Key, prev)
				}
				if got != want {
					t.Errorf("event %d = %s, want %s", i, got, want)
				}
			}
			// From the current revision: only what happens next.
			now, _ := s.Rev(ctx)
			w = s.Watch(ctx, "/w/", now)
			r5 := put(t, s, "/w/c", "1")
			if ev := next(t, w); ev.KV.Key != "/w/c" || ev.KV.Rev != r5 {
				t.Errorf("watch from now: first event %+v, want /w/c@%d", ev, r5)
			}
			// Compaction at r4 keeps r4 itself: a watch after r4-1 still works, one
			// from further back fails.
			if err := s.Compact(ctx, r4); err != nil {
				t.Fatal(err)
			}
			if ev := next(t, s.Watch(ctx, "/w/", r4-1)); ev.Err != nil || ev.KV.Key != "/w/b" {
				t.Errorf("watch after r4-1 once compacted at r4: %+v, want PUT /w/b", ev)
			}
			select {
			case ev := <-s.Watch(ctx, "/w/", r4-2):
				if !errors.Is(ev.Err, ErrCompacted) {
					t.Errorf("watch after r4-2 once compacted at r4: %+v, want ErrCompacted", ev)
				}
			case <-time.After(5 * time.Second):
				t.Error("watch from a compacted revision neither failed nor closed within 5s")
			}
		})
	}
}
