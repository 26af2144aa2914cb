package crd

import (
	"context"
	"fmt"
	"slices"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/svcnet/svcnet/internal/registry"
)

// scheme converts CRDs between v1 and the internal version the validation works on.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	install.Install(s)
	return s
}()

func toInternal(crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsinternal.CustomResourceDefinition {
	out := &apiextensionsinternal.CustomResourceDefinition{}
	if err := scheme.Convert(crd, out, nil); err != nil {
		panic(fmt.Sprintf("convert CRD %s: %v", crd.Name, err))
	}
	return out
}

func fromInternal(in *apiextensionsinternal.CustomResourceDefinition, out *apiextensionsv1.CustomResourceDefinition) {
	if err := scheme.Convert(in, out, nil); err != nil {
		panic(fmt.Sprintf("convert CRD %s: %v", in.Name, err))
	}
}

// DefinitionStrategy is the registry strategy of CustomResourceDefinitions:
// Kubernetes' defaults and validation (structural schemas, names, versions,
// printer columns, CEL rules) from apiextensions-apiserver.
type DefinitionStrategy struct{}

var _ registry.Strategy = DefinitionStrategy{}

var lib = customresourcedefinition.NewStrategy(scheme)

func (DefinitionStrategy) PrepareForCreate(obj runtime.Object) {
	crd := obj.(*apiextensionsv1.CustomResourceDefinition)
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
	in := toInternal(crd)
	lib.PrepareForCreate(context.Background(), in)
	fromInternal(in, crd)
	if !slices.Contains(crd.Finalizers, CleanupFinalizer) {
		crd.Finalizers = append(crd.Finalizers, CleanupFinalizer)
	}
}

func (DefinitionStrategy) Validate(obj runtime.Object) field.ErrorList {
	crd := obj.(*apiextensionsv1.CustomResourceDefinition)
	return validation.ValidateCustomResourceDefinition(context.Background(), toInternal(crd))
}

func (DefinitionStrategy) PrepareForUpdate(obj, old runtime.Object) {
	crd := obj.(*apiextensionsv1.CustomResourceDefinition)
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
	in, oldIn := toInternal(crd), toInternal(old.(*apiextensionsv1.CustomResourceDefinition))
	lib.PrepareForUpdate(context.Background(), in, oldIn)
	*crd = apiextensionsv1.CustomResourceDefinition{}
	fromInternal(in, crd)
}

func (DefinitionStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	crd, oldCRD := obj.(*apiextensionsv1.CustomResourceDefinition), old.(*apiextensionsv1.CustomResourceDefinition)
	return validation.ValidateCustomResourceDefinitionUpdate(context.Background(), toInternal(crd), toInternal(oldCRD))
}

// Condition types and reasons, as Kubernetes sets them.
const (
	reasonNoConflicts   = "NoConflicts"
	reasonNameConflict  = "NameConflict"
	reasonInitialNames  = "InitialNamesAccepted"
	reasonNotAccepted   = "NotAccepted"
	reasonDeletionInPro = "InstanceDeletionInProgress"
)

// Status computes a CRD's status from the others and the built-in resources: the
// accepted names (the spec's when nothing else in the group uses them), and the
// NamesAccepted, Established and Terminating conditions. now stamps changed
// conditions. Pure: the caller writes the result.
func Status(crd *apiextensionsv1.CustomResourceDefinition, others []*apiextensionsv1.CustomResourceDefinition,
	builtin func(schema.GroupResource) bool, now metav1.Time) apiextensionsv1.CustomResourceDefinitionStatus {
	st := *crd.Status.DeepCopy()
	names := crd.Spec.Names
	conflict := ""
	if builtin(schema.GroupResource{Group: crd.Spec.Group, Resource: names.Plural}) {
		conflict = fmt.Sprintf("%q is already in use", names.Plural)
	}
	for _, o := range others {
		if o.Name == crd.Name || o.Spec.Group != crd.Spec.Group {
			continue
		}
		if conflict != "" {
			break
		}
		theirs := o.Status.AcceptedNames
		switch {
		case theirs.Plural != "" && theirs.Plural == names.Plural:
			conflict = fmt.Sprintf("%q is already in use", names.Plural)
		case theirs.Singular != "" && (theirs.Singular == names.Singular || theirs.Plural == names.Singular):
			conflict = fmt.Sprintf("%q is already in use", names.Singular)
		case theirs.Kind != "" && theirs.Kind == names.Kind:
			conflict = fmt.Sprintf("%q is already in use", names.Kind)
		case theirs.ListKind != "" && theirs.ListKind == names.ListKind:
			conflict = fmt.Sprintf("%q is already in use", names.ListKind)
		default:
			for _, sn := range names.ShortNames {
				if slices.Contains(theirs.ShortNames, sn) {
					conflict = fmt.Sprintf("%q is already in use", sn)
				}
			}
		}
	}
	accepted := apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.NamesAccepted,
		Status: apiextensionsv1.ConditionTrue, Reason: reasonNoConflicts, Message: "no conflicts found"}
	if conflict != "" {
		accepted.Status, accepted.Reason, accepted.Message = apiextensionsv1.ConditionFalse, reasonNameConflict, conflict
	} else {
		st.AcceptedNames = names
	}
	setCondition(&st, accepted, now)
	if conflict == "" || isTrue(&st, apiextensionsv1.Established) {
		setCondition(&st, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established,
			Status: apiextensionsv1.ConditionTrue, Reason: reasonInitialNames, Message: "the initial names have been accepted"}, now)
	} else {
		setCondition(&st, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established,
			Status: apiextensionsv1.ConditionFalse, Reason: reasonNotAccepted, Message: "not all names are accepted"}, now)
	}
	if crd.DeletionTimestamp != nil {
		setCondition(&st, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Terminating,
			Status: apiextensionsv1.ConditionTrue, Reason: reasonDeletionInPro, Message: "CustomResource deletion is in progress"}, now)
	}
	return st
}

// Established reports whether a CRD's resources are served.
func Established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	return isTrue(&crd.Status, apiextensionsv1.Established)
}

func isTrue(st *apiextensionsv1.CustomResourceDefinitionStatus, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// setCondition replaces the condition of c's type, keeping its transition time
// when the status did not change.
func setCondition(st *apiextensionsv1.CustomResourceDefinitionStatus, c apiextensionsv1.CustomResourceDefinitionCondition, now metav1.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type != c.Type {
			continue
		}
		c.LastTransitionTime = st.Conditions[i].LastTransitionTime
		if st.Conditions[i].Status != c.Status {
			c.LastTransitionTime = now
		}
		st.Conditions[i] = c
		return
	}
	c.LastTransitionTime = now
	st.Conditions = append(st.Conditions, c)
}

// DefinitionResource is the served customresourcedefinitions resource.
func DefinitionResource() *registry.Resource {
	return &registry.Resource{Group: apiextensionsv1.GroupName, Version: "v1", Resource: "customresourcedefinitions",
		Singular: "customresourcedefinition", Kind: "CustomResourceDefinition", ShortNames: []string{"crd", "crds"},
		Categories: []string{"api-extensions"}, HasStatus: true,
		New:      func() runtime.Object { return &apiextensionsv1.CustomResourceDefinition{} },
		NewList:  func() runtime.Object { return &apiextensionsv1.CustomResourceDefinitionList{} },
		Strategy: DefinitionStrategy{}}
}
