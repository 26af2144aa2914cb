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
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/controller/queue"
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

// Publisher keeps the root CA ConfigMap in every namespace; its queue keys are
// namespace names.
type Publisher struct {
	client     kubernetes.Interface
	rootCA     string
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced
	loop       *queue.Loop
}

// New wires the publisher of rootCA (PEM) to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, rootCA []byte, log *slog.Logger) *Publisher {
	p := &Publisher{client: client, rootCA: string(rootCA)}
	p.loop = queue.New("root-ca-cert-publisher", p.sync, log)
	nsInf, cmInf := factory.Core().V1().Namespaces(), factory.Core().V1().ConfigMaps()
	p.namespaces, p.configMaps = nsInf.Lister(), cmInf.Lister()
	p.synced = []cache.InformerSynced{nsInf.Informer().HasSynced, cmInf.Informer().HasSynced}
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: p.loop.AddObject, UpdateFunc: func(_, o any) { p.loop.AddObject(o) }})
	ours := func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		if cm, ok := o.(*corev1.ConfigMap); ok && cm.Name == ConfigMapName {
			p.loop.Add(cm.Namespace)
		}
	}
	_, _ = cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, o any) { ours(o) }, DeleteFunc: ours})
	return p
}

// Run runs the publisher until ctx ends.
func (p *Publisher) Run(ctx context.Context, workers int) { p.loop.Run(ctx, workers, p.synced...) }

func (p *Publisher) sync(ctx context.Context, name string) error {
	ns, err := p.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	want := map[string]string{Key: p.rootCA}
	cm, err := p.configMaps.ConfigMaps(name).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		_, err = p.client.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: name, Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data:       want,
		}, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
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
