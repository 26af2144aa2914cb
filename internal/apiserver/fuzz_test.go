package apiserver

import (
	"strings"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies to create, update and patch: the server
// must never panic and must answer every bad body with a 4xx.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		svcBody("web", "a"),
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"selectpr":{}}}`,
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - port: 80\n",
		`{"metadata":{"name":"x"},"spec":{"ports":[{"port":"eighty"}]}}`,
		`[{"op":"replace","path":"/spec","value":1}]`,
		"{", "", "null", "\x00\x01k8s\x00", `{"kind":"Pod","apiVersion":"v1"}`,
	} {
		f.Add(seed, uint8(0))
	}
	s := benchServer(f)
	if rec := serveBounded(f, s, "POST", "/api/v1/namespaces/default/services", "application/json", svcBody("target", "a")); rec.Code != 201 {
		f.Fatalf("creating the target: %d %s", rec.Code, rec.Body)
	}
	type call struct{ method, path, ct string }
	calls := []call{
		{"POST", "/api/v1/namespaces/default/services", "application/json"},
		{"POST", "/api/v1/namespaces/default/services?fieldValidation=Strict", "application/yaml"},
		{"PUT", "/api/v1/namespaces/default/services/target", "application/json"},
		{"PATCH", "/api/v1/namespaces/default/services/target", "application/merge-patch+json"},
		{"PATCH", "/api/v1/namespaces/default/services/target", "application/strategic-merge-patch+json"},
		{"PATCH", "/api/v1/namespaces/default/services/target", "application/json-patch+json"},
		{"POST", "/apis/apps/v1beta1/namespaces/default/deployments", "application/json"},
		{"POST", "/api/v1/namespaces/default/secrets", "application/vnd.kubernetes.protobuf"},
	}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		c := calls[int(which)%len(calls)]
		rec := serveBounded(t, s, c.method, c.path, c.ct, body)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("%s %s (%s) with %q: status %d %s", c.method, c.path, c.ct, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 300 && !strings.Contains(rec.Body.String(), `"kind":"Status"`) {
			t.Fatalf("error answer is not a Status: %d %s", rec.Code, rec.Body.String())
		}
	})
}
