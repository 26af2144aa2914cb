package storage

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Etcd is the Store backed by an etcd v3 cluster (external or embedded).
type Etcd struct {
	c *clientv3.Client
	// ProgressInterval is how often etcd is asked for a progress notification on
	// the watch stream (turned into watch bookmarks). 0 disables it. All watches
	// share one gRPC stream, so one request per interval serves every watch.
	ProgressInterval time.Duration
	progress         sync.Once
}

var _ Store = (*Etcd)(nil)

// NewEtcd wraps an etcd client.
func NewEtcd(c *clientv3.Client) *Etcd { return &Etcd{c: c, ProgressInterval: 30 * time.Second} }

// Client returns the underlying etcd client (benchmarks compare against it).
func (e *Etcd) Client() *clientv3.Client { return e.c }

func mapErr(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrGRPCCompacted):
		return ErrCompacted
	case errors.Is(err, rpctypes.ErrFutureRev) || errors.Is(err, rpctypes.ErrGRPCFutureRev):
		return ErrFutureRev
	}
	return err
}

func toKV(kv interface {
	GetKey() []byte
	GetValue() []byte
	GetModRevision() int64
}) KV {
	return KV{Key: string(kv.GetKey()), Value: kv.GetValue(), Rev: kv.GetModRevision()}
}

// Get implements Store.
func (e *Etcd) Get(ctx context.Context, key string) (KV, error) {
	resp, err := e.c.Get(ctx, key)
	if err != nil {
		return KV{}, mapErr(err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, ErrNotFound
	}
	return toKV(resp.Kvs[0]), nil
}

// List implements Store.
func (e *Etcd) List(ctx context.Context, prefix string, p Page) ([]KV, int64, bool, error) {
	from := prefix
	if p.From != "" {
		from = p.From
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))}
	if p.Rev > 0 {
		opts = append(opts, clientv3.WithRev(p.Rev))
	}
	if p.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(p.Limit))
	}
	resp, err := e.c.Get(ctx, from, opts...)
	if err != nil {
		return nil, 0, false, mapErr(err)
	}
	kvs := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = toKV(kv)
	}
	rev := resp.Header.Revision // the current revision, also when reading an older one
	if p.Rev > 0 {
		rev = p.Rev
	}
	return kvs, rev, resp.More, nil
}

func absent(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
}

func present(key string, rev int64) clientv3.Cmp {
	if rev > 0 {
		return clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	}
	return clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
}

// explain turns a failed transaction's else-gets into the error the caller needs.
// gets[0] is the main key (when checkMain), the rest are claims in order.
func explain(resp *clientv3.TxnResponse, checkMain bool, mainKey string, expectRev int64, claims []Claim) error {
	rs := resp.Responses
	i := 0
	if checkMain {
		kvs := rs[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return ErrNotFound
		}
		if expectRev > 0 && kvs[0].ModRevision != expectRev {
			return ErrConflict
		}
		i = 1
	}
	for j, c := range claims {
		if len(rs[i+j].GetResponseRange().Kvs) > 0 {
			return &ExistsError{Key: c.Key}
		}
	}
	return ErrConflict // raced with another writer; the caller may retry
}

// Create implements Store.
func (e *Etcd) Create(ctx context.Context, key string, value []byte, claims []Claim) (int64, error) {
	all := append([]Claim{{Key: key, Value: value}}, claims...)
	cmps := make([]clientv3.Cmp, 0, len(all))
	puts := make([]clientv3.Op, 0, len(all))
	gets := make([]clientv3.Op, 0, len(all))
	for _, c := range all {
		cmps = append(cmps, absent(c.Key))
		puts = append(puts, clientv3.OpPut(c.Key, string(c.Value)))
		gets = append(gets, clientv3.OpGet(c.Key, clientv3.WithKeysOnly()))
	}
	resp, err := e.c.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
	if err != nil {
		return 0, mapErr(err)
	}
	if !resp.Succeeded {
		return 0, explain(resp, false, "", 0, all)
	}
	return resp.Header.Revision, nil
}

// Update implements Store.
func (e *Etcd) Update(ctx context.Context, key string, value []byte, expectRev int64, claims []Claim, releases []string) (int64, error) {
	cmps := []clientv3.Cmp{present(key, expectRev)}
	ops := []clientv3.Op{clientv3.OpPut(key, string(value))}
	gets := []clientv3.Op{clientv3.OpGet(key)}
	for _, c := range claims {
		cmps = append(cmps, absent(c.Key))
		ops = append(ops, clientv3.OpPut(c.Key, string(c.Value)))
		gets = append(gets, clientv3.OpGet(c.Key, clientv3.WithKeysOnly()))
	}
	for _, r := range releases {
		ops = append(ops, clientv3.OpDelete(r))
	}
	resp, err := e.c.Txn(ctx).If(cmps...).Then(ops...).Else(gets...).Commit()
	if err != nil {
		return 0, mapErr(err)
	}
	if !resp.Succeeded {
		return 0, explain(resp, true, key, expectRev, claims)
	}
	return resp.Header.Revision, nil
}

// Delete implements Store.
func (e *Etcd) Delete(ctx context.Context, key string, expectRev int64, releases []string) (KV, error) {
	ops := []clientv3.Op{clientv3.OpDelete(key, clientv3.WithPrevKV())}
	for _, r := range releases {
		ops = append(ops, clientv3.OpDelete(r))
	}
	resp, err := e.c.Txn(ctx).If(present(key, expectRev)).Then(ops...).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return KV{}, mapErr(err)
	}
	if !resp.Succeeded {
		return KV{}, explain(resp, true, key, expectRev, nil)
	}
	prev := resp.Responses[0].GetResponseDeleteRange().PrevKvs
	if len(prev) == 0 {
		return KV{}, ErrNotFound
	}
	kv := toKV(prev[0])
	kv.Rev = resp.Header.Revision
	return kv, nil
}

// requestProgress asks etcd, every ProgressInterval until the client closes, to
// tell every watch on the shared stream how far it has seen. etcd's client drops a
// notification older than a watch's start revision, so a watch started at the
// current revision + 1 hears nothing until the next write anywhere.
func (e *Etcd) requestProgress() {
	if e.ProgressInterval <= 0 {
		return
	}
	t := time.NewTicker(e.ProgressInterval)
	defer t.Stop()
	// The stream is found by the context's outgoing metadata, which must be what
	// Watch uses (require-leader only); the client context carries other metadata.
	ctx := clientv3.WithRequireLeader(context.Background())
	for {
		select {
		case <-e.c.Ctx().Done():
			return
		case <-t.C:
			if err := e.c.RequestProgress(ctx); err != nil && e.c.Ctx().Err() == nil {
				slog.Debug("etcd progress request failed", "err", err)
			}
		}
	}
}

// Watch implements Store.
func (e *Etcd) Watch(ctx context.Context, prefix string, after int64) <-chan Event {
	e.progress.Do(func() { go e.requestProgress() })
	out := make(chan Event, 100)
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := e.c.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(after+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	go func() {
		defer close(out)
		defer cancel()
		send := func(ev Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case resp, ok := <-wch:
				if !ok {
					if ctx.Err() == nil {
						send(Event{Err: errors.New("storage: watch channel closed")})
					}
					return
				}
				if err := resp.Err(); err != nil {
					send(Event{Err: mapErr(err)})
					return
				}
				if resp.IsProgressNotify() {
					if !send(Event{Type: Progress, KV: KV{Rev: resp.Header.Revision}}) {
						return
					}
					continue
				}
				for _, ev := range resp.Events {
					var out Event
					if ev.Type == clientv3.EventTypeDelete {
						out = Event{Type: Delete, KV: KV{Key: string(ev.Kv.Key), Rev: ev.Kv.ModRevision}}
					} else {
						out = Event{Type: Put, KV: toKV(ev.Kv)}
					}
					if ev.PrevKv != nil {
						p := toKV(ev.PrevKv)
						out.Prev = &p
					}
					if !send(out) {
						return
					}
				}
			}
		}
	}()
	return out
}

// Rev implements Store.
func (e *Etcd) Rev(ctx context.Context) (int64, error) {
	resp, err := e.c.Get(ctx, "\x00svcnet-rev-probe", clientv3.WithCountOnly())
	if err != nil {
		return 0, mapErr(err)
	}
	return resp.Header.Revision, nil
}

// Compact implements Store.
func (e *Etcd) Compact(ctx context.Context, rev int64) error {
	_, err := e.c.Compact(ctx, rev)
	if err != nil && errors.Is(err, rpctypes.ErrCompacted) {
		return nil
	}
	return mapErr(err)
}

// RunCompactor compacts history older than interval, every interval, until ctx ends,
// as kube-apiserver does, so that watches from too old a revision get 410 Gone.
func RunCompactor(ctx context.Context, s Store, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if last > 0 {
			if err := s.Compact(ctx, last); err != nil {
				log.Warn("etcd compaction failed", "rev", last, "err", err)
			} else {
				log.Debug("etcd compacted", "rev", last)
			}
		}
		rev, err := s.Rev(ctx)
		if err == nil {
			last = rev
		}
	}
}
