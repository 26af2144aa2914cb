// Package nsobject keeps one named object in every active namespace: the loop the
// serviceaccount and root-ca-cert-publisher controllers share, each giving only
// how to make its object exist and match.
package nsobject

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Config says which object a Controller keeps and how.
type Config struct {
	Name    string                                     // the controller's, for its queue and logs
	Object  string                                     // the object's name in every namespace
	Objects cache.SharedIndexInformer                  // watches objects of the kind
	Repair  bool                                       // put edited objects back too, not only deleted ones
	Ensure  func(ctx context.Context, ns string) error // makes the object exist and match in the active namespace ns
}

// Controller calls Ensure for every active namespace when it appears or changes,
// and when its object is deleted (or edited, with Repair); its queue keys are
// namespace names.
type Controller struct {
	cfg        Config
	namespaces corelisters.NamespaceLister
	synced     []cache.InformerSynced
	loop       *queue.Loop
}

// New wires the controller to informers from factory.
func New(cfg Config, factory informers.SharedInformerFactory, log *slog.Logger) *Controller {
	c := &Controller{cfg: cfg}
	c.loop = queue.New(cfg.Name, c.sync, log)
	nsInf := factory.Core().V1().Namespaces()
	c.namespaces = nsInf.Lister()
	c.synced = []cache.InformerSynced{nsInf.Informer().HasSynced, cfg.Objects.HasSynced}
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.loop.AddObject, UpdateFunc: func(_, o any) { c.loop.AddObject(o) }})
	ours := func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		if m, ok := o.(metav1.Object); ok && m.GetName() == cfg.Object {
			c.loop.Add(m.GetNamespace())
		}
	}
	h := cache.ResourceEventHandlerFuncs{DeleteFunc: ours}
	if cfg.Repair {
		h.UpdateFunc = func(_, o any) { ours(o) }
	}
	_, _ = cfg.Objects.AddEventHandler(h)
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !Active(ns) {
		return nil
	}
	return c.cfg.Ensure(ctx, name)
}

// Active reports whether a namespace may get new content.
func Active(ns *corev1.Namespace) bool {
	return ns.DeletionTimestamp == nil && ns.Status.Phase != corev1.NamespaceTerminating
}

// Gone reports whether a write failed because its namespace is gone or being deleted.
func Gone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}
