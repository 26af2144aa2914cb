package registry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestVolumeKinds(t *testing.T) {
	core := func(r string) Strategy { return Default().Get(schema.GroupResource{Resource: r}).Strategy }
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-web-0", Namespace: "ns"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}
	for _, tc := range []struct {
		resource string
		obj      runtime.Object
		want     string
	}{
		{"persistentvolumeclaims", pvc, ""},
		{"persistentvolumeclaims", func() runtime.Object { c := pvc.DeepCopy(); c.Spec.AccessModes = nil; return c }(), "spec.accessModes: Required value"},
		{"persistentvolumeclaims", func() runtime.Object { c := pvc.DeepCopy(); c.Spec.Resources.Requests = nil; return c }(), "spec.resources[storage]: Required value"},
		{"persistentvolumes", pv, ""},
		{"persistentvolumes", func() runtime.Object { v := pv.DeepCopy(); v.Spec.Capacity = nil; return v }(), "spec.capacity: Required value"},
	} {
		s := core(tc.resource)
		s.PrepareForCreate(tc.obj)
		got := s.Validate(tc.obj).ToAggregate()
		if tc.want == "" && got != nil || tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.resource, got, tc.want)
		}
	}
	if pvc.Status.Phase != corev1.ClaimPending || *pvc.Spec.VolumeMode != corev1.PersistentVolumeFilesystem ||
		pv.Status.Phase != corev1.VolumePending || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("defaults: claim %s %v, volume %s %s", pvc.Status.Phase, *pvc.Spec.VolumeMode, pv.Status.Phase, pv.Spec.PersistentVolumeReclaimPolicy)
	}
}
