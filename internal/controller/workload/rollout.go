package workload

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
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
	// the Deployment's replicas and replicas+maxSurge when the set was last
	// sized: a Deployment scaled since then is scaled proportionally
	AnnotationDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	AnnotationMaxReplicas     = "deployment.kubernetes.io/max-replicas"
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

// scalingEvent reports whether d was scaled since its active sets were sized
// (their desired-replicas annotation differs from spec.replicas).
func scalingEvent(d *appsv1.Deployment, all []*appsv1.ReplicaSet) bool {
	want := derefInt32(d.Spec.Replicas)
	for _, rs := range all {
		if derefInt32(rs.Spec.Replicas) == 0 {
			continue
		}
		if v, err := strconv.ParseInt(rs.Annotations[AnnotationDesiredReplicas], 10, 32); err == nil && int32(v) != want {
			return true
		}
	}
	return false
}

// proportionalSizes spreads a scaled rolling Deployment's new size (replicas
// + maxSurge) over its active ReplicaSets in proportion to their sizes, as
// Kubernetes does: each set's share is rounded, the leftover goes to the
// largest (newer first when scaling up, older first when scaling down).
func proportionalSizes(d *appsv1.Deployment, all []*appsv1.ReplicaSet) map[string]int32 {
	var active []*appsv1.ReplicaSet
	for _, rs := range all {
		if derefInt32(rs.Spec.Replicas) > 0 {
			active = append(active, rs)
		}
	}
	want := derefInt32(d.Spec.Replicas)
	surge, _ := fenceposts(d)
	allowed := int32(0)
	if want > 0 {
		allowed = want + surge
	}
	toAdd := allowed - specSum(active)
	sort.SliceStable(active, func(i, j int) bool {
		a, b := derefInt32(active[i].Spec.Replicas), derefInt32(active[j].Spec.Replicas)
		if a != b {
			return a > b
		}
		if toAdd > 0 {
			return active[j].CreationTimestamp.Before(&active[i].CreationTimestamp)
		}
		return active[i].CreationTimestamp.Before(&active[j].CreationTimestamp)
	})
	out := map[string]int32{}
	added := int32(0)
	for _, rs := range active {
		size := derefInt32(rs.Spec.Replicas)
		out[rs.Name] = size
		if toAdd == 0 || toAdd == added {
			continue
		}
		var frac int32
		if want == 0 {
			frac = -size
		} else {
			before, err := strconv.ParseInt(rs.Annotations[AnnotationMaxReplicas], 10, 32)
			if err != nil || before == 0 {
				before = int64(d.Status.Replicas)
			}
			if before == 0 {
				continue
			}
			frac = int32(math.Round(float64(size)*float64(want+surge)/float64(before))) - size
		}
		if toAdd > 0 {
			frac = min(frac, toAdd-added)
		} else {
			frac = max(frac, toAdd-added)
		}
		out[rs.Name] += frac
		added += frac
	}
	if len(active) > 0 && toAdd != 0 {
		out[active[0].Name] = max(out[active[0].Name]+toAdd-added, 0)
	}
	return out
}
