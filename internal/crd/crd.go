// Package crd turns CustomResourceDefinitions into served resources: the CRD's
// own rules (defaults, validation, accepted names) and, for each established CRD,
// a registry.Resource whose strategy prunes, defaults and validates objects by
// the CRD's structural schema and CEL rules, prints its additionalPrinterColumns
// and publishes its OpenAPI v3 document. The schema work is done by
// k8s.io/apiextensions-apiserver's own packages, so custom resources behave as
// they do in Kubernetes; this package only wires them to svcnet's registry.
package crd

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/util/jsonpath"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/svcnet/svcnet/internal/registry"
)

// CleanupFinalizer holds a CRD until its objects are deleted (Kubernetes' name).
const CleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io"

// version is what serving one version of a CRD needs.
type version struct {
	name       string
	structural *structuralschema.Structural // nil without a schema
	strategy   registry.Strategy
	table      func(ctx context.Context, list *unstructured.UnstructuredList) (*metav1.Table, error)
	doc        *spec3.OpenAPI // the version's OpenAPI v3 document
	openapi    []byte         // doc as JSON, as served
}

// Build makes the served resource of an established CRD. The storage version is
// the resource's version; other served versions are converted with the None
// strategy (only apiVersion changes), as Kubernetes does without a webhook.
func Build(crd *apiextensionsv1.CustomResourceDefinition) (*registry.Resource, error) {
	storage := ""
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			storage = v.Name
		}
	}
	if storage == "" {
		return nil, fmt.Errorf("CRD %s has no storage version", crd.Name)
	}
	names := crd.Status.AcceptedNames
	if names.Plural == "" {
		names = crd.Spec.Names
	}
	versions := map[string]*version{}
	for i := range crd.Spec.Versions {
		v, err := buildVersion(crd, &crd.Spec.Versions[i])
		if err != nil {
			return nil, fmt.Errorf("CRD %s version %s: %w", crd.Name, crd.Spec.Versions[i].Name, err)
		}
		versions[v.name] = v
	}
	st := versions[storage]
	singular := names.Singular
	if singular == "" {
		singular = names.Plural
	}
	custom := &registry.Custom{
		CRD: crd.Name, CRDUID: crd.UID, Terminating: crd.DeletionTimestamp != nil,
		Prune: func(u *unstructured.Unstructured, ver string) []string {
			v := versions[ver]
			if v == nil || crd.Spec.PreserveUnknownFields {
				return nil
			}
			return prune(u, v.structural)
		},
		Default: func(u *unstructured.Unstructured, ver string) {
			if v := versions[ver]; v != nil && v.structural != nil {
				structuraldefaulting.Default(u.Object, v.structural)
			}
		},
		Table:         st.table,
		OpenAPI:       map[string][]byte{},
		TypeConverter: typeConverter(crd, versions),
	}
	res := &registry.Resource{
		Group: crd.Spec.Group, Version: storage, Resource: names.Plural, Singular: singular,
		Kind: names.Kind, ListKind: names.ListKind, Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		ShortNames: names.ShortNames, Categories: names.Categories,
		New:      func() runtime.Object { return &unstructured.Unstructured{} },
		NewList:  func() runtime.Object { return &unstructured.UnstructuredList{} },
		Strategy: st.strategy,
		Custom:   custom,
	}
	for _, cv := range crd.Spec.Versions {
		v := versions[cv.Name]
		if cv.Served {
			custom.OpenAPI[cv.Name] = v.openapi
		}
		if cv.Name == storage {
			if cv.Subresources != nil && cv.Subresources.Status != nil {
				res.HasStatus = true
			}
			if cv.Subresources != nil && cv.Subresources.Scale != nil {
				custom.Scale = cv.Subresources.Scale.DeepCopy()
			}
			res.Fields = selectableFields(cv.SelectableFields)
			continue
		}
		if !cv.Served {
			continue
		}
		gv := schema.GroupVersion{Group: crd.Spec.Group, Version: cv.Name}
		storageGV := schema.GroupVersion{Group: crd.Spec.Group, Version: storage}
		res.Legacy = append(res.Legacy, registry.Legacy{
			GroupVersion: gv,
			New:          func() runtime.Object { return &unstructured.Unstructured{} },
			ToStorage: func(o runtime.Object) (runtime.Object, error) {
				u := o.(*unstructured.Unstructured)
				u.SetAPIVersion(storageGV.String())
				return u, nil
			},
			FromStorage: func(o runtime.Object) (runtime.Object, error) {
				u := o.(*unstructured.Unstructured).DeepCopy()
				u.SetAPIVersion(gv.String())
				custom.Default(u, gv.Version)
				return u, nil
			},
			Warning: deprecationWarning(gv, names.Kind, cv),
		})
	}
	return res, nil
}

// deprecationWarning is the Warning header of a deprecated version, as Kubernetes words it.
func deprecationWarning(gv schema.GroupVersion, kind string, cv apiextensionsv1.CustomResourceDefinitionVersion) string {
	if !cv.Deprecated {
		return ""
	}
	if cv.DeprecationWarning != nil {
		return *cv.DeprecationWarning
	}
	return fmt.Sprintf("%s %s is deprecated", gv, kind)
}

func buildVersion(crd *apiextensionsv1.CustomResourceDefinition, cv *apiextensionsv1.CustomResourceDefinitionVersion) (*version, error) {
	v := &version{name: cv.Name}
	kind := schema.GroupVersionKind{Group: crd.Spec.Group, Version: cv.Name, Kind: crd.Spec.Names.Kind}
	var props *apiextensionsinternal.JSONSchemaProps
	if val := cv.Schema; val != nil {
		internal := &apiextensionsinternal.CustomResourceValidation{}
		if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(val, internal, nil); err != nil {
			return nil, fmt.Errorf("convert schema: %w", err)
		}
		props = internal.OpenAPIV3Schema
		if props != nil {
			s, err := structuralschema.NewStructural(props)
			if err != nil && !crd.Spec.PreserveUnknownFields {
				return nil, fmt.Errorf("schema is not structural: %w", err)
			}
			if s != nil {
				s = s.DeepCopy()
				if err := structuraldefaulting.PruneDefaults(s); err != nil {
					return nil, fmt.Errorf("prune defaults: %w", err)
				}
			}
			v.structural = s
		}
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		return nil, fmt.Errorf("schema validator: %w", err)
	}
	var statusSpec *apiextensionsinternal.CustomResourceSubresourceStatus
	var statusValidator apiservervalidation.SchemaValidator
	var scaleSpec *apiextensionsinternal.CustomResourceSubresourceScale
	sub := cv.Subresources
	if sub != nil && sub.Status != nil {
		statusSpec = &apiextensionsinternal.CustomResourceSubresourceStatus{}
		if props != nil {
			if ss, ok := props.Properties["status"]; ok {
				if statusValidator, _, err = apiservervalidation.NewSchemaValidator(&ss); err != nil {
					return nil, fmt.Errorf("status validator: %w", err)
				}
			}
		}
	}
	if sub != nil && sub.Scale != nil {
		scaleSpec = &apiextensionsinternal.CustomResourceSubresourceScale{}
		if err := apiextensionsv1.Convert_v1_CustomResourceSubresourceScale_To_apiextensions_CustomResourceSubresourceScale(sub.Scale, scaleSpec, nil); err != nil {
			return nil, fmt.Errorf("convert scale: %w", err)
		}
	}
	lib := customresource.NewStrategy(nil, crd.Spec.Scope == apiextensionsv1.NamespaceScoped, kind, validator, statusValidator,
		v.structural, statusSpec, scaleSpec, cv.SelectableFields)
	v.strategy = objectStrategy{lib: lib}
	cols := cv.AdditionalPrinterColumns
	if len(crd.Spec.Versions) > 0 && len(cols) == 0 {
		cols = []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}}
	}
	conv, err := tableconvertor.New(cols)
	if err != nil {
		return nil, fmt.Errorf("additionalPrinterColumns: %w", err)
	}
	v.table = func(ctx context.Context, list *unstructured.UnstructuredList) (*metav1.Table, error) {
		return conv.ConvertToTable(ctx, list, nil)
	}
	if v.doc, err = builder.BuildOpenAPIV3(crd, cv.Name, builder.Options{}); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if v.openapi, err = json.Marshal(v.doc); err != nil {
		return nil, err
	}
	return v, nil
}

// prune drops unknown fields and coerces metadata as Kubernetes' decoder does,
// returning the dropped paths (for fieldValidation Warn and Strict).
func prune(u *unstructured.Unstructured, s *structuralschema.Structural) []string {
	kind, apiVersion := u.GetKind(), u.GetAPIVersion()
	meta, found, unknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u.Object, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return []string{err.Error()}
	}
	if s != nil {
		unknown = append(unknown, structuralpruning.PruneWithOptions(u.Object, s, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
		structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u.Object, s)
		if err, paths := schemaobjectmeta.CoerceWithOptions(nil, u.Object, s, false, schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true}); err == nil {
			unknown = append(unknown, paths...)
		}
	}
	u.SetKind(kind)
	u.SetAPIVersion(apiVersion)
	if found {
		_ = schemaobjectmeta.SetObjectMeta(u.Object, meta)
	}
	return unknown
}

// selectableFields returns the CRD's selectableFields as field selector values.
func selectableFields(sfs []apiextensionsv1.SelectableField) func(runtime.Object) fields.Set {
	type path struct {
		name string
		jp   *jsonpath.JSONPath
	}
	var paths []path
	for _, sf := range sfs {
		jp := jsonpath.New("selectableField").AllowMissingKeys(true)
		if err := jp.Parse("{" + sf.JSONPath + "}"); err == nil {
			paths = append(paths, path{name: sf.JSONPath[1:], jp: jp})
		}
	}
	if len(paths) == 0 {
		return nil
	}
	return func(o runtime.Object) fields.Set {
		set := fields.Set{}
		u, ok := o.(*unstructured.Unstructured)
		for _, p := range paths {
			set[p.name] = ""
			if !ok || u.Object == nil {
				continue
			}
			if vals, err := p.jp.FindResults(u.Object); err == nil && len(vals) == 1 && len(vals[0]) == 1 {
				set[p.name] = fmt.Sprint(vals[0][0].Interface())
			}
		}
		return set
	}
}

// typeConverter gives server-side apply the CRD's structure, falling back to one
// deduced from the objects (every map granular, lists atomic) when the schema
// cannot be turned into one. It reads the versions' OpenAPI documents.
func typeConverter(crd *apiextensionsv1.CustomResourceDefinition, versions map[string]*version) managedfields.TypeConverter {
	models := map[string]*spec.Schema{}
	for _, v := range versions {
		if v.doc.Components == nil {
			return managedfields.NewDeducedTypeConverter()
		}
		maps.Copy(models, v.doc.Components.Schemas)
	}
	if len(models) == 0 {
		return managedfields.NewDeducedTypeConverter()
	}
	tc, err := managedfields.NewTypeConverter(models, crd.Spec.PreserveUnknownFields)
	if err != nil {
		return managedfields.NewDeducedTypeConverter()
	}
	return tc
}
