// Package rootca publishes the cluster CA as the ConfigMap `kube-root-ca.crt`
// (key `ca.crt`) in every active namespace, so pods can verify the API server,
// and puts it back when it is edited or deleted, as kube-controller-manager's
// root-ca-cert-publisher does. Namespaces being deleted are skipped.
package rootca

import (
	"context"
	"log/slog"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/svcnet/svcnet/internal/controller/nsobject"
)

// The ConfigMap's name, key and the annotation describing it, as Kubernetes
// writes them.
const (
	ConfigMapName         = "kube-root-ca.crt"
	Key                   = "ca.crt"
	DescriptionAnnotation = "kubernetes.io/description"
	Description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints " +
		"such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Publisher keeps the root CA ConfigMap in every namespace.
type Publisher struct {
	*nsobject.Controller
	client     kubernetes.Interface
	rootCA     string
	configMaps corelisters.ConfigMapLister
}

// New wires the publisher of rootCA (PEM) to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, rootCA []byte, log *slog.Logger) *Publisher {
	cmInf := factory.Core().V1().ConfigMaps()
	p := &Publisher{client: client, rootCA: string(rootCA), configMaps: cmInf.Lister()}
	p.Controller = nsobject.New(nsobject.Config{Name: "root-ca-cert-publisher", Object: ConfigMapName, Objects: cmInf.Informer(),
		Repair: true, Ensure: p.ensure}, factory, log)
	return p
}

// ensure publishes the CA in the active namespace name.
func (p *Publisher) ensure(ctx context.Context, name string) error {
	want := map[string]string{Key: p.rootCA}
	cm, err := p.configMaps.ConfigMaps(name).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		_, err = p.client.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: name, Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data:       want,
		}, metav1.CreateOptions{})
		if nsobject.Gone(err) {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	if maps.Equal(cm.Data, want) && cm.Annotations[DescriptionAnnotation] != "" {
		return nil
	}
	cm = cm.DeepCopy()
	cm.Data = want
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[DescriptionAnnotation] = Description
	_, err = p.client.CoreV1().ConfigMaps(name).Update(ctx, cm, metav1.UpdateOptions{})
	return err
}
