package cri

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestStorageVerdict(t *testing.T) {
	const mi = 1 << 20
	limit := func(q string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse(q)}}
	}
	size := resource.MustParse("1Mi")
	p := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "a", Resources: limit("5Mi")}, {Name: "b", Resources: limit("3Mi")}, {Name: "free"}},
		Volumes:    []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &size}}}},
	}}
	for _, tc := range []struct {
		name string
		u    storageUsage
		want string
	}{
		{"within limits", storageUsage{containers: map[string]int64{"a": 4 * mi, "b": 2 * mi}}, ""},
		{"emptyDir over its sizeLimit", storageUsage{emptyDirs: map[string]int64{"scratch": 2 * mi}},
			`Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". `},
		{"pod over the containers' total (the unlimited one counts)", storageUsage{containers: map[string]int64{"a": 4 * mi, "free": 5 * mi}},
			"Pod ephemeral local storage usage exceeds the total limit of containers 8Mi. "},
		{"one container over its own", storageUsage{containers: map[string]int64{"b": 4 * mi}},
			`Container b exceeded its local ephemeral storage limit "3Mi". `},
	} {
		if got := storageVerdict(p, tc.u); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if limitedStorage(&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x"}}}}) {
		t.Error("a pod without limits is not measured")
	}
	st := corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	evictedStatus(&st, "m")
	if st.Phase != corev1.PodFailed || st.Reason != "Evicted" || st.Message != "m" || st.Conditions[0].Status != corev1.ConditionFalse {
		t.Errorf("evicted status %+v", st)
	}
}
