package workload

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Annotation and label names Kubernetes uses for rollouts.
const (
	LabelPodTemplateHash = appsv1.DefaultDeploymentUniqueLabelKey // "pod-template-hash"
	AnnotationRevision   = "deployment.kubernetes.io/revision"
)

// TemplateHash names a pod template the way Kubernetes does: fnv32a of the
// template, rendered with rand.SafeEncodeString.
func TemplateHash(t *corev1.PodTemplateSpec, collisions *int32) string {
	h := fnv.New32a()
	data, _ := json.Marshal(t)
	h.Write(data)
	if collisions != nil {
		fmt.Fprint(h, *collisions)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// sameTemplate compares a ReplicaSet's template with a Deployment's, ignoring the
// pod-template-hash label the ReplicaSet carries.
func sameTemplate(rsT, dT *corev1.PodTemplateSpec) bool {
	a, b := rsT.DeepCopy(), dT.DeepCopy()
	delete(a.Labels, LabelPodTemplateHash)
	delete(b.Labels, LabelPodTemplateHash)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

// fenceposts resolves maxSurge (rounded up) and maxUnavailable (rounded down)
// against replicas; both zero means one may be unavailable.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int32) {
	want := int(derefInt32(d.Spec.Replicas))
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil {
		return 1, 0
	}
	def := intstr.FromString("25%")
	ms, mu := ru.MaxSurge, ru.MaxUnavailable
	if ms == nil {
		ms = &def
	}
	if mu == nil {
		mu = &def
	}
	s, _ := intstr.GetScaledValueFromIntOrPercent(ms, want, true)
	u, _ := intstr.GetScaledValueFromIntOrPercent(mu, want, false)
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(min(u, want))
}

func specSum(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range sets {
		n += derefInt32(rs.Spec.Replicas)
	}
	return n
}

func availableSum(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range sets {
		n += rs.Status.AvailableReplicas
	}
	return n
}

// newReplicas is the new ReplicaSet's size for this rolling-update step: grow it
// as far as maxSurge allows, never past spec.replicas.
func newReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	want := derefInt32(d.Spec.Replicas)
	cur := derefInt32(newRS.Spec.Replicas)
	surge, _ := fenceposts(d)
	total := specSum(all)
	if total >= want+surge {
		return cur
	}
	up := min(want+surge-total, want-cur)
	return cur + max(up, 0)
}

// scaleDownOld returns the new sizes of the old ReplicaSets for this step: first
// drop their unavailable pods, then scale down as long as at least
// spec.replicas - maxUnavailable pods stay available. Oldest sets shrink first.
func scaleDownOld(d *appsv1.Deployment, all, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) map[string]int32 {
	want := derefInt32(d.Spec.Replicas)
	_, unavailable := fenceposts(d)
	minAvailable := want - unavailable
	newUnavailable := derefInt32(newRS.Spec.Replicas) - newRS.Status.AvailableReplicas
	maxDown := specSum(all) - minAvailable - newUnavailable
	out := map[string]int32{}
	if maxDown <= 0 {
		return out
	}
	sorted := append([]*appsv1.ReplicaSet(nil), old...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].CreationTimestamp.Before(&sorted[j].CreationTimestamp) })
	size := map[string]int32{}
	for _, rs := range sorted {
		size[rs.Name] = derefInt32(rs.Spec.Replicas)
	}
	// Unhealthy pods of old sets go first: they serve nothing.
	for _, rs := range sorted {
		if maxDown <= 0 {
			break
		}
		bad := min(size[rs.Name]-rs.Status.AvailableReplicas, maxDown)
		if bad > 0 {
			size[rs.Name] -= bad
			maxDown -= bad
		}
	}
	avail := availableSum(all)
	down := min(avail-minAvailable, maxDown)
	for _, rs := range sorted {
		if down <= 0 {
			break
		}
		n := min(size[rs.Name], down)
		size[rs.Name] -= n
		down -= n
	}
	for _, rs := range sorted {
		if size[rs.Name] != derefInt32(rs.Spec.Replicas) {
			out[rs.Name] = size[rs.Name]
		}
	}
	return out
}

func revision(rs *appsv1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.Annotations[AnnotationRevision], 10, 64)
	return n
}
