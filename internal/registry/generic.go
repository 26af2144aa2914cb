package registry

import (
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Generic is a Strategy built from functions, for kinds whose rules are simple.
type Generic struct {
	Namespaced  bool
	Name        apivalidation.ValidateNameFunc
	Default     func(obj runtime.Object)                      // may be nil
	Check       func(obj runtime.Object) field.ErrorList      // may be nil
	CheckUpdate func(obj, old runtime.Object) field.ErrorList // may be nil
}

var _ Strategy = Generic{}

func objectMeta(obj runtime.Object) *metav1.ObjectMeta {
	return obj.(metav1.ObjectMetaAccessor).GetObjectMeta().(*metav1.ObjectMeta)
}

// PrepareForCreate implements Strategy.
func (g Generic) PrepareForCreate(obj runtime.Object) {
	if g.Default != nil {
		g.Default(obj)
	}
}

// PrepareForUpdate implements Strategy.
func (g Generic) PrepareForUpdate(obj, _ runtime.Object) {
	if g.Default != nil {
		g.Default(obj)
	}
}

// Validate implements Strategy.
func (g Generic) Validate(obj runtime.Object) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(objectMeta(obj), g.Namespaced, g.Name, field.NewPath("metadata"))
	if g.Check != nil {
		errs = append(errs, g.Check(obj)...)
	}
	return errs
}

// ValidateUpdate implements Strategy.
func (g Generic) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(objectMeta(obj), objectMeta(old), field.NewPath("metadata"))
	if g.Check != nil {
		errs = append(errs, g.Check(obj)...)
	}
	if g.CheckUpdate != nil {
		errs = append(errs, g.CheckUpdate(obj, old)...)
	}
	return errs
}
