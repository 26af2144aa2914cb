package registry

import (
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// volumeResources serves core/v1 PersistentVolumeClaim and PersistentVolume as
// API objects (stored, listed, watched, deleted: what StatefulSet tooling and
// the e2e framework read and clean up). svcnet provisions and binds no volumes:
// a claim stays Pending until something else binds it.
func volumeResources() []*Resource {
	return []*Resource{
		{Version: "v1", Resource: "persistentvolumeclaims", Singular: "persistentvolumeclaim", Kind: "PersistentVolumeClaim",
			Namespaced: true, ShortNames: []string{"pvc"}, HasStatus: true, HasSpec: true,
			New:      func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
			NewList:  func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
			Strategy: Generic{Namespaced: true, Name: apivalidation.NameIsDNSSubdomain, Default: defaultPVC, Check: validatePVC}},
		{Version: "v1", Resource: "persistentvolumes", Singular: "persistentvolume", Kind: "PersistentVolume",
			ShortNames: []string{"pv"}, HasStatus: true, HasSpec: true,
			New:      func() runtime.Object { return &corev1.PersistentVolume{} },
			NewList:  func() runtime.Object { return &corev1.PersistentVolumeList{} },
			Strategy: Generic{Name: apivalidation.NameIsDNSSubdomain, Default: defaultPV, Check: validatePV}},
	}
}

func defaultPVC(obj runtime.Object) {
	c := obj.(*corev1.PersistentVolumeClaim)
	if c.Spec.VolumeMode == nil {
		m := corev1.PersistentVolumeFilesystem
		c.Spec.VolumeMode = &m
	}
	if c.Status.Phase == "" {
		c.Status.Phase = corev1.ClaimPending
	}
}

func defaultPV(obj runtime.Object) {
	v := obj.(*corev1.PersistentVolume)
	if v.Spec.PersistentVolumeReclaimPolicy == "" {
		v.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if v.Spec.VolumeMode == nil {
		m := corev1.PersistentVolumeFilesystem
		v.Spec.VolumeMode = &m
	}
	if v.Status.Phase == "" {
		v.Status.Phase = corev1.VolumePending
	}
}

// validatePVC checks what Kubernetes requires of every claim: access modes and
// a storage request (unless it names a data source that sizes it).
func validatePVC(obj runtime.Object) field.ErrorList {
	c := obj.(*corev1.PersistentVolumeClaim)
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if len(c.Spec.AccessModes) == 0 {
		errs = append(errs, field.Required(spec.Child("accessModes"), "at least 1 access mode is required"))
	}
	if _, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok && c.Spec.DataSource == nil && c.Spec.DataSourceRef == nil {
		errs = append(errs, field.Required(spec.Child("resources").Key(string(corev1.ResourceStorage)), ""))
	}
	return errs
}

// validatePV checks a volume's capacity and access modes, as Kubernetes does.
func validatePV(obj runtime.Object) field.ErrorList {
	v := obj.(*corev1.PersistentVolume)
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if len(v.Spec.AccessModes) == 0 {
		errs = append(errs, field.Required(spec.Child("accessModes"), "must specify at least 1 access mode"))
	}
	if _, ok := v.Spec.Capacity[corev1.ResourceStorage]; !ok || len(v.Spec.Capacity) > 1 {
		errs = append(errs, field.Required(spec.Child("capacity"), "must specify storage capacity"))
	}
	return errs
}
