package workload

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// ReplicationControllers keeps each core/v1 ReplicationController's number of
// active pods at spec.replicas, as ReplicaSets do (Kubernetes runs one
// controller for both, too); the selector is a plain label map.
type ReplicationControllers struct{ *keeper }

// NewReplicationControllers wires the controller to informers from factory.
func NewReplicationControllers(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *ReplicationControllers {
	inf := factory.Core().V1().ReplicationControllers()
	rcs := inf.Lister()
	get := func(ns, name string) (*podSet, error) {
		rc, err := rcs.ReplicationControllers(ns).Get(name)
		if err != nil {
			return nil, err
		}
		return replicationControllerPods(client, rc), nil
	}
	return &ReplicationControllers{newKeeper("ReplicationController", "replicationcontroller", inf.Informer(), get, client, factory, recorder, log)}
}

func replicationControllerPods(client kubernetes.Interface, rc *corev1.ReplicationController) *podSet {
	return &podSet{owner: rc, meta: rc, ref: *metav1.NewControllerRef(rc, corev1.SchemeGroupVersion.WithKind("ReplicationController")), selector: labels.SelectorFromSet(rc.Spec.Selector),
		template: rc.Spec.Template, replicas: derefInt32(rc.Spec.Replicas), minReady: rc.Spec.MinReadySeconds,
		setStatus: func(ctx context.Context, c replicaCounts) error {
			st := corev1.ReplicationControllerStatus{Replicas: c.replicas, FullyLabeledReplicas: c.fullyLabeled, ReadyReplicas: c.ready,
				AvailableReplicas: c.available, ObservedGeneration: rc.Generation, Conditions: rc.Status.Conditions}
			if apiequality.Semantic.DeepEqual(st, rc.Status) {
				return nil
			}
			cp := rc.DeepCopy()
			cp.Status = st
			_, err := client.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
			return err
		}}
}
