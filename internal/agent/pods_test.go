package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestWithOthers(t *testing.T) {
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse}
	stale := corev1.PodCondition{Type: "k8s.io/blue-green", Status: corev1.ConditionFalse}
	fresh := corev1.PodCondition{Type: "k8s.io/blue-green", Status: corev1.ConditionTrue}
	got := withOthers([]corev1.PodCondition{ready, stale}, []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, fresh})
	want := []corev1.PodCondition{ready, fresh}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("withOthers: %+v, want %+v (the kubelet's computed, the others as the API has them)", got, want)
	}
}
