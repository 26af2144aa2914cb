package apiserver

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// nsCache mirrors the namespaces (name -> terminating) from a storage watch, so
// that admitting a namespaced create does not cost an extra storage read, as
// kube-apiserver's NamespaceLifecycle admission uses an informer. A name missing
// from the cache is looked up in storage, so a namespace created a moment ago is
// never refused.
type nsCache struct {
	mu     sync.RWMutex
	synced bool
	ns     map[string]bool
}

func (c *nsCache) lookup(name string) (exists, terminating, known bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.synced {
		return false, false, false
	}
	t, ok := c.ns[name]
	return ok, t, ok
}

// run keeps the cache in step with storage until ctx ends, relisting after errors.
func (c *nsCache) run(ctx context.Context, s *Server) {
	res := s.res("", "namespaces")
	prefix := s.listPrefix(res, "")
	for ctx.Err() == nil {
		kvs, rev, err := listAll(ctx, s.store, prefix, 0)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		fresh := map[string]bool{}
		for _, kv := range kvs {
			if obj, err := decodeStored(res, kv); err == nil {
				ns := obj.(*corev1.Namespace)
				fresh[ns.Name] = ns.DeletionTimestamp != nil
			}
		}
		c.mu.Lock()
		c.ns, c.synced = fresh, true
		c.mu.Unlock()
		for ev := range s.store.Watch(ctx, prefix, rev) {
			if ev.Err != nil {
				break
			}
			c.apply(res, ev)
		}
		c.mu.Lock()
		c.synced = false
		c.mu.Unlock()
	}
}

func (c *nsCache) apply(res *registry.Resource, ev storage.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Type {
	case storage.Put:
		if obj, err := decodeStored(res, ev.KV); err == nil {
			ns := obj.(*corev1.Namespace)
			c.ns[ns.Name] = ns.DeletionTimestamp != nil
		}
	case storage.Delete:
		if ev.Prev != nil {
			if obj, err := decodeStored(res, *ev.Prev); err == nil {
				delete(c.ns, obj.(*corev1.Namespace).Name)
			}
		}
	}
}

// note records a namespace this server just wrote (gone: deleted), closing the
// window before the watch delivers the same change.
func (c *nsCache) note(obj runtime.Object, gone bool) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ns == nil {
		return
	}
	if gone {
		delete(c.ns, ns.Name)
	} else {
		c.ns[ns.Name] = ns.DeletionTimestamp != nil
	}
}
