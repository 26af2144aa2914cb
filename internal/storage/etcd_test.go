package storage

import (
	"context"
	"log/slog"
	"testing"
)

// A watch from a revision seen before etcd restarted gets every change since, not
// ErrCompacted: clients resume where they were instead of relisting.
func TestEtcdWatchResumesAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	e, err := StartEmbedded(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	st := NewEtcd(e.Client)
	seen, err := st.Create(ctx, "/r/a", []byte("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, "/r/b", []byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	e.Close()

	e, err = StartEmbedded(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st = NewEtcd(e.Client)
	if _, err := st.Create(ctx, "/r/c", []byte("c"), nil); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := st.Watch(wctx, "/r/", seen)
	for _, want := range []string{"/r/b", "/r/c"} {
		ev := next(t, ch)
		if ev.Err != nil || ev.Type != Put || ev.KV.Key != want {
			t.Fatalf("after restart, watch from %d: %+v, want PUT %s", seen, ev, want)
		}
	}
}
