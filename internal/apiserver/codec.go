package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/yaml"
)

// Scheme knows every Go type svcnet serves.
var Scheme = runtime.NewScheme()

// Codecs decodes request bodies (JSON, YAML, protobuf), strictly when asked.
var Codecs serializer.CodecFactory

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, appsv1beta1.AddToScheme, extensionsv1beta1.AddToScheme,
		discoveryv1.AddToScheme, networkingv1.AddToScheme, coordinationv1.AddToScheme, autoscalingv1.AddToScheme,
		authorizationv1.AddToScheme, authenticationv1.AddToScheme, rbacv1.AddToScheme, apiextensionsv1.AddToScheme,
		eventsv1.AddToScheme, policyv1.AddToScheme,
	} {
		utilruntime.Must(add(Scheme))
	}
	Scheme.AddKnownTypes(metav1.SchemeGroupVersion, &metav1.Table{}, &metav1.PartialObjectMetadata{}, &metav1.PartialObjectMetadataList{})
	metav1.AddToGroupVersion(Scheme, metav1.SchemeGroupVersion)
	Codecs = serializer.NewCodecFactory(Scheme, serializer.EnableStrict)
	info, _ := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	protoSerializer = info.Serializer
	storageDecoder = Codecs.UniversalDeserializer()
}

// maxBody is the largest request body accepted (as kube-apiserver: 3 MiB).
const maxBody = 3 << 20

func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, apierrors.NewBadRequest("reading request body: " + err.Error())
	}
	if len(data) > maxBody {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxBody))
	}
	return data, nil
}

func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return runtime.ContentTypeJSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

// decodeInto decodes body (of media type mt) into into, expecting gvk. Unknown and
// duplicate fields are errors under fieldValidation=Strict, warnings under Warn
// (the default, as in Kubernetes) and ignored under Ignore.
func decodeInto(body []byte, mt string, gvk schema.GroupVersionKind, into runtime.Object, validation string) ([]string, error) {
	info, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), mt)
	if !ok {
		return nil, unsupportedMediaType(mt)
	}
	dec := info.Serializer
	if info.StrictSerializer != nil && validation != "Ignore" {
		dec = info.StrictSerializer
	}
	if len(body) == 0 {
		return nil, apierrors.NewBadRequest("the request body is empty: expected a " + gvk.Kind)
	}
	obj, got, err := dec.Decode(body, &gvk, into)
	var warnings []string
	if err != nil {
		if !runtime.IsStrictDecodingError(err) {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if validation == "Strict" {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		for _, e := range err.(interface{ Errors() []error }).Errors() {
			warnings = append(warnings, e.Error())
		}
	}
	if obj != into {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object in the data (%s) does not match the expected %s", got, gvk))
	}
	if got != nil && (got.Kind != gvk.Kind || got.GroupVersion() != gvk.GroupVersion()) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion()))
	}
	return warnings, nil
}

// accepted describes the response format a client asked for.
type accepted struct {
	table         bool
	yaml          bool
	proto         bool   // the client prefers protobuf (client-go typed clients do)
	includeObject string // None, Metadata (default) or Object
}

// negotiate reads Accept: server-side Tables (as=Table;g=meta.k8s.io), YAML, or
// JSON (always acceptable to Kubernetes clients, including protobuf ones).
func negotiate(r *http.Request) accepted {
	a := accepted{includeObject: r.URL.Query().Get("includeObject")}
	if a.includeObject == "" {
		a.includeObject = "Metadata"
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case params["as"] == "Table" && params["g"] == "meta.k8s.io" && (mt == "application/json" || mt == "*/*"):
			a.table = true
			return a
		case params["as"] != "":
			continue
		case mt == "application/yaml":
			a.yaml = true
			return a
		case mt == runtime.ContentTypeProtobuf:
			a.proto = true
			return a
		case mt == "application/json" || mt == "*/*" || mt == "application/*":
			return a
		}
	}
	return a
}

// setKind fills apiVersion and kind, which Kubernetes puts on every object it returns.
func setKind(obj runtime.Object, gvk schema.GroupVersionKind) runtime.Object {
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if m, ok := v.(json.Marshaler); ok { // unstructured objects: skip the encoder's second pass over their output
		if data, err := m.MarshalJSON(); err == nil {
			w.WriteHeader(code)
			_, _ = w.Write(append(data, '\n'))
			return
		}
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// protoSerializer encodes protobuf (responses to clients that prefer it, storage).
var protoSerializer runtime.Serializer

// writeEncoded answers with v as YAML, protobuf or JSON, as the client asked.
func writeEncoded(w http.ResponseWriter, code int, a accepted, v any) {
	if obj, ok := v.(runtime.Object); ok && a.proto {
		var buf bytes.Buffer
		if err := protoSerializer.Encode(obj, &buf); err == nil {
			w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
			w.WriteHeader(code)
			_, _ = w.Write(buf.Bytes())
			return
		}
	}
	if a.yaml {
		data, err := yaml.Marshal(v)
		if err == nil {
			w.Header().Set("Content-Type", "application/yaml")
			w.WriteHeader(code)
			_, _ = w.Write(data)
			return
		}
	}
	writeJSON(w, code, v)
}

func unsupportedMediaType(mt string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format (%s) - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf", mt),
	}}
}
