package storage

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Memory is an in-memory Store for tests: same semantics as Etcd, no persistence.
type Memory struct {
	mu        sync.Mutex
	rev       int64
	compacted int64
	data      map[string]KV
	history   []Event // every change, in revision order, for watches from the past
	subs      map[chan struct{}]struct{}
	progress  int64 // bumped by RequestProgress
}

// RequestProgress makes every watch report a Progress event at the current
// revision, as etcd's progress notifications do.
func (m *Memory) RequestProgress() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.progress++
	m.notify()
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store at revision 1.
func NewMemory() *Memory {
	return &Memory{rev: 1, data: map[string]KV{}, subs: map[chan struct{}]struct{}{}}
}

func (m *Memory) notify() {
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) (KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kv, ok := m.data[key]
	if !ok {
		return KV{}, ErrNotFound
	}
	return kv, nil
}

// List implements Store. A read at an older revision undoes the history after
// it, so it sees what etcd would; revisions before the compacted one or after
// the current one fail as in etcd.
func (m *Memory) List(_ context.Context, prefix string, p Page) ([]KV, int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rev := m.rev
	switch {
	case p.Rev > m.rev:
		return nil, 0, false, ErrFutureRev
	case p.Rev > 0 && p.Rev < m.compacted:
		return nil, 0, false, ErrCompacted
	case p.Rev > 0:
		rev = p.Rev
	}
	in := func(k string) bool { return strings.HasPrefix(k, prefix) && k >= p.From }
	view := map[string]KV{}
	for k, kv := range m.data {
		if in(k) {
			view[k] = kv
		}
	}
	for i := len(m.history) - 1; i >= 0 && m.history[i].KV.Rev > rev; i-- {
		ev := m.history[i]
		switch {
		case !in(ev.KV.Key):
		case ev.Prev != nil:
			view[ev.KV.Key] = *ev.Prev
		default:
			delete(view, ev.KV.Key)
		}
	}
	keys := slices.Sorted(maps.Keys(view))
	more := false
	if p.Limit > 0 && int64(len(keys)) > p.Limit {
		keys, more = keys[:p.Limit], true
	}
	out := make([]KV, len(keys))
	for i, k := range keys {
		out[i] = view[k]
	}
	return out, rev, more, nil
}

func (m *Memory) put(key string, value []byte) {
	prev, had := m.data[key]
	kv := KV{Key: key, Value: value, Rev: m.rev}
	m.data[key] = kv
	ev := Event{Type: Put, KV: kv}
	if had {
		ev.Prev = &prev
	}
	m.history = append(m.history, ev)
}

func (m *Memory) del(key string) (KV, bool) {
	prev, had := m.data[key]
	if !had {
		return KV{}, false
	}
	delete(m.data, key)
	m.history = append(m.history, Event{Type: Delete, KV: KV{Key: key, Rev: m.rev}, Prev: &prev})
	return prev, true
}

// Create implements Store.
func (m *Memory) Create(_ context.Context, key string, value []byte, claims []Claim) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := append([]Claim{{Key: key, Value: value}}, claims...)
	for _, c := range all {
		if _, ok := m.data[c.Key]; ok {
			return 0, &ExistsError{Key: c.Key}
		}
	}
	m.rev++
	for _, c := range all {
		m.put(c.Key, c.Value)
	}
	m.notify()
	return m.rev, nil
}

// Update implements Store.
func (m *Memory) Update(_ context.Context, key string, value []byte, expectRev int64, claims []Claim, releases []string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.data[key]
	if !ok {
		return 0, ErrNotFound
	}
	if expectRev > 0 && cur.Rev != expectRev {
		return 0, ErrConflict
	}
	for _, c := range claims {
		if _, ok := m.data[c.Key]; ok {
			return 0, &ExistsError{Key: c.Key}
		}
	}
	m.rev++
	m.put(key, value)
	for _, c := range claims {
		m.put(c.Key, c.Value)
	}
	for _, r := range releases {
		m.del(r)
	}
	m.notify()
	return m.rev, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string, expectRev int64, releases []string) (KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.data[key]
	if !ok {
		return KV{}, ErrNotFound
	}
	if expectRev > 0 && cur.Rev != expectRev {
		return KV{}, ErrConflict
	}
	m.rev++
	prev, _ := m.del(key)
	for _, r := range releases {
		m.del(r)
	}
	m.notify()
	prev.Rev = m.rev
	return prev, nil
}

// Watch implements Store.
func (m *Memory) Watch(ctx context.Context, prefix string, after int64) <-chan Event {
	out := make(chan Event, 100)
	wake := make(chan struct{}, 1)
	m.mu.Lock()
	m.subs[wake] = struct{}{}
	seenProgress := m.progress // progress requested after Watch returns is reported
	m.mu.Unlock()
	go func() {
		defer close(out)
		defer func() { m.mu.Lock(); delete(m.subs, wake); m.mu.Unlock() }()
		next := after
		for {
			m.mu.Lock()
			if next < m.compacted-1 {
				m.mu.Unlock()
				select {
				case out <- Event{Err: ErrCompacted}:
				case <-ctx.Done():
				}
				return
			}
			var batch []Event
			for _, ev := range m.history {
				if ev.KV.Rev > next && strings.HasPrefix(ev.KV.Key, prefix) {
					batch = append(batch, ev)
				}
			}
			cur, progress := m.rev, m.progress
			m.mu.Unlock()
			if progress != seenProgress {
				seenProgress = progress
				batch = append(batch, Event{Type: Progress, KV: KV{Rev: cur}})
			}
			for _, ev := range batch {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			next = cur
			select {
			case <-wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Rev implements Store.
func (m *Memory) Rev(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev, nil
}

// Compact implements Store.
func (m *Memory) Compact(_ context.Context, rev int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.history), func(i int) bool { return m.history[i].KV.Rev >= rev })
	m.history = m.history[i:]
	if rev > m.compacted {
		m.compacted = rev
	}
	return nil
}
