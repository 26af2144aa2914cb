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

	"github.com/svcnet/svcnet/internal/controller/nsobject"
)

// DefaultName is the ServiceAccount every namespace gets.
const DefaultName = "default"

// Controller keeps the default ServiceAccount in every namespace.
type Controller struct {
	*nsobject.Controller
	client   kubernetes.Interface
	accounts corelisters.ServiceAccountLister
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) *Controller {
	saInf := factory.Core().V1().ServiceAccounts()
	c := &Controller{client: client, accounts: saInf.Lister()}
	c.Controller = nsobject.New(nsobject.Config{Name: "serviceaccount", Object: DefaultName, Objects: saInf.Informer(), Ensure: c.ensure}, factory, log)
	return c
}

// ensure creates the default ServiceAccount in the active namespace name if it is missing.
func (c *Controller) ensure(ctx context.Context, name string) error {
	switch _, err := c.accounts.ServiceAccounts(name).Get(DefaultName); {
	case err == nil:
		return nil
	case !apierrors.IsNotFound(err):
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: name}}
	_, err := c.client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) || nsobject.Gone(err) {
		return nil
	}
	return err
}
