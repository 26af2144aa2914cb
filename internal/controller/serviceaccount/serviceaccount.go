// Package serviceaccount makes sure every active namespace has the ServiceAccount
// `default`, created with the namespace and again after it is deleted, as
// kube-controller-manager's serviceaccount controller does. Namespaces being
// deleted are skipped.
package serviceaccount

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// DefaultName is the ServiceAccount every namespace gets.
const DefaultName = "default"

// Controller keeps the default ServiceAccount in every namespace; its queue keys
// are namespace names.
type Controller struct {
	client     kubernetes.Interface
	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	synced     []cache.InformerSynced
	loop       *queue.Loop
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) *Controller {
	c := &Controller{client: client}
	c.loop = queue.New("serviceaccount", c.sync, log)
	nsInf, saInf := factory.Core().V1().Namespaces(), factory.Core().V1().ServiceAccounts()
	c.namespaces, c.accounts = nsInf.Lister(), saInf.Lister()
	c.synced = []cache.InformerSynced{nsInf.Informer().HasSynced, saInf.Informer().HasSynced}
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.loop.AddObject, UpdateFunc: func(_, o any) { c.loop.AddObject(o) }})
	_, _ = saInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		if sa, ok := o.(*corev1.ServiceAccount); ok && sa.Name == DefaultName {
			c.loop.Add(sa.Namespace)
		}
	}})
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
	if !active(ns) {
		return nil
	}
	switch _, err := c.accounts.ServiceAccounts(name).Get(DefaultName); {
	case err == nil:
		return nil
	case !apierrors.IsNotFound(err):
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: name}}
	_, err = c.client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return nil
	}
	return err
}

// active reports whether a namespace may get new content.
func active(ns *corev1.Namespace) bool {
	return ns.DeletionTimestamp == nil && ns.Status.Phase != corev1.NamespaceTerminating
}
