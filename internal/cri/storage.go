package cri

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Local ephemeral storage limits, as the kubelet's eviction manager enforces
// them: a pod whose emptyDir outgrows its sizeLimit, whose containers and
// emptyDirs together use more than the sum of its containers'
// ephemeral-storage limits, or with a container whose writable layer and logs
// use more than its own limit is evicted: its containers are stopped at once
// and it ends Failed with reason Evicted and the kubelet's message. Usage is
// measured at most every storageCheckPeriod (the writable layer as the
// runtime's ContainerStats reports it).

const storageCheckPeriod = 5 * time.Second

// storageUsage is what a pod uses: per container (writable layer and logs)
// and per emptyDir volume, in bytes.
type storageUsage struct {
	containers map[string]int64
	emptyDirs  map[string]int64
}

// limitedStorage says whether the pod has any limit to enforce.
func limitedStorage(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
			return true
		}
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if _, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok {
			return true
		}
	}
	return false
}

// storageVerdict is the eviction message for a pod's usage, "" if within its limits.
func storageVerdict(p *corev1.Pod, u storageUsage) string {
	var total int64
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir == nil {
			continue
		}
		used := u.emptyDirs[v.Name]
		total += used
		if lim := v.EmptyDir.SizeLimit; lim != nil && used > lim.Value() {
			return fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q. ", v.Name, lim.String())
		}
	}
	podLimit, limited := resource.Quantity{}, false
	for _, c := range p.Spec.Containers {
		total += u.containers[c.Name]
		if l, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok {
			podLimit.Add(l)
			limited = true
		}
	}
	if limited && total > podLimit.Value() {
		return fmt.Sprintf("Pod ephemeral local storage usage exceeds the total limit of containers %s. ", podLimit.String())
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if l, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok && u.containers[c.Name] > l.Value() {
			return fmt.Sprintf("Container %s exceeded its local ephemeral storage limit %q. ", c.Name, l.String())
		}
	}
	return ""
}

// dirSize is the bytes used by the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// checkStorage measures the pod's usage (at most every storageCheckPeriod) and
// marks it evicted when it is over a limit; it reports whether it is evicted.
func (w *worker) checkStorage(ctx context.Context, p *corev1.Pod, obs observed) bool {
	w.mu.Lock()
	evicted, last := w.evicted, w.storageChecked
	w.mu.Unlock()
	now := w.r.o.Now()
	if evicted != "" || !limitedStorage(p) || now.Sub(last) < storageCheckPeriod {
		return evicted != ""
	}
	u := storageUsage{containers: map[string]int64{}, emptyDirs: map[string]int64{}}
	for _, c := range obs.containers {
		if c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if st, err := w.r.o.Runtime.ContainerStats(ctx, c.id); err == nil {
			u.containers[c.name] += int64(st.GetWritableLayer().GetUsedBytes().GetValue())
		}
		if st, err := os.Stat(filepath.Join(w.dir, "logs", logPath(c.name, c.attempt))); err == nil {
			u.containers[c.name] += st.Size()
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.Medium != corev1.StorageMediumMemory {
			u.emptyDirs[v.Name] = dirSize(filepath.Join(w.dir, "volumes", v.Name))
		}
	}
	msg := storageVerdict(p, u)
	w.mu.Lock()
	w.storageChecked = now
	if msg != "" && w.evicted == "" {
		w.evicted = msg
	}
	w.mu.Unlock()
	if msg != "" {
		w.log().Info("pod evicted: over its local ephemeral storage limit", "message", msg)
		w.r.o.Event(p, corev1.EventTypeWarning, "Evicted", msg)
	}
	return msg != ""
}

// evictedStatus turns a status into an evicted pod's, as the kubelet writes it
// (its DisruptionTarget condition is left out: the agent writes only the
// conditions the kubelet owns).
func evictedStatus(st *corev1.PodStatus, msg string) {
	st.Phase, st.Reason, st.Message = corev1.PodFailed, "Evicted", msg
	for i := range st.Conditions {
		if t := st.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			st.Conditions[i].Status, st.Conditions[i].Reason, st.Conditions[i].Message = corev1.ConditionFalse, "PodFailed", ""
		}
	}
}
