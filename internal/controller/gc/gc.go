// Package gc deletes objects whose owners are gone (background cascading
// deletion through ownerReferences): pods of deleted ReplicaSets,
// ReplicationControllers, StatefulSets, DaemonSets and Jobs, ReplicaSets of
// deleted Deployments, Jobs of deleted CronJobs, EndpointSlices of deleted
// Services. An owner missing from the cache is confirmed with a live read before
// anything is deleted.
package gc

import (
	"context"
	"log/slog"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// kind describes one dependent kind the collector watches.
type kind struct {
	name     string
	informer cache.SharedIndexInformer
	delete   func(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error
}

// Collector is the garbage collector.
type Collector struct {
	client kubernetes.Interface
	kinds  map[string]kind
	owners map[string]func(ctx context.Context, ns, name string) (types.UID, error) // by owner Kind
	loop   *queue.Loop
	log    *slog.Logger
}

// New wires the collector to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) *Collector {
	c := &Collector{client: client, log: log, kinds: map[string]kind{}}
	c.loop = queue.New("garbage-collector", c.sync, log)
	add := func(name string, inf cache.SharedIndexInformer, del func(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error) {
		c.kinds[name] = kind{name: name, informer: inf, delete: del}
		enqueue := func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if m, err := meta.Accessor(o); err == nil && len(m.GetOwnerReferences()) > 0 {
				c.loop.Add(name + "/" + m.GetNamespace() + "/" + m.GetName())
			}
		}
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }})
	}
	add("Pod", factory.Core().V1().Pods().Informer(), deleteIn(client.CoreV1().Pods))
	add("ReplicaSet", factory.Apps().V1().ReplicaSets().Informer(), deleteIn(client.AppsV1().ReplicaSets))
	add("Job", factory.Batch().V1().Jobs().Informer(), deleteIn(client.BatchV1().Jobs))
	add("EndpointSlice", factory.Discovery().V1().EndpointSlices().Informer(), deleteIn(client.DiscoveryV1().EndpointSlices))
	c.owners = map[string]func(ctx context.Context, ns, name string) (types.UID, error){
		"Deployment":            uidIn(client.AppsV1().Deployments),
		"ReplicaSet":            uidIn(client.AppsV1().ReplicaSets),
		"StatefulSet":           uidIn(client.AppsV1().StatefulSets),
		"DaemonSet":             uidIn(client.AppsV1().DaemonSets),
		"Job":                   uidIn(client.BatchV1().Jobs),
		"CronJob":               uidIn(client.BatchV1().CronJobs),
		"ReplicationController": uidIn(client.CoreV1().ReplicationControllers),
		"Service":               uidIn(client.CoreV1().Services),
	}
	// An owner's deletion makes its dependents worth a look.
	onOwnerDelete := func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		m, err := meta.Accessor(o)
		if err != nil {
			return
		}
		for _, k := range c.kinds {
			for _, d := range k.informer.GetStore().List() {
				dm, _ := meta.Accessor(d)
				for _, r := range dm.GetOwnerReferences() {
					if r.UID == m.GetUID() {
						c.loop.Add(k.name + "/" + dm.GetNamespace() + "/" + dm.GetName())
					}
				}
			}
		}
	}
	for _, inf := range []cache.SharedIndexInformer{factory.Apps().V1().Deployments().Informer(),
		factory.Apps().V1().ReplicaSets().Informer(), factory.Core().V1().ReplicationControllers().Informer(),
		factory.Apps().V1().StatefulSets().Informer(), factory.Apps().V1().DaemonSets().Informer(), factory.Batch().V1().Jobs().Informer(),
		factory.Batch().V1().CronJobs().Informer(), factory.Core().V1().Services().Informer()} {
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: onOwnerDelete})
	}
	return c
}

// deleteIn adapts a typed client's Delete, by namespace, to kind.delete.
func deleteIn[C interface {
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}](in func(ns string) C) func(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
	return func(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
		return in(ns).Delete(ctx, name, opts)
	}
}

// uidIn adapts a typed client's Get, by namespace, to an owner lookup: the live owner's UID.
func uidIn[T metav1.Object, C interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
}](in func(ns string) C) func(ctx context.Context, ns, name string) (types.UID, error) {
	return func(ctx context.Context, ns, name string) (types.UID, error) {
		o, err := in(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return o.GetUID(), nil
	}
}

// Run runs the collector until ctx ends.
func (c *Collector) Run(ctx context.Context, workers int) {
	var synced []cache.InformerSynced
	for _, k := range c.kinds {
		synced = append(synced, k.informer.HasSynced)
	}
	c.loop.Run(ctx, workers, synced...)
}

func (c *Collector) sync(ctx context.Context, key string) error {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 {
		return nil
	}
	k, ok := c.kinds[parts[0]]
	if !ok {
		return nil
	}
	o, exists, err := k.informer.GetStore().GetByKey(parts[1] + "/" + parts[2])
	if err != nil || !exists {
		return err
	}
	m, _ := meta.Accessor(o)
	if m.GetDeletionTimestamp() != nil || len(m.GetOwnerReferences()) == 0 {
		return nil
	}
	for _, r := range m.GetOwnerReferences() {
		get, known := c.owners[r.Kind]
		if !known {
			return nil // an owner kind we do not track: leave the object alone
		}
		uid, err := get(ctx, m.GetNamespace(), r.Name)
		if err == nil && uid == r.UID {
			return nil // an owner is alive
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	uid := m.GetUID()
	policy := metav1.DeletePropagationBackground
	c.log.Info("deleting object whose owners are gone", "kind", k.name, "namespace", m.GetNamespace(), "name", m.GetName())
	err = k.delete(ctx, m.GetNamespace(), m.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
