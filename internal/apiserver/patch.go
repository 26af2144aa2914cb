package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// applyPatch applies a patch of type pt to the JSON of the current object. dataStruct
// is the Go type strategic merge patches read their merge keys from.
func applyPatch(pt types.PatchType, current, patch []byte, dataStruct runtime.Object) ([]byte, error) {
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		out, err := p.Apply(current)
		if err != nil {
			return nil, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity,
				Reason: metav1.StatusReasonInvalid, Message: "the server rejected our request due to an error in our request: " + err.Error()}}
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(current, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	case types.StrategicMergePatchType:
		var m map[string]any
		if err := json.Unmarshal(patch, &m); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
		}
		out, err := strategicpatch.StrategicMergePatch(current, patch, dataStruct)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	}
	return nil, unsupportedPatch(pt)
}

func unsupportedPatch(pt types.PatchType) error {
	err := unsupportedMediaType(string(pt)).(*apierrors.StatusError)
	err.ErrStatus.Message = fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s, %s, %s (got %s)",
		types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType, types.ApplyCBORPatchType, pt)
	return err
}

// patchOptions reads and checks the query's PatchOptions (fieldManager is
// required for apply; force only for apply).
func patchOptions(q *request, pt types.PatchType) (*metav1.PatchOptions, error) {
	opts := &metav1.PatchOptions{}
	if err := metainternalscheme.ParameterCodec.DecodeParameters(q.r.URL.Query(), metav1.SchemeGroupVersion, opts); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if errs := validation.ValidatePatchOptions(opts, pt); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "PatchOptions"}, "", errs)
	}
	return opts, nil
}

func (s *Server) handlePatch(q *request) error {
	pt := types.PatchType(mediaType(q.r))
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
	default:
		return unsupportedPatch(pt)
	}
	opts, err := patchOptions(q, pt)
	if err != nil {
		return err
	}
	patch, err := readBody(q.r)
	if err != nil {
		return err
	}
	wo := writeOpts(q)
	var fn transform
	if pt == types.ApplyYAMLPatchType || pt == types.ApplyCBORPatchType {
		fn, err = s.applyTransform(q, pt, patch, opts)
		if err != nil {
			return err
		}
		wo.applied, wo.createMissing = true, true
	} else {
		fn = s.patchTransform(q, pt, patch)
	}
	out, created, err := s.update(q.r.Context(), q.res, q.ns, q.name, fn, wo)
	if err != nil {
		return err
	}
	return s.respondWritten(q, out, created)
}

// respondWritten answers an update or patch: 201 when it created the object,
// 200 otherwise.
func (s *Server) respondWritten(q *request, out runtime.Object, created bool) error {
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return s.respond(q, code, out)
}

// patchTransform applies a JSON, merge or strategic merge patch to the object
// in the request's version.
func (s *Server) patchTransform(q *request, pt types.PatchType, patch []byte) transform {
	fieldValidation := q.r.URL.Query().Get("fieldValidation")
	pinned := patchPinsResourceVersion(pt, patch)
	return func(old runtime.Object) (runtime.Object, error) {
		if old == nil {
			return nil, apierrors.NewNotFound(q.res.GroupResource(), q.name)
		}
		cur, err := s.output(q, old)
		if err != nil {
			return nil, err
		}
		curJSON, err := json.Marshal(cur)
		if err != nil {
			return nil, err
		}
		dataStruct := q.res.New()
		if q.legacy != nil {
			dataStruct = q.legacy.New()
		}
		patched, err := applyPatch(pt, curJSON, patch, dataStruct)
		if err != nil {
			return nil, err
		}
		into := q.res.New()
		if q.legacy != nil {
			into = q.legacy.New()
		}
		warnings, err := decodeInto(patched, "application/json", q.gv.WithKind(q.res.Kind), into, fieldValidation)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			q.w.Header().Add("Warning", `299 - "`+w+`"`)
		}
		if !pinned {
			// The stored resourceVersion came along with the current object; the patch
			// did not ask for it, so a concurrent write means patching the new object,
			// as kube-apiserver's GuaranteedUpdate does.
			accessor(into).SetResourceVersion("")
		}
		if q.legacy != nil {
			return q.legacy.ToStorage(into)
		}
		return into, nil
	}
}

// patchPinsResourceVersion says whether a patch sets metadata.resourceVersion
// (a precondition) itself.
func patchPinsResourceVersion(pt types.PatchType, patch []byte) bool {
	if pt == types.JSONPatchType {
		var ops []struct {
			Path string `json:"path"`
		}
		if json.Unmarshal(patch, &ops) != nil {
			return true
		}
		for _, op := range ops {
			if op.Path == "/metadata/resourceVersion" || op.Path == "/metadata" {
				return true
			}
		}
		return false
	}
	var obj struct {
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if json.Unmarshal(patch, &obj) != nil {
		return true
	}
	_, ok := obj.Metadata["resourceVersion"]
	return ok
}

// applyTransform merges a server-side apply patch (a partial object in YAML or
// CBOR) into the stored object, or into an empty one when there is none, on
// behalf of opts.FieldManager.
func (s *Server) applyTransform(q *request, pt types.PatchType, patch []byte, opts *metav1.PatchOptions) (transform, error) {
	unmarshal, unmarshalStrict := yaml.Unmarshal, yaml.UnmarshalStrict
	if pt == types.ApplyCBORPatchType {
		unmarshal, unmarshalStrict = direct.Unmarshal, direct.Unmarshal
	}
	applied := map[string]any{}
	if err := unmarshal(patch, &applied); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
	}
	switch opts.FieldValidation {
	case metav1.FieldValidationStrict, metav1.FieldValidationWarn, "":
		// Duplicate fields; unknown ones are caught by the schema when merging.
		if err := unmarshalStrict(patch, &map[string]any{}); err != nil {
			if opts.FieldValidation == metav1.FieldValidationStrict {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("error strict decoding patch: %v", err))
			}
			q.w.Header().Add("Warning", `299 - "`+strings.ReplaceAll(err.Error(), `"`, `\"`)+`"`)
		}
	}
	fm, err := s.fieldManager(q.res, q.gv, q.sub)
	if err != nil {
		return nil, err
	}
	force := opts.Force != nil && *opts.Force
	return func(old runtime.Object) (runtime.Object, error) {
		patchObj := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(applied)}
		if name := patchObj.GetName(); name != "" && name != q.name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", name, q.name))
		}
		live := old
		if live == nil {
			live = setKind(q.res.New(), q.res.GroupVersion().WithKind(q.res.Kind))
		}
		out, err := fm.Apply(live, patchObj, opts.FieldManager, force)
		if err != nil {
			if _, ok := err.(apierrors.APIStatus); ok {
				return nil, err
			}
			// Schema errors (a field the kind does not have, a wrong type) name the field.
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if patchObj.GetResourceVersion() == "" {
			accessor(out).SetResourceVersion("") // not a precondition: a concurrent write means apply again
		}
		return out, nil
	}, nil
}
