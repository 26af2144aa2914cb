package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
)

// watchZone follows this node's topology.kubernetes.io/zone label (for the
// proxy's topology hints) until ctx ends; the func returns it ("" when the
// Node has none or is not known yet).
func (a *Agent) watchZone(ctx context.Context) func() string {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", a.o.NodeName).String()
	}))
	lister := factory.Core().V1().Nodes().Lister()
	factory.Core().V1().Nodes().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return func() string {
		n, err := lister.Get(a.o.NodeName)
		if err != nil {
			return ""
		}
		return n.Labels[corev1.LabelTopologyZone]
	}
}
