// Package queue is the work loop every svcnet controller shares: informer event
// handlers only add keys; workers call one sync function per key, retried with
// rate-limited back-off on error (client-go's workqueue).
package queue

import (
	"context"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Loop feeds keys to Sync.
type Loop struct {
	name string
	sync func(ctx context.Context, key string) error
	log  *slog.Logger
	q    workqueue.TypedRateLimitingInterface[string]
}

// New returns a loop named name calling sync.
func New(name string, sync func(ctx context.Context, key string) error, log *slog.Logger) *Loop {
	return &Loop{name: name, sync: sync, log: log,
		q: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name})}
}

// Add queues key.
func (l *Loop) Add(key string) { l.q.Add(key) }

// AddAfter queues key after d.
func (l *Loop) AddAfter(key string, d time.Duration) { l.q.AddAfter(key, d) }

// AddObject queues the namespace/name key of an object (or of a tombstone).
func (l *Loop) AddObject(o any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o); err == nil {
		l.q.Add(key)
	}
}

// ObjectHandler queues every added, updated and deleted object.
func (l *Loop) ObjectHandler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: l.AddObject, UpdateFunc: func(_, o any) { l.AddObject(o) }, DeleteFunc: l.AddObject}
}

// Run waits for the caches, then runs workers until ctx ends.
func (l *Loop) Run(ctx context.Context, workers int, synced ...cache.InformerSynced) {
	defer utilruntime.HandleCrash()
	defer l.q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	l.log.Info("controller started", "controller", l.name, "workers", workers)
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, l.work, time.Second)
	}
	<-ctx.Done()
}

func (l *Loop) work(ctx context.Context) {
	for {
		key, quit := l.q.Get()
		if quit {
			return
		}
		err := l.sync(ctx, key)
		switch {
		case err == nil:
			l.q.Forget(key)
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err):
			l.log.Debug("sync raced with another writer, retrying", "controller", l.name, "key", key, "err", err)
			l.q.AddRateLimited(key)
		default:
			l.log.Warn("sync failed, retrying", "controller", l.name, "key", key, "err", err)
			l.q.AddRateLimited(key)
		}
		l.q.Done(key)
	}
}
