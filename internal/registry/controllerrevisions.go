package registry

import (
	"bytes"
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// controllerRevisionResources serves apps/v1 ControllerRevision: the immutable
// snapshots of a DaemonSet's or StatefulSet's template their controllers keep
// (history, rollback).
func controllerRevisionResources() []*Resource {
	return []*Resource{
		{Group: "apps", Version: "v1", Resource: "controllerrevisions", Singular: "controllerrevision", Kind: "ControllerRevision",
			Namespaced: true,
			New:        func() runtime.Object { return &appsv1.ControllerRevision{} },
			NewList:    func() runtime.Object { return &appsv1.ControllerRevisionList{} },
			Strategy: Generic{Namespaced: true, Name: apivalidation.NameIsDNSSubdomain, Check: validateControllerRevision,
				CheckUpdate: validateControllerRevisionUpdate}},
	}
}

// validateControllerRevision checks a ControllerRevision as Kubernetes does:
// data is a JSON object, the revision is not negative.
func validateControllerRevision(obj runtime.Object) field.ErrorList {
	cr := obj.(*appsv1.ControllerRevision)
	var errs field.ErrorList
	var v any
	fp := field.NewPath("data")
	switch err := json.Unmarshal(cr.Data.Raw, &v); {
	case cr.Data.Raw == nil || err == nil && v == nil:
		errs = append(errs, field.Required(fp, "data is mandatory"))
	case err != nil:
		errs = append(errs, field.Invalid(fp, "<value omitted>", "error parsing data: "+err.Error()))
	default:
		if _, ok := v.(map[string]any); !ok {
			errs = append(errs, field.Required(fp, "data must be a valid JSON object"))
		}
	}
	if cr.Revision < 0 {
		errs = append(errs, field.Invalid(field.NewPath("revision"), cr.Revision, "must be greater than or equal to 0"))
	}
	return errs
}

// validateControllerRevisionUpdate keeps data immutable, as Kubernetes does.
func validateControllerRevisionUpdate(obj, old runtime.Object) field.ErrorList {
	if !bytes.Equal(obj.(*appsv1.ControllerRevision).Data.Raw, old.(*appsv1.ControllerRevision).Data.Raw) {
		return field.ErrorList{field.Invalid(field.NewPath("data"), "<value omitted>", "field is immutable")}
	}
	return nil
}
