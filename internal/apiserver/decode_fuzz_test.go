package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// The decoders that turn request bytes into objects, fuzzed one by one (the
// whole request path is FuzzDecodeRequest's): decodeInto (create and update
// bodies in JSON, YAML and protobuf), applyPatch (JSON patch, merge patch,
// strategic merge patch) and server-side apply. Bad input must come back as a
// 4xx Status error, and what is accepted must survive the storage encoding.

var fuzzKinds = []struct {
	gvk schema.GroupVersionKind
	new func() runtime.Object
}{
	{corev1.SchemeGroupVersion.WithKind("Service"), func() runtime.Object { return &corev1.Service{} }},
	{corev1.SchemeGroupVersion.WithKind("Pod"), func() runtime.Object { return &corev1.Pod{} }},
	{appsv1.SchemeGroupVersion.WithKind("Deployment"), func() runtime.Object { return &appsv1.Deployment{} }},
	{discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), func() runtime.Object { return &discoveryv1.EndpointSlice{} }},
	{networkingv1.SchemeGroupVersion.WithKind("Ingress"), func() runtime.Object { return &networkingv1.Ingress{} }},
}

var fuzzMediaTypes = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}

// protoOf is obj's protobuf request body, as client-go sends it.
func protoOf(tb testing.TB, obj runtime.Object) []byte {
	var buf bytes.Buffer
	if err := protoSerializer.Encode(obj, &buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// badRequest fails unless err is a Kubernetes Status error with a 4xx code.
func badRequest(t *testing.T, what string, err error) {
	t.Helper()
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		t.Fatalf("%s: error %T %v is not a Status", what, err, err)
	}
	if c := st.Status().Code; c < 400 || c >= 500 {
		t.Fatalf("%s: error code %d (%v), want 4xx", what, c, err)
	}
}

func FuzzDecodeInto(f *testing.F) {
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	for _, seed := range []struct {
		body           string
		mt, kind, mode uint8
	}{
		{svcBody("web", "a"), 0, 0, 0},
		{`{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"selectpr":{}}}`, 0, 0, 1},
		{`{"apiVersion":"v1","kind":"Service","metadata":{"name":"x","name":"y"}}`, 0, 0, 1},
		{`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"1e3m"}}}]}}`, 0, 1, 0},
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - port: 80\n", 1, 0, 0},
		{"apiVersion: v1\nkind: Service\nmetadata: &a\n  name: x\n  labels: *a\n", 1, 0, 2},
		{"apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 1e10\n", 1, 2, 0},
		{`{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"]}]}`, 0, 3, 0},
		{`{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","spec":{"rules":[{"host":"a","http":{"paths":[{"path":"/","pathType":"Prefix"}]}}]}}`, 0, 4, 0},
		{string(protoOf(f, svc)), 2, 0, 0},
		{string(protoOf(f, svc)), 2, 1, 0}, // a Service where a Pod is expected
		{"k8s\x00\x0a\x02v1", 2, 0, 0},
		{"", 0, 0, 0}, {"null", 0, 0, 0}, {"{", 1, 0, 0}, {`{"kind":"Pod","apiVersion":"v1"}`, 0, 0, 0},
	} {
		f.Add([]byte(seed.body), seed.mt, seed.kind, seed.mode)
	}
	f.Fuzz(func(t *testing.T, body []byte, mt, kind, mode uint8) {
		k := fuzzKinds[int(kind)%len(fuzzKinds)]
		media := fuzzMediaTypes[int(mt)%len(fuzzMediaTypes)]
		validation := []string{"", "Strict", "Ignore"}[int(mode)%3]
		into := k.new()
		_, err := decodeInto(body, media, k.gvk, into, validation)
		if err != nil {
			badRequest(t, media+" "+k.gvk.Kind, err)
			return
		}
		// What was accepted is stored as protobuf and read back the same.
		stored := protoOf(t, setKind(into, k.gvk))
		back := k.new()
		if _, _, err := storageDecoder.Decode(stored, nil, back); err != nil {
			t.Fatalf("accepted %s %q does not decode from storage: %v", k.gvk.Kind, body, err)
		}
		if !apiequality.Semantic.DeepEqual(into, back) {
			t.Fatalf("accepted %s %q changed through storage:\n%#v\n%#v", k.gvk.Kind, body, into, back)
		}
	})
}

const fuzzCurrent = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default","labels":{"app":"web"},"resourceVersion":"7"},` +
	`"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"protocol":"TCP"},{"name":"dns","port":53,"protocol":"UDP"}],"clusterIP":"10.96.0.10"}}`

func FuzzApplyPatch(f *testing.F) {
	for _, seed := range []struct {
		patch string
		pt    uint8
	}{
		{`[{"op":"replace","path":"/spec/selector/app","value":"db"}]`, 0},
		{`[{"op":"add","path":"/spec/ports/-","value":{"port":443}},{"op":"remove","path":"/spec/ports/0"}]`, 0},
		{`[{"op":"test","path":"/metadata/name","value":"web"},{"op":"move","from":"/metadata/labels","path":"/spec/selector"}]`, 0},
		{`[{"op":"copy","from":"/spec","path":"/spec/x"},{"op":"copy","from":"/spec","path":"/spec/x"}]`, 0},
		{`[{"op":"remove","path":"/spec/ports/-1"}]`, 0},
		{`[{"op":"replace","path":"/spec/ports/99999999999999999999","value":1}]`, 0},
		{`[{"op":"add","path":"","value":[]}]`, 0},
		{`{"metadata":{"labels":{"app":null,"tier":"front"}},"spec":{"ports":[{"port":8080}]}}`, 1},
		{`{"spec":null}`, 1},
		{`[1,2]`, 1},
		{`{"spec":{"ports":[{"port":80,"targetPort":8080}]}}`, 2},
		{`{"spec":{"ports":[{"$patch":"delete","port":53}]}}`, 2},
		{`{"spec":{"$setElementOrder/ports":[{"port":53},{"port":80}],"ports":[{"port":53,"name":"d"}]}}`, 2},
		{`{"spec":{"$retainKeys":["ports"],"ports":[]}}`, 2},
		{`{"metadata":{"$patch":"replace"}}`, 2},
		{`{"spec":{"ports":{"$patch":"merge"}}}`, 2},
		{"", 0}, {"null", 1}, {"{", 2}, {`"x"`, 2},
	} {
		f.Add([]byte(seed.patch), seed.pt)
	}
	pts := []types.PatchType{types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType}
	f.Fuzz(func(t *testing.T, patch []byte, which uint8) {
		pt := pts[int(which)%len(pts)]
		out, err := applyPatch(pt, []byte(fuzzCurrent), patch, &corev1.Service{})
		if err != nil {
			badRequest(t, string(pt), err)
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%s %q gave invalid JSON %q", pt, patch, out)
		}
		if pt == types.MergePatchType && bytes.HasPrefix(out, []byte("{")) {
			// A merge patch (RFC 7386) applied twice to an object is applied once.
			again, err := applyPatch(pt, out, patch, nil)
			if err != nil || !jsonEqual(again, out) {
				t.Fatalf("merge patch %q is not idempotent: %s then %s (%v)", patch, out, again, err)
			}
		}
		if _, err := decodeInto(out, "application/json", corev1.SchemeGroupVersion.WithKind("Service"), &corev1.Service{}, "Strict"); err != nil {
			badRequest(t, "patched object", err)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && apiequality.Semantic.DeepEqual(x, y)
}

// FuzzApplyRequest sends server-side apply patches (YAML and CBOR) through the
// whole server: never a 5xx or a hang, every error a Status, and an applied
// object can be read back.
func FuzzApplyRequest(f *testing.F) {
	for _, seed := range []struct {
		body string
		cbor bool
	}{
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: target\nspec:\n  ports:\n  - port: 80\n", false},
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: target\nspec:\n  selectpr: {}\n", false},
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: other\n", false},
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: target\n  name: target\n", false},
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: target\nspec:\n  ports:\n  - port: eighty\n", false},
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: target\nspec:\n  ports:\n  - port: 80\n  - port: 80\n", false},
		{"apiVersion: v1\nkind: Service\nmetadata:\n  name: target\n  resourceVersion: \"1\"\n", false},
		{"apiVersion: v1\nkind: Pod\nmetadata:\n  name: target\n", false},
		{"- a\n- b\n", false}, {"", false}, {"null", false}, {"{", false}, {"&a [*a]", false},
		{"\xa1\x64kind\x67Service", true}, {"\xff", true}, {"", true},
	} {
		f.Add(seed.body, seed.cbor)
	}
	s := benchServer(f)
	f.Fuzz(func(t *testing.T, body string, cbor bool) {
		ct := "application/apply-patch+yaml"
		if cbor {
			ct = "application/apply-patch+cbor"
		}
		path := "/api/v1/namespaces/default/services/target"
		rec := serveBounded(t, s, "PATCH", path+"?"+url.Values{"fieldManager": {"fuzz"}, "force": {"true"}}.Encode(), ct, body)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("apply (%s) %q: status %d %s", ct, body, rec.Code, rec.Body)
		}
		if rec.Code >= 300 {
			if !strings.Contains(rec.Body.String(), `"kind":"Status"`) {
				t.Fatalf("apply error is not a Status: %d %s", rec.Code, rec.Body)
			}
			return
		}
		if got := serveBounded(t, s, "GET", path, "", ""); got.Code != 200 {
			t.Fatalf("applied %q but GET answers %d %s", body, got.Code, got.Body)
		}
	})
}

// serveBounded serves one request in-process, failing (with every stack) if it
// does not finish within 10 s.
func serveBounded(t testing.TB, s *Server, method, path, ct, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { s.ServeHTTP(rec, req); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("%s %s (%s) with %q hangs:\n%s", method, path, ct, body, buf[:goruntime.Stack(buf, true)])
	}
	return rec
}
