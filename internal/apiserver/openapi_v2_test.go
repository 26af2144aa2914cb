package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
)

func TestOpenAPIV2(t *testing.T) {
	s := &Server{}
	get := func(accept, etag string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/openapi/v2", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
		w := httptest.NewRecorder()
		s.serveOpenAPIV2(w, r)
		return w
	}
	for _, tc := range []struct {
		accept, wantType string
		wantCode         int
	}{
		{"", "application/json", 200},
		{"application/json", "application/json", 200},
		{"application/vnd.kubernetes.protobuf, application/json", "application/json", 200},
		{"application/com.github.proto-openapi.spec.v2@v1.0+protobuf", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", 200},
		{"application/com.github.proto-openapi.spec.v2.v1.0+protobuf, application/json", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", 200},
		{"text/plain", "", 406},
	} {
		w := get(tc.accept, "")
		if w.Code != tc.wantCode {
			t.Errorf("Accept %q: code %d, want %d", tc.accept, w.Code, tc.wantCode)
			continue
		}
		if tc.wantCode != 200 {
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tc.wantType {
			t.Errorf("Accept %q: Content-Type %q, want %q", tc.accept, got, tc.wantType)
		}
		if tc.wantType == "application/json" {
			var doc map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc["swagger"] != "2.0" {
				t.Errorf("Accept %q: JSON %v, err %v", tc.accept, doc, err)
			}
		} else {
			var doc openapiv2.Document
			if err := proto.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc.Swagger != "2.0" || doc.Info.GetVersion() != kubeVersion {
				t.Errorf("Accept %q: protobuf %v, err %v", tc.accept, &doc, err)
			}
		}
		if etag := w.Header().Get("Etag"); etag == "" {
			t.Errorf("Accept %q: no ETag", tc.accept)
		} else if c := get(tc.accept, etag).Code; c != http.StatusNotModified {
			t.Errorf("Accept %q: If-None-Match its ETag: %d, want 304", tc.accept, c)
		}
	}
}
