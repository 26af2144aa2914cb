package apiserver

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"github.com/munnerz/goautoneg"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// /openapi/v2 is one of the API server's static paths (Kubernetes' e2e suite
// reads it with /healthz, /api, /apis, /metrics and /version). Like the v3
// documents it is minimal: a Swagger 2.0 document with the server's version and
// no definitions, so kubectl's v2 fallbacks find no schema for a kind and use
// their compiled-in types. It is negotiated as Kubernetes' kube-openapi handler
// does: JSON for application/json, protobuf (gnostic's OpenAPI v2 message) for
// application/com.github.proto-openapi.spec.v2[@.]v1.0+protobuf, which is what
// kubectl asks for, the first acceptable clause winning, 406 for anything else;
// with an ETag. (kube-openapi's handler package itself would add a module.)

const (
	openAPIV2Proto           = "com.github.proto-openapi.spec.v2.v1.0+protobuf"
	openAPIV2ProtoDeprecated = "com.github.proto-openapi.spec.v2@v1.0+protobuf"
)

// openAPIV2Doc is the document in both encodings, built once.
type openAPIV2Doc struct {
	json, proto []byte
	modified    time.Time
	err         error
}

var openAPIV2 struct {
	once sync.Once
	doc  openAPIV2Doc
}

// openAPIV2Swagger is the document served at /openapi/v2.
func openAPIV2Swagger() *spec.Swagger {
	return &spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger: "2.0",
		Info:    &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: kubeVersion}},
		Paths:   &spec.Paths{Paths: map[string]spec.PathItem{}},
	}}
}

// buildOpenAPIV2 encodes a Swagger document as JSON and as gnostic protobuf.
func buildOpenAPIV2(sw *spec.Swagger) openAPIV2Doc {
	d := openAPIV2Doc{modified: time.Now()}
	if d.json, d.err = json.Marshal(sw); d.err != nil {
		return d
	}
	doc, err := openapiv2.ParseDocument(d.json)
	if err != nil {
		d.err = fmt.Errorf("openapi v2 to protobuf: %w", err)
		return d
	}
	d.proto, d.err = proto.Marshal(doc)
	return d
}

// openAPIV2Type picks the response's content type for an Accept header ("" when
// none is acceptable) and whether it is the protobuf one.
func openAPIV2Type(accept string) (contentType string, protobuf bool) {
	if accept == "" {
		accept = "*/*"
	}
	for _, c := range goautoneg.ParseAccept(accept) {
		if c.Type != "application" && c.Type != "*" {
			continue
		}
		switch c.SubType {
		case "json", "*":
			return "application/json", false
		case openAPIV2Proto, openAPIV2ProtoDeprecated:
			return "application/" + openAPIV2Proto, true
		}
	}
	return "", false
}

// serveOpenAPIV2 answers GET /openapi/v2.
func (s *Server) serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	openAPIV2.once.Do(func() { openAPIV2.doc = buildOpenAPIV2(openAPIV2Swagger()) })
	d := openAPIV2.doc
	w.Header().Add("Vary", "Accept")
	ct, protobuf := openAPIV2Type(r.Header.Get("Accept"))
	if ct == "" {
		writeStatus(w, http.StatusNotAcceptable, "NotAcceptable", "only application/json and application/"+openAPIV2Proto+" are served at /openapi/v2")
		return
	}
	if d.err != nil {
		writeStatus(w, http.StatusServiceUnavailable, "ServiceUnavailable", d.err.Error())
		return
	}
	body := d.json
	if protobuf {
		body = d.proto
	}
	sum := sha512.Sum512(body)
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Etag", strconv.Quote(fmt.Sprintf("%X", sum)))
	http.ServeContent(w, r, "/openapi/v2", d.modified, bytes.NewReader(body))
}
