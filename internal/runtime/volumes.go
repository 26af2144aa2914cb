package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/podvol"
)

// volumeRefreshPeriod is how often ConfigMap, Secret, downward API and
// projected volumes are rewritten from their sources while the pod runs (the
// kubelet takes up to about a minute; service account tokens are renewed at
// 80% of a life of at least 10 minutes).
const volumeRefreshPeriod = 10 * time.Second

// prepareVolumes puts the pod's volumes under its directory (podvol.Prepare),
// one caller at a time.
func (w *podWorker) prepareVolumes() (map[string]podvol.Volume, error) {
	w.mu.Lock()
	p := w.pod.DeepCopy()
	if w.ip.IsValid() {
		p.Status.PodIP = w.ip.String() // the downward API's status.podIP before the API has it
	}
	w.mu.Unlock()
	w.volMu.Lock()
	defer w.volMu.Unlock()
	return podvol.Prepare(w.dir, p, w.r.o.Objects)
}

// containerMounts are the bind mounts of container c, refreshed volumes first.
func (w *podWorker) containerMounts(c corev1.Container) ([]podvol.Mount, error) {
	vols, err := w.prepareVolumes()
	if err != nil {
		return nil, err
	}
	return processMounts(c, vols)
}

// processMounts resolves c's volume mounts for a process container: each
// mountPath must leave the node's root and kernel filesystems alone, and
// mounts are ordered parents first (as containerd sorts them), so /data/logs
// lands inside /data rather than under it.
func processMounts(c corev1.Container, vols map[string]podvol.Volume) ([]podvol.Mount, error) {
	ms, err := podvol.Mounts(c, vols)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		if err := podvol.CheckMountPath(ms[i].Container); err != nil {
			return nil, fmt.Errorf("container %q: %w", c.Name, err)
		}
		ms[i].Container = filepath.Clean(ms[i].Container)
	}
	slices.SortStableFunc(ms, func(a, b podvol.Mount) int {
		return strings.Count(a.Container, "/") - strings.Count(b.Container, "/")
	})
	return ms, nil
}

// refreshVolumes rewrites the pod's file volumes every volumeRefreshPeriod
// until ctx ends, so running containers see ConfigMap and Secret changes and
// renewed tokens.
func (w *podWorker) refreshVolumes(ctx context.Context) {
	w.mu.Lock()
	files := slices.ContainsFunc(w.pod.Spec.Volumes, func(v corev1.Volume) bool { return v.HostPath == nil && v.EmptyDir == nil })
	w.mu.Unlock()
	if !files {
		return
	}
	t := time.NewTicker(volumeRefreshPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := w.prepareVolumes(); err != nil {
				w.log().Warn("refreshing the pod's volumes failed", "err", err)
			}
		}
	}
}
