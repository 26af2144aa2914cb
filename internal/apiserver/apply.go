package apiserver

// Server-side apply and managedFields. Every write records which field manager
// owns which fields (metadata.managedFields), and PATCH with
// application/apply-patch+yaml merges a partial object into the stored one on
// behalf of a manager, reporting conflicts with other managers. The merging and
// bookkeeping are structured-merge-diff's, through apimachinery's managedfields
// package, as in Kubernetes; this file supplies the per-resource pieces it needs
// (type converter, version converter, reset fields) and the request plumbing.

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsapply "k8s.io/apiextensions-apiserver/pkg/client/applyconfiguration"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/svcnet/svcnet/internal/registry"
)

// serverManager is the field manager of the API server's own writes (the
// kubernetes Service and Endpoints, namespace finalization), as in Kubernetes.
const serverManager = "kube-apiserver"

// builtinTypeConverter knows the schemas of every k8s.io/api kind. Parsing them
// takes a while, so it is built once, on first use.
var builtinTypeConverter = sync.OnceValue(func() managedfields.TypeConverter {
	return applyconfigurations.NewTypeConverter(Scheme)
})

// apiextensionsTypeConverter knows CustomResourceDefinitions, which client-go's does not.
var apiextensionsTypeConverter = sync.OnceValue(func() managedfields.TypeConverter {
	return apiextensionsapply.NewTypeConverter(Scheme)
})

// typeConverter returns the structured-merge-diff schema source for res.
func (s *Server) typeConverter(res *registry.Resource) managedfields.TypeConverter {
	if res.Custom != nil {
		return res.Custom.TypeConverter // from the CRD's schema
	}
	if isUnstructured(res) {
		return managedfields.NewDeducedTypeConverter()
	}
	if res.Group == apiextensionsv1.GroupName {
		return apiextensionsTypeConverter()
	}
	return builtinTypeConverter()
}

func isUnstructured(res *registry.Resource) bool {
	_, ok := res.New().(*unstructured.Unstructured)
	return ok
}

// fieldManagerKey names one field manager: the resource, the version the
// client speaks and the subresource written.
type fieldManagerKey struct {
	res *registry.Resource
	gv  schema.GroupVersion
	sub string
}

// fieldManagers caches field managers by fieldManagerKey; they are immutable
// once built and cost a schema lookup to build.
type fieldManagers struct{ sync.Map }

// forget drops the field managers of a resource no longer served (a CRD's
// previous build).
func (m *fieldManagers) forget(res *registry.Resource) {
	m.Range(func(k, _ any) bool {
		if k.(fieldManagerKey).res == res {
			m.Delete(k)
		}
		return true
	})
}

// fieldManager returns the (cached) field manager for writes to res in version gv.
func (s *Server) fieldManager(res *registry.Resource, gv schema.GroupVersion, sub string) (*managedfields.FieldManager, error) {
	if gv.Empty() {
		gv = res.GroupVersion()
	}
	key := fieldManagerKey{res: res, gv: gv, sub: sub}
	if fm, ok := s.managers.Load(key); ok {
		return fm.(*managedfields.FieldManager), nil
	}
	conv := versionConverter{res: res}
	newFM := managedfields.NewDefaultFieldManager
	if isUnstructured(res) {
		newFM = managedfields.NewDefaultCRDFieldManager
	}
	fm, err := newFM(s.typeConverter(res), conv, conv, conv, gv.WithKind(res.Kind), res.GroupVersion(), sub, resetFields(res, sub))
	if err != nil {
		return nil, err
	}
	actual, _ := s.managers.LoadOrStore(key, fm)
	return actual.(*managedfields.FieldManager), nil
}

// resetFields lists, per version, the fields a write may not set and so never
// owns: status through the main resource and the rest through /status, as the
// status-subresource strategies of Kubernetes reset them (see prepareUpdate).
func resetFields(res *registry.Resource, sub string) map[fieldpath.APIVersion]fieldpath.Filter {
	var set *fieldpath.Set
	switch {
	case !res.HasStatus:
		return nil
	case sub == "":
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
	case sub == "status":
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"),
			fieldpath.MakePathOrDie("metadata", "ownerReferences"), fieldpath.MakePathOrDie("metadata", "finalizers"))
	default:
		return nil
	}
	out := map[fieldpath.APIVersion]fieldpath.Filter{fieldpath.APIVersion(res.GroupVersion().String()): fieldpath.NewExcludeSetFilter(set)}
	for _, l := range res.Legacy {
		out[fieldpath.APIVersion(l.GroupVersion.String())] = fieldpath.NewExcludeSetFilter(set)
	}
	return out
}

// trackFields records in obj's managedFields what wo's manager changed from
// live (nil on create). Failures keep live's managedFields, as Kubernetes does.
func (s *Server) trackFields(res *registry.Resource, wo writeOptions, live, obj runtime.Object) runtime.Object {
	if wo.applied {
		return obj // the apply already did the bookkeeping
	}
	sub := wo.sub
	if wo.reqSub != "" {
		sub = wo.reqSub
	}
	fm, err := s.fieldManager(res, wo.gv, sub)
	if err != nil {
		s.log.Error("field manager", "resource", res.Resource, "err", err)
		return obj
	}
	if live == nil {
		live = setKind(res.New(), res.GroupVersion().WithKind(res.Kind))
	}
	manager := wo.manager
	if manager == "" && wo.user == nil {
		manager = serverManager
	}
	return fm.UpdateNoErrors(live, obj, manager)
}

// versionConverter converts one resource's objects between its storage version
// and its legacy versions, and from the unstructured form merges produce. It is
// the field manager's ObjectConvertor, ObjectCreater and ObjectDefaulter.
type versionConverter struct {
	res *registry.Resource
}

var (
	_ runtime.ObjectConvertor = versionConverter{}
	_ runtime.ObjectCreater   = versionConverter{}
	_ runtime.ObjectDefaulter = versionConverter{}
)

// Convert is unused by the field manager; it defers to the Scheme.
func (c versionConverter) Convert(in, out, context any) error {
	return Scheme.Convert(in, out, context)
}

// ConvertFieldLabel defers to the Scheme.
func (c versionConverter) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return Scheme.ConvertFieldLabel(gvk, label, value)
}

// New returns an empty object of kind gvk.
func (c versionConverter) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	if isUnstructured(c.res) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		return u, nil
	}
	return Scheme.New(gvk)
}

// Default does nothing: defaults are applied by the resource's strategy when the
// merged object is written.
func (c versionConverter) Default(runtime.Object) {}

// ConvertToVersion returns in as version target (a schema.GroupVersion). The
// result may be in itself when no conversion is needed.
func (c versionConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	gv, ok := target.(schema.GroupVersion)
	if !ok {
		return nil, fmt.Errorf("unsupported conversion target %v", target)
	}
	if u, ok := in.(*unstructured.Unstructured); ok {
		if isUnstructured(c.res) {
			// Custom resources convert between versions by renaming (strategy None).
			out := u.DeepCopy()
			out.SetAPIVersion(gv.String())
			return out, nil
		}
		typed, err := c.New(u.GroupVersionKind())
		if err != nil {
			return nil, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
			return nil, err
		}
		in = setKind(typed, u.GroupVersionKind())
	}
	from, ok := c.versionOf(in)
	if !ok {
		return nil, fmt.Errorf("%T is not a version of %s", in, c.res.Kind)
	}
	if from == gv {
		return setKind(in, gv.WithKind(c.res.Kind)), nil
	}
	obj := in
	if l := c.legacy(from); l != nil {
		var err error
		if obj, err = l.ToStorage(obj); err != nil {
			return nil, err
		}
	}
	if l := c.legacy(gv); l != nil {
		var err error
		if obj, err = l.FromStorage(obj); err != nil {
			return nil, err
		}
	} else if gv != c.res.GroupVersion() {
		return nil, fmt.Errorf("%s is not served in %s", c.res.Kind, gv)
	}
	return setKind(obj, gv.WithKind(c.res.Kind)), nil
}

// versionOf tells a typed object's version by its Go type.
func (c versionConverter) versionOf(obj runtime.Object) (schema.GroupVersion, bool) {
	t := reflect.TypeOf(obj)
	if t == reflect.TypeOf(c.res.New()) {
		return c.res.GroupVersion(), true
	}
	for _, l := range c.res.Legacy {
		if t == reflect.TypeOf(l.New()) {
			return l.GroupVersion, true
		}
	}
	return schema.GroupVersion{}, false
}

func (c versionConverter) legacy(gv schema.GroupVersion) *registry.Legacy {
	for i := range c.res.Legacy {
		if c.res.Legacy[i].GroupVersion == gv {
			return &c.res.Legacy[i]
		}
	}
	return nil
}

// managerOrUserAgent names the field manager of a write: the fieldManager
// parameter, else the User-Agent up to its first "/" (kubectl/v1.32.0 ... is
// "kubectl"), printable characters only, at most 128 bytes.
func managerOrUserAgent(param, userAgent string) string {
	if param != "" {
		return param
	}
	prefix, _, _ := strings.Cut(userAgent, "/")
	var b strings.Builder
	for _, r := range prefix {
		if !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > validation.FieldManagerMaxLength {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// validateWriteQuery checks the create and update options in the query string
// (fieldManager, dryRun, fieldValidation) as Kubernetes does; patches are
// checked by patchOptions.
func validateWriteQuery(q *request) error {
	var errs field.ErrorList
	kind := ""
	switch q.verb {
	case "create":
		opts := &metav1.CreateOptions{}
		if err := metainternalscheme.ParameterCodec.DecodeParameters(q.r.URL.Query(), metav1.SchemeGroupVersion, opts); err != nil {
			return apierrors.NewBadRequest(err.Error())
		}
		kind, errs = "CreateOptions", validation.ValidateCreateOptions(opts)
	case "update":
		opts := &metav1.UpdateOptions{}
		if err := metainternalscheme.ParameterCodec.DecodeParameters(q.r.URL.Query(), metav1.SchemeGroupVersion, opts); err != nil {
			return apierrors.NewBadRequest(err.Error())
		}
		kind, errs = "UpdateOptions", validation.ValidateUpdateOptions(opts)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs)
	}
	return nil
}
