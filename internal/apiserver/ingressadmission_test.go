package apiserver

import (
	"fmt"
	"net/http"
	"testing"
)

func TestDefaultIngressClass(t *testing.T) {
	h := newHarness(t)
	const ing = `{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"%s"%s},"spec":{%s"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}`
	create := func(name, meta, spec string) resp {
		t.Helper()
		r := h.do(http.MethodPost, "/apis/networking.k8s.io/v1/namespaces/default/ingresses", fmt.Sprintf(ing, name, meta, spec))
		if r.code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, r.code, r.body)
		}
		return r
	}
	if got := create("plain", "", "").str("spec", "ingressClassName"); got != "svcnet" {
		t.Errorf("an Ingress without a class got %q, want the default class svcnet", got)
	}
	if got := create("named", "", `"ingressClassName":"other",`).str("spec", "ingressClassName"); got != "other" {
		t.Errorf("a named class became %q", got)
	}
	if got := create("legacy", `,"annotations":{"kubernetes.io/ingress.class":"nginx"}`, "").str("spec", "ingressClassName"); got != "" {
		t.Errorf("an Ingress with the legacy class annotation got class %q", got)
	}
}
