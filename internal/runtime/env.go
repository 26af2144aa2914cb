package runtime

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// containerEnv is a container's environment in the kubelet's order: PATH and
// HOSTNAME (what an image and the runtime give), the Service variables, then
// envFrom and the spec's env with references resolved (pod.ContainerEnv).
func (w *podWorker) containerEnv(c corev1.Container) ([]string, error) {
	w.mu.Lock()
	p := w.pod.DeepCopy()
	ip := w.ip
	w.mu.Unlock()
	path := defaultPath
	if w.r.o.BinDir != "" {
		path = w.r.o.BinDir + ":" + path
	}
	base := []corev1.EnvVar{{Name: "PATH", Value: path}, {Name: "HOSTNAME", Value: pod.Hostname(p)}}
	links := p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks
	return pod.ContainerEnv(p, ip.String(), base, w.r.o.ServiceEnv(p.Namespace, links), c, w.r.o.Objects)
}
