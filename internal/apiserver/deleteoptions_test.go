package apiserver

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// DeleteOptions are taken in meta.k8s.io/v1, v1 and a resource's own group
// version (controller-runtime sends gateway.networking.k8s.io/v1beta1 ones).
func TestDeleteOptionsGroupVersions(t *testing.T) {
	for _, body := range []string{
		`{"kind":"DeleteOptions","apiVersion":"meta.k8s.io/v1","propagationPolicy":"Background"}`,
		`{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}`,
		`{"kind":"DeleteOptions","apiVersion":"gateway.networking.k8s.io/v1beta1","propagationPolicy":"Background"}`,
	} {
		r := httptest.NewRequest("DELETE", "/apis/x/v1/namespaces/default/things/a", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		opts, err := deleteOptions(&request{r: r})
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if opts.PropagationPolicy == nil || *opts.PropagationPolicy != "Background" {
			t.Errorf("%s: propagationPolicy %v", body, opts.PropagationPolicy)
		}
	}
	r := httptest.NewRequest("DELETE", "/api/v1/namespaces/default/pods/a", strings.NewReader(`{"kind":"DeleteOptions","apiVersion":"x/v1","propagationPolicy":3}`))
	r.Header.Set("Content-Type", "application/json")
	if _, err := deleteOptions(&request{r: r}); err == nil {
		t.Errorf("a malformed body was taken")
	}
}
