// Package storage is the API server's only door to persistent state: a small
// key/value contract with revisions and watches, implemented by etcd v3 and by an
// in-memory fake for tests.
package storage

import (
	"context"
	"errors"
	"fmt"
)

// KV is one stored value and the revision at which it was last modified.
type KV struct {
	Key   string
	Value []byte
	Rev   int64
}

// Claim is an extra key created in the same transaction as an object, and only if it
// does not exist yet. The API server uses claims for allocations (cluster IPs, node
// ports) so that two API servers on one etcd can never hand out the same value.
type Claim struct {
	Key   string
	Value []byte
}

// EventType says what happened to a key.
type EventType string

// The event types a watch delivers.
const (
	Put    EventType = "PUT"
	Delete EventType = "DELETE"
	// Progress carries no key: it only says that the watch has seen every change up
	// to Rev (used for watch bookmarks).
	Progress EventType = "PROGRESS"
)

// Event is one change seen by a watch. For Delete, Prev holds the last value.
type Event struct {
	Type EventType
	KV   KV
	Prev *KV
	Err  error // set on the last event of a failed watch (e.g. ErrCompacted)
}

// Page asks for part of a list: at most Limit keys starting at From (inclusive).
type Page struct {
	Rev   int64 // 0 = latest
	From  string
	Limit int64
}

// Store is the contract between the API server and its database. Every method is
// safe for concurrent use. Revisions are global and increase with every write, as
// in etcd; an object's resourceVersion is the revision of its last write.
type Store interface {
	// Get returns the value at key, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns keys under prefix in key order and the revision the list was
	// read at. more is true when the page was cut by Limit.
	List(ctx context.Context, prefix string, p Page) (kvs []KV, rev int64, more bool, err error)
	// Create writes key and claims only if none of them exists. It returns
	// *ExistsError naming the first key that does.
	Create(ctx context.Context, key string, value []byte, claims []Claim) (int64, error)
	// Update replaces key if its revision is still expectRev (0 = any), creates
	// claims that must not exist and deletes releases, all in one transaction.
	Update(ctx context.Context, key string, value []byte, expectRev int64, claims []Claim, releases []string) (int64, error)
	// Delete removes key (if its revision is still expectRev, 0 = any) and releases.
	Delete(ctx context.Context, key string, expectRev int64, releases []string) (KV, error)
	// Watch streams changes under prefix that happen after revision after. The
	// channel is closed when ctx ends or the watch fails (last event has Err).
	Watch(ctx context.Context, prefix string, after int64) <-chan Event
	// Rev returns the current revision.
	Rev(ctx context.Context) (int64, error)
	// Compact drops history older than rev.
	Compact(ctx context.Context, rev int64) error
}

// ErrNotFound says a key does not exist.
var ErrNotFound = errors.New("storage: key not found")

// ErrConflict says a key changed since the revision the caller expected.
var ErrConflict = errors.New("storage: revision conflict")

// ErrCompacted says the requested revision is older than the kept history.
var ErrCompacted = errors.New("storage: required revision has been compacted")

// ErrFutureRev says the requested revision is newer than the store's current one.
var ErrFutureRev = errors.New("storage: required revision is a future revision")

// ExistsError says a key that had to be absent exists.
type ExistsError struct{ Key string }

func (e *ExistsError) Error() string { return fmt.Sprintf("storage: key %q already exists", e.Key) }

// IsExists reports whether err is an *ExistsError, and for which key.
func IsExists(err error) (string, bool) {
	var e *ExistsError
	if errors.As(err, &e) {
		return e.Key, true
	}
	return "", false
}
