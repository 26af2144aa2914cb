package dns

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// WatchUpstreams keeps fw's routes in step with the kube-dns ConfigMap in
// kube-system until ctx ends: its stubDomains and upstreamNameservers apply
// while it exists; a ConfigMap with errors is logged and the routes before it stay.
func WatchUpstreams(ctx context.Context, client kubernetes.Interface, fw *Forwarder, log *slog.Logger) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(metav1.NamespaceSystem),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
		}))
	apply := func(o any) {
		cm, ok := o.(*corev1.ConfigMap)
		if !ok {
			return
		}
		u, err := ParseKubeDNSConfig(cm.Data)
		if err != nil {
			log.Error("kube-system/"+ConfigMapName+" ConfigMap ignored", "err", err)
			return
		}
		fw.SetUpstreams(u)
		log.Info("DNS forwarding from kube-system/"+ConfigMapName, "stubDomains", u.Stubs, "upstreamNameservers", u.Nameservers)
	}
	_, _ = factory.Core().V1().ConfigMaps().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    apply,
		UpdateFunc: func(_, o any) { apply(o) },
		DeleteFunc: func(any) {
			fw.SetUpstreams(Upstreams{})
			log.Info("kube-system/" + ConfigMapName + " ConfigMap deleted: DNS forwarding to the node's resolvers")
		},
	})
	factory.Start(ctx.Done())
}
