package apiserver

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestPatchTypes(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services",
		`{"metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80},{"name":"https","port":443}]}}`))
	// Strategic merge: ports merge by port number; other ports stay.
	r := h.must(200, h.do("PATCH", "/api/v1/namespaces/default/services/web",
		`{"spec":{"ports":[{"name":"http","port":80,"targetPort":8080}]}}`, "Content-Type", "application/strategic-merge-patch+json"))
	if ports := r.str("spec", "ports"); !strings.Contains(ports, `"targetPort":8080`) || !strings.Contains(ports, `"port":443`) {
		t.Fatalf("strategic merge ports: %s", ports)
	}
	// JSON merge patch replaces lists.
	r = h.must(200, h.do("PATCH", "/api/v1/namespaces/default/services/web",
		`{"spec":{"ports":[{"port":9090}]}}`, "Content-Type", "application/merge-patch+json"))
	if ports := r.str("spec", "ports"); strings.Contains(ports, "443") || !strings.Contains(ports, "9090") {
		t.Fatalf("merge patch ports: %s", ports)
	}
	r = h.must(200, h.do("PATCH", "/api/v1/namespaces/default/services/web",
		`[{"op":"replace","path":"/spec/selector/app","value":"api"}]`, "Content-Type", "application/json-patch+json"))
	if r.str("spec", "selector") != `{"app":"api"}` {
		t.Fatalf("json patch: %s", r.str("spec", "selector"))
	}
	h.must(422, h.do("PATCH", "/api/v1/namespaces/default/services/web",
		`[{"op":"test","path":"/spec/selector/app","value":"nope"}]`, "Content-Type", "application/json-patch+json"))
	h.must(415, h.do("PATCH", "/api/v1/namespaces/default/services/web", "spec: {}", "Content-Type", "application/x-unknown-patch"))
	h.must(404, h.do("PATCH", "/api/v1/namespaces/default/services/missing", `{}`, "Content-Type", "application/merge-patch+json"))
	// A patch carrying a stale resourceVersion is a conflict.
	h.must(409, h.do("PATCH", "/api/v1/namespaces/default/services/web", `{"metadata":{"resourceVersion":"1"}}`, "Content-Type", "application/merge-patch+json"))
}

func TestFinalizersAndGracefulPods(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"name":"f","finalizers":["example.com/keep"]}}`))
	d := h.must(200, h.do("DELETE", "/api/v1/namespaces/default/configmaps/f", ""))
	if d.str("metadata", "deletionTimestamp") == "" {
		t.Fatalf("delete with finalizer should mark, got %s", d.body)
	}
	h.must(403, h.do("PATCH", "/api/v1/namespaces/default/configmaps/f", `{"metadata":{"finalizers":["example.com/keep","x/y"]}}`, "Content-Type", "application/merge-patch+json"))
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/configmaps/f", `{"metadata":{"finalizers":null}}`, "Content-Type", "application/merge-patch+json"))
	h.must(404, h.do("GET", "/api/v1/namespaces/default/configmaps/f", ""))

	pod := `{"metadata":{"name":"p"},"spec":{"nodeName":"node1","terminationGracePeriodSeconds":20,"containers":[{"name":"c","image":"i"}]}}`
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", pod))
	d = h.must(200, h.do("DELETE", "/api/v1/namespaces/default/pods/p", ""))
	if d.str("metadata", "deletionGracePeriodSeconds") != "20" {
		t.Fatalf("graceful pod delete: %s", d.str("metadata"))
	}
	h.must(200, h.do("GET", "/api/v1/namespaces/default/pods/p", ""))
	// The node's agent finishes the deletion with grace 0 (node identity).
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0", "", "Authorization", "Bearer "+nodeToken))
	h.must(404, h.do("GET", "/api/v1/namespaces/default/pods/p", ""))
	// Unbound pods go at once.
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"u"},"spec":{"containers":[{"name":"c","image":"i"}]}}`))
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/pods/u", ""))
	h.must(404, h.do("GET", "/api/v1/namespaces/default/pods/u", ""))
}

func TestLegacyDeploymentVersions(t *testing.T) {
	h := newHarness(t)
	for _, gv := range []string{"apps/v1beta1", "extensions/v1beta1"} {
		name := strings.ReplaceAll(strings.Split(gv, "/")[0], "extensions", "ext")
		body := `{"apiVersion":"` + gv + `","kind":"Deployment","metadata":{"name":"` + name + `"},"spec":{"replicas":2,` +
			`"template":{"metadata":{"labels":{"app":"` + name + `"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
		r := h.must(201, h.do("POST", "/apis/"+gv+"/namespaces/default/deployments", body))
		if !strings.Contains(r.header.Get("Warning"), gv+" Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment") {
			t.Fatalf("%s warning header %q", gv, r.header.Get("Warning"))
		}
		if r.str("apiVersion") != gv {
			t.Fatalf("%s answered as %s", gv, r.str("apiVersion"))
		}
		v1 := h.must(200, h.do("GET", "/apis/apps/v1/namespaces/default/deployments/"+name, ""))
		if v1.str("spec", "selector") != `{"matchLabels":{"app":"`+name+`"}}` || v1.str("apiVersion") != "apps/v1" {
			t.Fatalf("stored as apps/v1 with defaulted selector? %s", v1.str("spec", "selector"))
		}
	}
	l := h.must(200, h.do("GET", "/apis/apps/v1beta1/namespaces/default/deployments", ""))
	if l.str("kind") != "DeploymentList" || l.str("apiVersion") != "apps/v1beta1" {
		t.Fatalf("legacy list: %s %s", l.str("kind"), l.str("apiVersion"))
	}
}

func TestAuthorization(t *testing.T) {
	h := newHarness(t)
	anon := h.do("GET", "/api/v1/namespaces", "", "Authorization", "")
	if anon.code != 401 || anon.str("reason") != "Unauthorized" {
		t.Fatalf("anonymous: %d %s", anon.code, anon.body)
	}
	h.must(401, h.do("GET", "/api", "", "Authorization", "Bearer wrong"))
	h.must(200, h.do("GET", "/healthz", "", "Authorization", ""))
	h.must(200, h.do("GET", "/version", "", "Authorization", ""))
	viewer := []string{"Authorization", "Bearer " + viewerToken}
	h.must(200, h.do("GET", "/api/v1/namespaces/default/services", "", viewer...))
	f := h.must(403, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"name":"x"}}`, viewer...))
	if !strings.Contains(f.str("message"), `User "viewer" cannot create resource "configmaps"`) {
		t.Fatalf("forbidden message: %s", f.str("message"))
	}
	h.must(403, h.do("GET", "/api/v1/namespaces/default/secrets", "", viewer...))

	node := []string{"Authorization", "Bearer " + nodeToken}
	h.must(201, h.do("POST", "/api/v1/nodes", `{"metadata":{"name":"node1"}}`, node...))
	h.must(403, h.do("POST", "/api/v1/nodes", `{"metadata":{"name":"node2"}}`, node...))
	h.must(201, h.do("POST", "/api/v1/nodes", `{"metadata":{"name":"node2"}}`))
	h.must(200, h.do("PATCH", "/api/v1/nodes/node1/status", `{"status":{"phase":"Running"}}`, append(node, "Content-Type", "application/merge-patch+json")...))
	h.must(403, h.do("PATCH", "/api/v1/nodes/node2/status", `{"status":{"phase":"Running"}}`, append(node, "Content-Type", "application/merge-patch+json")...))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"mine"},"spec":{"nodeName":"node1","containers":[{"name":"c","image":"i"}]}}`))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"theirs"},"spec":{"nodeName":"node2","containers":[{"name":"c","image":"i"}]}}`))
	st := `{"status":{"podIP":"10.244.0.5"}}`
	mp := append(node, "Content-Type", "application/merge-patch+json")
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/pods/mine/status", st, mp...))
	h.must(403, h.do("PATCH", "/api/v1/namespaces/default/pods/theirs/status", st, mp...))
	h.must(403, h.do("PATCH", "/api/v1/namespaces/default/pods/mine", `{"metadata":{"labels":{"a":"b"}}}`, mp...))
	h.must(201, h.do("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", `{"metadata":{"name":"node1"},"spec":{"holderIdentity":"node1"}}`, node...))
	h.must(403, h.do("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", `{"metadata":{"name":"node2"}}`, node...))
}

func TestNamespaceDeletionEmptiesIt(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces", `{"metadata":{"name":"demo","finalizers":["example.com/hold"]}}`))
	h.must(201, h.do("POST", "/api/v1/namespaces/demo/services", nodePortSvc("web", 30200)))
	h.must(201, h.do("POST", "/api/v1/namespaces/demo/configmaps", `{"metadata":{"name":"c"}}`))
	d := h.must(200, h.do("DELETE", "/api/v1/namespaces/demo", ""))
	if d.str("status", "phase") != "Terminating" {
		t.Fatalf("namespace phase %q", d.str("status", "phase"))
	}
	h.must(403, h.do("POST", "/api/v1/namespaces/demo/configmaps", `{"metadata":{"name":"late"}}`))
	waitFor(t, func() bool { return h.do("GET", "/api/v1/namespaces/demo/configmaps/c", "").code == 404 })
	waitFor(t, func() bool { return h.do("GET", "/api/v1/namespaces/demo", "").str("spec", "finalizers") == "" })
	h.must(200, h.do("PATCH", "/api/v1/namespaces/demo", `{"metadata":{"finalizers":null}}`, "Content-Type", "application/merge-patch+json"))
	h.must(404, h.do("GET", "/api/v1/namespaces/demo", ""))
	// Its service's node port was released.
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", nodePortSvc("again", 30200)))
}

func TestProtobufRequestBody(t *testing.T) {
	h := newHarness(t)
	info, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		t.Fatal("no protobuf serializer")
	}
	sec := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "tls"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}
	var buf bytes.Buffer
	if err := info.Serializer.Encode(sec, &buf); err != nil {
		t.Fatal(err)
	}
	r := h.must(201, h.do("POST", "/api/v1/namespaces/default/secrets", buf.String(), "Content-Type", runtime.ContentTypeProtobuf))
	if r.str("type") != "kubernetes.io/tls" || r.str("data", "tls.key") != "aw==" {
		t.Fatalf("protobuf secret: %s", r.body)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScaleSubresource(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/apis/apps/v1/namespaces/default/deployments", deployJSON("web", 3)))
	sc := h.must(200, h.do("GET", "/apis/apps/v1/namespaces/default/deployments/web/scale", ""))
	if sc.str("kind") != "Scale" || sc.str("apiVersion") != "autoscaling/v1" || sc.str("spec", "replicas") != "3" || sc.str("status", "selector") != "app=web" {
		t.Fatalf("scale = %s", sc.body)
	}
	h.must(200, h.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", `{"spec":{"replicas":5}}`, "Content-Type", "application/merge-patch+json"))
	if d := h.must(200, h.do("GET", "/apis/apps/v1/namespaces/default/deployments/web", "")); d.str("spec", "replicas") != "5" || d.str("metadata", "generation") != "2" {
		t.Fatalf("after scale patch: replicas=%s generation=%s", d.str("spec", "replicas"), d.str("metadata", "generation"))
	}
	h.must(200, h.do("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale", `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web"},"spec":{"replicas":1}}`))
	h.must(409, h.do("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale", `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web","resourceVersion":"2"},"spec":{"replicas":1}}`))
	h.must(400, h.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", `{"spec":{"replicas":-1}}`, "Content-Type", "application/merge-patch+json"))
	h.must(404, h.do("GET", "/api/v1/namespaces/default/services/kubernetes/scale", ""))
	d := h.must(200, h.do("GET", "/apis/apps/v1", ""))
	if !strings.Contains(d.body, `"name":"deployments/scale"`) {
		t.Fatalf("discovery lacks deployments/scale: %s", d.body)
	}
}

func TestReplicationControllerScaleAndDefaults(t *testing.T) {
	h := newHarness(t)
	rc := `{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"web"},"spec":{"template":{"metadata":{"labels":{"app":"web"}},` +
		`"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	got := h.must(201, h.do("POST", "/api/v1/namespaces/default/replicationcontrollers", rc))
	if got.str("spec", "selector", "app") != "web" || got.str("spec", "replicas") != "1" || got.str("metadata", "labels", "app") != "web" {
		t.Fatalf("defaults not applied: %s", got.body)
	}
	sc := h.must(200, h.do("GET", "/api/v1/namespaces/default/replicationcontrollers/web/scale", ""))
	if sc.str("kind") != "Scale" || sc.str("spec", "replicas") != "1" || sc.str("status", "selector") != "app=web" {
		t.Fatalf("scale = %s", sc.body)
	}
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/replicationcontrollers/web/scale", `{"spec":{"replicas":3}}`, "Content-Type", "application/merge-patch+json"))
	if r := h.must(200, h.do("GET", "/api/v1/namespaces/default/replicationcontrollers/web", "")); r.str("spec", "replicas") != "3" {
		t.Fatalf("after scale: %s", r.body)
	}
	bad := `{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"bad"},"spec":{"selector":{"app":"x"},` +
		`"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	if r := h.must(422, h.do("POST", "/api/v1/namespaces/default/replicationcontrollers", bad)); !strings.Contains(r.body, "`selector` does not match template `labels`") {
		t.Fatalf("invalid rc: %s", r.body)
	}
	d := h.must(200, h.do("GET", "/api/v1", ""))
	for _, want := range []string{`"name":"replicationcontrollers/scale"`, `"name":"replicationcontrollers/status"`, `"shortNames":["rc"]`, `"shortNames":["sa"]`} {
		if !strings.Contains(d.body, want) {
			t.Fatalf("discovery lacks %s", want)
		}
	}
}

func TestSelfReviews(t *testing.T) {
	h := newHarness(t)
	ssar := `{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"create","resource":"pods","namespace":"default"}}}`
	if r := h.must(201, h.do("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ssar)); r.str("status", "allowed") != "true" {
		t.Fatalf("admin can-i: %s", r.body)
	}
	r := h.must(201, h.do("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ssar, "Authorization", "Bearer "+viewerToken))
	if r.str("status", "allowed") == "true" || r.str("status", "reason") != "" {
		t.Fatalf("viewer can-i: %s", r.body)
	}
	w := h.must(201, h.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`, "Authorization", "Bearer "+nodeToken))
	if w.str("status", "userInfo", "username") != "system:node:node1" {
		t.Fatalf("whoami: %s", w.body)
	}
	h.must(405, h.do("GET", "/apis/authentication.k8s.io/v1/selfsubjectreviews", ""))
}

func TestPodBinding(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`))
	bind := `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"node1"}}`
	h.must(403, h.do("POST", "/api/v1/namespaces/default/pods/p/binding", bind, "Authorization", "Bearer "+nodeToken))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods/p/binding", bind))
	if p := h.must(200, h.do("GET", "/api/v1/namespaces/default/pods/p", "")); p.str("spec", "nodeName") != "node1" {
		t.Fatalf("bound to %q", p.str("spec", "nodeName"))
	}
	c := h.must(409, h.do("POST", "/api/v1/namespaces/default/pods/p/binding", bind))
	if !strings.Contains(c.str("message"), `already assigned to node "node1"`) {
		t.Fatalf("double binding: %s", c.body)
	}
	h.must(422, h.do("POST", "/api/v1/namespaces/default/pods/p/binding", `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{}}`))
	h.must(405, h.do("POST", "/api/v1/namespaces/default/pods/p", `{}`))
}
