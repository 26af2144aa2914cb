package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
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
	err.ErrStatus.Message = fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got %s; server-side apply is not supported yet)", pt)
	return err
}

func (s *Server) handlePatch(q *request) error {
	pt := types.PatchType(mediaType(q.r))
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	default:
		return unsupportedPatch(pt)
	}
	patch, err := readBody(q.r)
	if err != nil {
		return err
	}
	validation := q.r.URL.Query().Get("fieldValidation")
	fn := func(old runtime.Object) (runtime.Object, error) {
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
		warnings, err := decodeInto(patched, "application/json", q.gv.WithKind(q.res.Kind), into, validation)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			q.w.Header().Add("Warning", `299 - "`+w+`"`)
		}
		if q.legacy != nil {
			return q.legacy.ToStorage(into)
		}
		return into, nil
	}
	out, _, err := s.update(q.r.Context(), q.res, q.ns, q.name, fn, writeOpts(q))
	if err != nil {
		return err
	}
	return s.respond(q, http.StatusOK, out)
}
