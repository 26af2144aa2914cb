package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The OpenAPI v3 documents are deliberately minimal: one path per resource whose
// PATCH operation names its group/version/kind and the fieldValidation parameter.
// That is what kubectl reads to decide that the server validates fields itself
// (it then sends fieldValidation=Strict). Strategic merge patch content is not
// advertised, so kubectl computes patches from its compiled-in types; server-side
// apply (application/apply-patch+yaml) is. /openapi/v2 is in openapi_v2.go.

func (s *Server) openAPIGroupVersions() map[string]schema.GroupVersion {
	out := map[string]schema.GroupVersion{}
	for _, gv := range s.reg.GroupVersions() {
		if gv.Group == "" {
			out["api/"+gv.Version] = gv
		} else {
			out["apis/"+gv.Group+"/"+gv.Version] = gv
		}
	}
	return out
}

func (s *Server) openAPIDoc(gv schema.GroupVersion) map[string]any {
	if doc, ok := s.customOpenAPI(gv); ok {
		return doc
	}
	paths := map[string]any{}
	base := "/apis/" + gv.String()
	if gv.Group == "" {
		base = "/api/" + gv.Version
	}
	for _, r := range s.servedAt(gv) {
		gvk := map[string]string{"group": gv.Group, "version": gv.Version, "kind": r.Kind}
		params := []map[string]any{
			{"name": "fieldValidation", "in": "query", "schema": map[string]string{"type": "string"},
				"description": "Ignore, Warn or Strict: how the server treats unknown and duplicate fields"},
			{"name": "dryRun", "in": "query", "schema": map[string]string{"type": "string"}},
		}
		body := map[string]any{"content": map[string]any{
			"application/json-patch+json":  map[string]any{"schema": map[string]string{"type": "object"}},
			"application/merge-patch+json": map[string]any{"schema": map[string]string{"type": "object"}},
			"application/apply-patch+yaml": map[string]any{"schema": map[string]string{"type": "object"}},
		}}
		item := base + "/" + r.Resource + "/{name}"
		if r.Namespaced {
			item = base + "/namespaces/{namespace}/" + r.Resource + "/{name}"
		}
		op := map[string]any{"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
			"parameters": params, "requestBody": body, "responses": map[string]any{"200": map[string]string{"description": "OK"}}}
		paths[item] = map[string]any{"patch": op}
		if r.HasStatus {
			paths[item+"/status"] = map[string]any{"patch": op}
		}
	}
	return map[string]any{
		"openapi":    "3.0.0",
		"info":       map[string]string{"title": "svcnet", "version": kubeVersion},
		"paths":      paths,
		"components": map[string]any{"schemas": map[string]any{}},
	}
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request, path string) {
	if path == "/openapi/v2" {
		s.serveOpenAPIV2(w, r)
		return
	}
	if path == "/openapi/v3" {
		idx := map[string]any{}
		for p, gv := range s.openAPIGroupVersions() {
			raw, _ := json.Marshal(s.openAPIDoc(gv))
			sum := sha256.Sum256(raw)
			idx[p] = map[string]string{"serverRelativeURL": "/openapi/v3/" + p + "?hash=" + strings.ToUpper(hex.EncodeToString(sum[:]))}
		}
		writeJSON(w, http.StatusOK, map[string]any{"paths": idx})
		return
	}
	if gv, ok := s.openAPIGroupVersions()[strings.TrimPrefix(path, "/openapi/v3/")]; ok {
		w.Header().Set("Cache-Control", "public, immutable")
		writeJSON(w, http.StatusOK, s.openAPIDoc(gv))
		return
	}
	writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
}
