package cri

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/podvol"
)

// volumes makes the pod's volumes exist under its directory on the node and
// returns where each one is (podvol.Prepare), refreshing ConfigMap, Secret,
// downward API and projected files (here at every sync).
func (w *worker) volumes(p *corev1.Pod) (map[string]podvol.Volume, error) {
	return podvol.Prepare(w.dir, p, w.r.o.Objects)
}
