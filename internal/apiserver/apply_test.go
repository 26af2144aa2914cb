package apiserver

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

const applyCT = "application/apply-patch+yaml"

// apply sends a server-side apply patch as manager (none when empty), with extra
// query parameters.
func (h *harness) apply(path, manager, body string, query ...string) resp {
	h.t.Helper()
	v := url.Values{}
	if manager != "" {
		v.Set("fieldManager", manager)
	}
	for i := 0; i+1 < len(query); i += 2 {
		v.Set(query[i], query[i+1])
	}
	return h.do("PATCH", path+"?"+v.Encode(), body, "Content-Type", applyCT)
}

// managed is one metadata.managedFields entry, with its fields as JSON text.
type managed struct {
	Manager, Operation, APIVersion, Subresource string
	Fields                                      string
}

func managedFields(t *testing.T, r resp) map[string]managed {
	t.Helper()
	var obj struct {
		Metadata struct {
			ManagedFields []struct {
				Manager, Operation, APIVersion, Subresource, FieldsType string
				FieldsV1                                                json.RawMessage
			}
		}
	}
	if err := json.Unmarshal([]byte(r.body), &obj); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	out := map[string]managed{}
	for _, e := range obj.Metadata.ManagedFields {
		if e.FieldsType != "FieldsV1" {
			t.Errorf("fieldsType %q", e.FieldsType)
		}
		out[e.Manager+"/"+e.Operation] = managed{e.Manager, e.Operation, e.APIVersion, e.Subresource, string(e.FieldsV1)}
	}
	return out
}

const cmPath = "/api/v1/namespaces/default/configmaps/cm"

func cmApply(data string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n" + data
}

func TestApplyConflictsAndOwnership(t *testing.T) {
	h := newHarness(t)

	r := h.must(422, h.apply(cmPath, "", cmApply("  a: \"1\"\n")))
	if want := `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`; r.str("message") != want {
		t.Errorf("missing fieldManager: %q, want %q", r.str("message"), want)
	}
	h.must(404, h.do("GET", cmPath, ""))

	// Apply to a missing object creates it.
	r = h.must(201, h.apply(cmPath, "alice", cmApply("  a: \"1\"\n  c: \"3\"\n")))
	mf := managedFields(t, r)
	if e := mf["alice/Apply"]; e.APIVersion != "v1" || e.Fields != `{"f:data":{"f:a":{},"f:c":{}}}` || len(mf) != 1 {
		t.Fatalf("managedFields after apply-create: %+v", mf)
	}
	rv := r.str("metadata", "resourceVersion")
	// Applying the same again changes nothing.
	r = h.must(200, h.apply(cmPath, "alice", cmApply("  a: \"1\"\n  c: \"3\"\n")))
	if r.str("data", "a") != "1" || len(managedFields(t, r)) != 1 || r.str("metadata", "resourceVersion") != rv {
		t.Fatalf("re-apply (want no write, resourceVersion %s): %s", rv, r.body)
	}

	// bob sets alice's field to another value: a conflict naming both.
	r = h.must(409, h.apply(cmPath, "bob", cmApply("  a: \"2\"\n")))
	if want := `Apply failed with 1 conflict: conflict with "alice": .data.a`; r.str("message") != want || r.str("reason") != "Conflict" {
		t.Fatalf("conflict: %s", r.body)
	}
	if !strings.Contains(r.str("details", "causes"), `"field":".data.a"`) || !strings.Contains(r.str("details", "causes"), `"reason":"FieldManagerConflict"`) {
		t.Errorf("conflict causes: %s", r.body)
	}
	// Applying the same value shares ownership without a conflict.
	r = h.must(200, h.apply(cmPath, "carol", cmApply("  a: \"1\"\n")))
	if mf := managedFields(t, r); mf["carol/Apply"].Fields != `{"f:data":{"f:a":{}}}` || mf["alice/Apply"].Fields != `{"f:data":{"f:a":{},"f:c":{}}}` {
		t.Fatalf("shared ownership: %+v", mf)
	}
	// force takes the field from everyone else.
	r = h.must(200, h.apply(cmPath, "bob", cmApply("  a: \"2\"\n"), "force", "true"))
	mf = managedFields(t, r)
	if r.str("data", "a") != "2" || mf["bob/Apply"].Fields != `{"f:data":{"f:a":{}}}` || mf["alice/Apply"].Fields != `{"f:data":{"f:c":{}}}` {
		t.Fatalf("after force: %s %+v", r.body, mf)
	}
	if _, ok := mf["carol/Apply"]; ok {
		t.Errorf("carol still listed with no fields: %+v", mf)
	}
	// alice stops applying c: nobody owns it any more, so it goes. bob's a stays.
	r = h.must(200, h.apply(cmPath, "alice", cmApply("  b: \"2\"\n")))
	if r.str("data") != `{"a":"2","b":"2"}` {
		t.Fatalf("after alice dropped c: %s", r.body)
	}
	if r.str("metadata", "resourceVersion") == rv {
		t.Errorf("resourceVersion unchanged after a change")
	}
	// force is only for apply.
	r = h.must(422, h.do("PATCH", cmPath+"?force=true", `{"data":{"x":"y"}}`, "Content-Type", "application/merge-patch+json"))
	if !strings.Contains(r.str("message"), "force: Forbidden: may not be specified for non-apply patch") {
		t.Errorf("force on merge patch: %s", r.body)
	}
}

func TestApplyRejects(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, path, body, want string
		code                   int
	}{
		{"version", cmPath, "apiVersion: v2\nkind: ConfigMap\nmetadata:\n  name: cm\n", "invalid object type: /v2, Kind=ConfigMap", 400},
		{"kind", cmPath, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cm\n", "invalid object type: /v1, Kind=Secret", 400},
		{"name", cmPath, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n", "the name of the object (other) does not match the name on the URL (cm)", 400},
		{"unknown field", cmPath, cmApply("  a: \"1\"\nbogus: 1\n"), ".bogus: field not declared in schema", 400},
		{"yaml", cmPath, "{", "error decoding patch", 400},
		{"managedFields", cmPath, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  managedFields: [{manager: x}]\n", "metadata.managedFields must be nil", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.must(tc.code, h.apply(tc.path, "m", tc.body))
			if !strings.Contains(r.str("message"), tc.want) {
				t.Errorf("message %q, want %q", r.str("message"), tc.want)
			}
		})
	}
	long := strings.Repeat("x", 129)
	r := h.must(422, h.apply(cmPath, long, cmApply("  a: \"1\"\n")))
	if !strings.Contains(r.str("message"), "fieldManager: Too long: may not be more than 128 bytes") {
		t.Errorf("long manager: %s", r.body)
	}
	r = h.must(422, h.do("POST", "/api/v1/namespaces/default/configmaps?fieldManager=a%01b", `{"metadata":{"name":"x"}}`))
	if !strings.Contains(r.str("message"), `fieldManager: Invalid value: "a\x01b": invalid character U+0001 (at position 1)`) {
		t.Errorf("unprintable manager: %s", r.body)
	}
}

func TestManagedFieldsOnWrites(t *testing.T) {
	h := newHarness(t)
	r := h.must(201, h.do("POST", "/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create", `{"metadata":{"name":"cm","labels":{"l":"1"}},"data":{"a":"1"}}`))
	mf := managedFields(t, r)
	if e := mf["kubectl-create/Update"]; e.APIVersion != "v1" || e.Fields != `{"f:data":{".":{},"f:a":{}},"f:metadata":{"f:labels":{".":{},"f:l":{}}}}` || len(mf) != 1 {
		t.Fatalf("after create: %+v", mf)
	}
	// Stored, not only returned.
	if mf := managedFields(t, h.must(200, h.do("GET", cmPath, ""))); len(mf) != 1 {
		t.Fatalf("after get: %+v", mf)
	}
	// The manager of a PUT without fieldManager is the User-Agent's product.
	r = h.must(200, h.do("PUT", cmPath, `{"metadata":{"name":"cm","labels":{"l":"1"}},"data":{"a":"1","b":"2"}}`, "User-Agent", "kubectl/v1.32.0 (linux/amd64) kubernetes/abc"))
	mf = managedFields(t, r)
	if mf["kubectl/Update"].Fields != `{"f:data":{"f:b":{}}}` || mf["kubectl-create/Update"].Fields == "" {
		t.Fatalf("after update: %+v", mf)
	}
	for _, tc := range []struct{ ct, body, manager, fields string }{
		{"application/merge-patch+json", `{"data":{"c":"3"}}`, "merge", `{"f:data":{"f:c":{}}}`},
		{"application/json-patch+json", `[{"op":"add","path":"/data/d","value":"4"}]`, "jsonpatch", `{"f:data":{"f:d":{}}}`},
		{"application/strategic-merge-patch+json", `{"data":{"e":"5"}}`, "smp", `{"f:data":{"f:e":{}}}`},
	} {
		r = h.must(200, h.do("PATCH", cmPath+"?fieldManager="+tc.manager, tc.body, "Content-Type", tc.ct))
		if got := managedFields(t, r)[tc.manager+"/Update"].Fields; got != tc.fields {
			t.Errorf("%s: fields %s, want %s", tc.ct, got, tc.fields)
		}
	}
	// Writing managedFields as [{}] resets them; the writer then owns everything.
	r = h.must(200, h.do("PATCH", cmPath+"?fieldManager=reset", `{"metadata":{"managedFields":[{}]}}`, "Content-Type", "application/merge-patch+json"))
	if mf := managedFields(t, r); len(mf) != 0 {
		t.Errorf("after reset: %+v", mf)
	}
	// The first apply to an object without managedFields gives what is there to
	// "before-first-apply", which an applier then conflicts with.
	r = h.must(409, h.apply(cmPath, "late", cmApply("  a: \"9\"\n")))
	if want := `Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a`; r.str("message") != want {
		t.Errorf("apply after reset: %s", r.str("message"))
	}
}

const deployPath = "/apis/apps/v1/namespaces/default/deployments/web"

func deployApply(apiVersion, replicas, image string) string {
	s := "apiVersion: " + apiVersion + "\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
	if replicas != "" {
		s += "  replicas: " + replicas + "\n"
	}
	if apiVersion == "apps/v1" {
		s += "  selector:\n    matchLabels: {app: web}\n"
	}
	return s + "  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: " + image + "\n"
}

func TestApplyDeploymentStatusAndVersions(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.apply(deployPath, "ci", deployApply("apps/v1", "2", "nginx:1")))
	// status in an apply to the main resource is neither written nor owned.
	r := h.must(200, h.apply(deployPath, "ci", deployApply("apps/v1", "2", "nginx:1")+"status:\n  replicas: 7\n"))
	if r.str("spec", "replicas") != "2" || r.str("status", "replicas") != "" {
		t.Fatalf("apply with status: %s", r.body)
	}
	if f := managedFields(t, r)["ci/Apply"].Fields; strings.Contains(f, "f:status") || !strings.Contains(f, `"k:{\"name\":\"web\"}"`) {
		t.Errorf("ci owns %s", f)
	}
	// A status write is recorded with subresource status.
	r = h.must(200, h.do("PATCH", deployPath+"/status?fieldManager=controller", `{"status":{"replicas":2}}`, "Content-Type", "application/merge-patch+json"))
	if e := managedFields(t, r)["controller/Update"]; e.Subresource != "status" || e.Fields != `{"f:status":{"f:replicas":{}}}` {
		t.Errorf("status write: %+v", e)
	}
	// Applying through apps/v1beta1 records that version; conflicts span versions.
	legacy := "/apis/apps/v1beta1/namespaces/default/deployments/web"
	r = h.must(409, h.apply(legacy, "old", deployApply("apps/v1beta1", "3", "nginx:1")))
	if want := `Apply failed with 1 conflict: conflict with "ci": .spec.replicas`; r.str("message") != want {
		t.Errorf("cross-version conflict: %s", r.body)
	}
	r = h.must(200, h.apply(legacy, "old", deployApply("apps/v1beta1", "3", "nginx:1"), "force", "true"))
	if e := managedFields(t, r)["old/Apply"]; e.APIVersion != "apps/v1beta1" || !strings.Contains(e.Fields, `"f:replicas":{}`) {
		t.Errorf("legacy apply: %+v", e)
	}
	if got := h.must(200, h.do("GET", deployPath, "")).str("spec", "replicas"); got != "3" {
		t.Errorf("replicas %s", got)
	}
	// ci re-applies without replicas: old owns them, so they stay.
	r = h.must(200, h.apply(deployPath, "ci", deployApply("apps/v1", "", "nginx:1")))
	if r.str("spec", "replicas") != "3" || strings.Contains(managedFields(t, r)["ci/Apply"].Fields, "f:replicas") {
		t.Errorf("ci without replicas: %s", r.body)
	}
	// A scale write is recorded on the Deployment with subresource scale, and takes
	// replicas from the applier.
	h.must(200, h.do("PUT", deployPath+"/scale?fieldManager=hpa", `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":4}}`))
	mf := managedFields(t, h.must(200, h.do("GET", deployPath, "")))
	if e := mf["hpa/Update"]; e.Subresource != "scale" || e.Fields != `{"f:spec":{"f:replicas":{}}}` || strings.Contains(mf["old/Apply"].Fields, "f:replicas") {
		t.Errorf("after scale: %+v", mf)
	}
}

func TestApplyDryRun(t *testing.T) {
	h := newHarness(t)
	r := h.must(201, h.apply(cmPath, "m", cmApply("  a: \"1\"\n"), "dryRun", "All"))
	if r.str("data", "a") != "1" {
		t.Errorf("dry-run create: %s", r.body)
	}
	h.must(404, h.do("GET", cmPath, ""))
	h.must(201, h.apply(cmPath, "m", cmApply("  a: \"1\"\n")))
	r = h.must(200, h.apply(cmPath, "m", cmApply("  a: \"2\"\n"), "dryRun", "All", "force", "true"))
	if r.str("data", "a") != "2" {
		t.Errorf("dry-run update: %s", r.body)
	}
	if got := h.must(200, h.do("GET", cmPath, "")).str("data", "a"); got != "1" {
		t.Errorf("dry run wrote: a=%s", got)
	}
	h.must(422, h.apply(cmPath, "m", cmApply("  a: \"2\"\n"), "dryRun", "Some"))
}
