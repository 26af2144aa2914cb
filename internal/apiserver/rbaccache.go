package apiserver

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/svcnet/svcnet/internal/rbac"
	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// rbacRelistDelay is how long a failed RBAC list waits before it is retried.
const rbacRelistDelay = time.Second

// rbacObject is one of the four RBAC kinds.
type rbacObject interface {
	runtime.Object
	metav1.Object
	*rbacv1.Role | *rbacv1.ClusterRole | *rbacv1.RoleBinding | *rbacv1.ClusterRoleBinding
}

// kindCache holds one RBAC kind by namespace and name, with name-sorted lists
// per namespace rebuilt on change (reads far outnumber writes).
type kindCache[T rbacObject] struct {
	byNS  map[string]map[string]T
	lists map[string][]T
}

func (k *kindCache[T]) reset(objs []T) {
	k.byNS, k.lists = map[string]map[string]T{}, map[string][]T{}
	for _, o := range objs {
		k.store(o)
	}
	for ns := range k.byNS {
		k.relist(ns)
	}
}

// store files o under its namespace and name, leaving the lists as they are.
func (k *kindCache[T]) store(o T) {
	if k.byNS[o.GetNamespace()] == nil {
		k.byNS[o.GetNamespace()] = map[string]T{}
	}
	k.byNS[o.GetNamespace()][o.GetName()] = o
}

func (k *kindCache[T]) relist(ns string) {
	m := k.byNS[ns]
	if len(m) == 0 {
		delete(k.byNS, ns)
		delete(k.lists, ns)
		return
	}
	l := make([]T, 0, len(m))
	for _, o := range m {
		l = append(l, o)
	}
	slices.SortFunc(l, func(a, b T) int { return strings.Compare(a.GetName(), b.GetName()) })
	k.lists[ns] = l
}

func (k *kindCache[T]) put(o T) {
	k.store(o)
	k.relist(o.GetNamespace())
}

func (k *kindCache[T]) remove(o T) {
	delete(k.byNS[o.GetNamespace()], o.GetName())
	k.relist(o.GetNamespace())
}

func (k *kindCache[T]) get(ns, name string) (T, bool) {
	o, ok := k.byNS[ns][name]
	return o, ok
}

// rbacCache mirrors Roles, ClusterRoles and their bindings from storage watches
// (as kube-apiserver's RBAC authorizer reads informers); it is the authorizer's
// rbac.Source. Ready closes once all four kinds have been listed.
type rbacCache struct {
	mu                  sync.RWMutex
	roles               kindCache[*rbacv1.Role]
	clusterRoles        kindCache[*rbacv1.ClusterRole]
	roleBindings        kindCache[*rbacv1.RoleBinding]
	clusterRoleBindings kindCache[*rbacv1.ClusterRoleBinding]
	listed              int
	ready               chan struct{}
	// clusterRolesChanged wakes the aggregation loop.
	clusterRolesChanged chan struct{}
}

var _ rbac.Source = (*rbacCache)(nil)

func newRBACCache() *rbacCache {
	return &rbacCache{ready: make(chan struct{}), clusterRolesChanged: make(chan struct{}, 1)}
}

// Role implements rbac.Source.
func (c *rbacCache) Role(ns, name string) (*rbacv1.Role, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.roles.get(ns, name)
}

// ClusterRole implements rbac.Source.
func (c *rbacCache) ClusterRole(name string) (*rbacv1.ClusterRole, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.clusterRoles.get("", name)
}

// RoleBindings implements rbac.Source.
func (c *rbacCache) RoleBindings(ns string) []*rbacv1.RoleBinding {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.roleBindings.lists[ns]
}

// ClusterRoleBindings implements rbac.Source.
func (c *rbacCache) ClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.clusterRoleBindings.lists[""]
}

// allClusterRoles returns every ClusterRole (for aggregation).
func (c *rbacCache) allClusterRoles() []*rbacv1.ClusterRole {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.clusterRoles.lists[""])
}

// start runs one watch per kind until ctx ends.
func (c *rbacCache) start(ctx context.Context, s *Server) {
	g := rbacv1.GroupName
	go watchKind(ctx, s, c, s.res(g, "roles"), &c.roles, nil)
	go watchKind(ctx, s, c, s.res(g, "clusterroles"), &c.clusterRoles, c.clusterRolesChanged)
	go watchKind(ctx, s, c, s.res(g, "rolebindings"), &c.roleBindings, nil)
	go watchKind(ctx, s, c, s.res(g, "clusterrolebindings"), &c.clusterRoleBindings, nil)
}

func (c *rbacCache) notify(ch chan struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// watchKind keeps kc in step with storage until ctx ends, relisting after
// errors; the cache stays as it was meanwhile (stale rather than empty).
func watchKind[T rbacObject](ctx context.Context, s *Server, c *rbacCache, res *registry.Resource, kc *kindCache[T], changed chan struct{}) {
	prefix := s.listPrefix(res, "")
	first := true
	for ctx.Err() == nil {
		kvs, rev, err := listAll(ctx, s.store, prefix, 0)
		if err != nil {
			s.log.Warn("rbac cache: list failed", "resource", res.Resource, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(rbacRelistDelay):
			}
			continue
		}
		var objs []T
		for _, kv := range kvs {
			if obj, err := decodeStored(res, kv); err == nil {
				objs = append(objs, obj.(T))
			}
		}
		c.mu.Lock()
		kc.reset(objs)
		if first {
			first = false
			if c.listed++; c.listed == 4 {
				close(c.ready)
			}
		}
		c.mu.Unlock()
		c.notify(changed)
		for ev := range s.store.Watch(ctx, prefix, rev) {
			if ev.Err != nil {
				break
			}
			applyEvent(c, res, kc, ev)
			c.notify(changed)
		}
	}
}

// applyEvent records one watch event in kc.
func applyEvent[T rbacObject](c *rbacCache, res *registry.Resource, kc *kindCache[T], ev storage.Event) {
	kv := ev.KV
	if ev.Type == storage.Delete {
		if ev.Prev == nil {
			return
		}
		kv = *ev.Prev
	}
	obj, err := decodeStored(res, kv)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Type == storage.Delete {
		kc.remove(obj.(T))
	} else {
		kc.put(obj.(T))
	}
}
