package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// finishDeletions watches the pods bound to this node and completes their
// graceful deletion. This node runs no containers yet (the pod runtime comes
// next), so there is nothing to stop: like a kubelet whose containers have all
// exited, it confirms the deletion with grace period 0.
func (a *Agent) finishDeletions(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.o.NodeName).String()
	}))
	inf := factory.Core().V1().Pods().Informer()
	finish := func(o any) {
		p, ok := o.(*corev1.Pod)
		if !ok || p.DeletionTimestamp == nil {
			return
		}
		zero := int64(0)
		uid := p.UID
		err := a.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero,
			Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
			a.o.Log.Warn("finishing pod deletion failed", "pod", p.Namespace+"/"+p.Name, "err", err)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: finish, UpdateFunc: func(_, o any) { finish(o) }})
	factory.Start(ctx.Done())
}
