package ingress

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type docPath struct {
	typ  networkingv1.PathType
	path string
}

// TestKubernetesDocExamples is every row of the path-matching table in
// https://kubernetes.io/docs/concepts/services-networking/ingress/#examples,
// run through the translation (precedence included) and the matcher.
func TestKubernetesDocExamples(t *testing.T) {
	P, E := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	tests := []struct {
		paths    []docPath
		requests []string
		want     int // index of the path that serves the request; -1: none (default backend)
	}{
		{[]docPath{{P, "/"}}, []string{"/", "/foo", "/aaa/bbb/ccc", "/x/"}, 0},
		{[]docPath{{E, "/foo"}}, []string{"/foo"}, 0},
		{[]docPath{{E, "/foo"}}, []string{"/bar"}, -1},
		{[]docPath{{E, "/foo"}}, []string{"/foo/"}, -1},
		{[]docPath{{E, "/foo/"}}, []string{"/foo"}, -1},
		{[]docPath{{P, "/foo"}}, []string{"/foo", "/foo/"}, 0},
		{[]docPath{{P, "/foo/"}}, []string{"/foo", "/foo/"}, 0},
		{[]docPath{{P, "/aaa/bb"}}, []string{"/aaa/bbb"}, -1},
		{[]docPath{{P, "/aaa/bbb"}}, []string{"/aaa/bbb"}, 0},
		{[]docPath{{P, "/aaa/bbb/"}}, []string{"/aaa/bbb"}, 0},
		{[]docPath{{P, "/aaa/bbb"}}, []string{"/aaa/bbb/"}, 0},
		{[]docPath{{P, "/aaa/bbb"}}, []string{"/aaa/bbb/ccc"}, 0},
		{[]docPath{{P, "/aaa/bbb"}}, []string{"/aaa/bbbxyz"}, -1},
		{[]docPath{{P, "/"}, {P, "/aaa"}}, []string{"/aaa/ccc"}, 1},
		{[]docPath{{P, "/"}, {P, "/aaa"}, {P, "/aaa/bbb"}}, []string{"/aaa/bbb"}, 2},
		{[]docPath{{P, "/"}, {P, "/aaa"}, {P, "/aaa/bbb"}}, []string{"/ccc"}, 0},
		{[]docPath{{P, "/aaa"}}, []string{"/ccc"}, -1},
		{[]docPath{{P, "/foo"}, {E, "/foo"}}, []string{"/foo"}, 1},
		// ImplementationSpecific is Prefix.
		{[]docPath{{networkingv1.PathTypeImplementationSpecific, "/foo"}}, []string{"/foo/bar"}, 0},
		{[]docPath{{networkingv1.PathTypeImplementationSpecific, "/foo"}}, []string{"/foobar"}, -1},
	}
	for _, tt := range tests {
		ing := testIngress("t", nil)
		for _, p := range tt.paths {
			ing.Spec.Rules = appendPath(ing.Spec.Rules, "", p.typ, p.path, "svc", 80)
		}
		tab, _ := FromIngresses(&State{Ingresses: []*networkingv1.Ingress{ing}, IngressClasses: []*networkingv1.IngressClass{testClass(true)}},
			IngressOptions{Controller: IngressController, HTTPPort: 80})
		for _, path := range tt.requests {
			rt := tab.Ports[80].Match(httptest.NewRequest("GET", "http://x"+path, nil))
			got := -1
			if rt != nil {
				got = pathIndex(t, rt.Source)
			}
			if got != tt.want {
				t.Errorf("paths %v, request %s: served by path %d, want %d", tt.paths, path, got, tt.want)
			}
		}
	}
}

func TestHostMatching(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          bool
	}{
		{"*.foo.com", "bar.foo.com", true},
		{"*.foo.com", "baz.bar.foo.com", false}, // one label only
		{"*.foo.com", "foo.com", false},
		{"foo.com", "foo.com", true},
		{"foo.com", "FOO.com:8080", true},
		{"foo.com", "foo.com.", true},
		{"foo.com", "bar.com", false},
		{"", "anything", true},
	}
	for _, tt := range tests {
		if got := HostMatches(tt.pattern, tt.host); got != tt.want {
			t.Errorf("HostMatches(%q, %q) = %v, want %v", tt.pattern, tt.host, got, tt.want)
		}
	}
}

func TestPortMatch(t *testing.T) {
	r := func(src string, pt PathType, v string) *Route { return &Route{Source: src, Path: pt, Value: v} }
	p := &Port{Hosts: map[string]*Host{
		"foo.com":   {Routes: []*Route{r("foo-api", PathPrefix, "/api")}},
		"*.foo.com": {Routes: []*Route{r("wild", PathPrefix, "/")}},
		"":          {Routes: []*Route{r("any", PathPrefix, "/")}},
		"gw.com": {Routes: []*Route{
			{Source: "get-hdr", Path: PathPrefix, Value: "/", Method: "GET", Headers: []KV{{"X-Env", "canary"}}},
			{Source: "query", Path: PathPrefix, Value: "/", Query: []KV{{"v", "2"}}},
			{Source: "regex", Path: PathRegex, Value: "/item/[0-9]+"},
		}},
	}}
	tests := []struct {
		method, url string
		header      map[string]string
		want        string
	}{
		{"GET", "http://foo.com/api/x", nil, "foo-api"},
		{"GET", "http://FOO.COM:80/api", nil, "foo-api"},
		{"GET", "http://foo.com/other", nil, "any"}, // falls through to the default
		{"GET", "http://a.foo.com/", nil, "wild"},
		{"GET", "http://a.b.foo.com/", nil, "any"},
		{"GET", "http://gw.com/", map[string]string{"x-env": "canary"}, "get-hdr"},
		{"POST", "http://gw.com/", map[string]string{"x-env": "canary"}, "any"},
		{"GET", "http://gw.com/?v=2", nil, "query"},
		{"GET", "http://gw.com/item/12", nil, "regex"},
		{"GET", "http://gw.com/item/12a", nil, "any"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.url, nil)
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		got := ""
		if rt := p.Match(req); rt != nil {
			got = rt.Source
		}
		if got != tt.want {
			t.Errorf("%s %s: route %q, want %q", tt.method, tt.url, got, tt.want)
		}
	}
}

func TestCertificateBySNI(t *testing.T) {
	exact, wild, fallback, first := &tls.Certificate{}, &tls.Certificate{}, &tls.Certificate{}, &tls.Certificate{}
	p := &Port{Certs: []Cert{
		{Hosts: []string{"other.com"}, Cert: first},
		{Hosts: []string{"*.foo.com"}, Cert: wild},
		{Hosts: []string{"a.foo.com"}, Cert: exact},
		{Cert: fallback},
	}}
	tests := []struct {
		sni  string
		want *tls.Certificate
	}{
		{"a.foo.com", exact}, {"A.FOO.COM", exact}, {"b.foo.com", wild}, {"x.b.foo.com", fallback},
		{"", fallback}, {"other.com", first},
	}
	for _, tt := range tests {
		if got := p.Certificate(tt.sni); got != tt.want {
			t.Errorf("Certificate(%q): wrong certificate", tt.sni)
		}
	}
	if got := (&Port{Certs: []Cert{{Hosts: []string{"x.com"}, Cert: first}}}).Certificate("y.com"); got != first {
		t.Errorf("no fallback: want the first certificate")
	}
}

func testClass(dflt bool) *networkingv1.IngressClass {
	c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: IngressClassName},
		Spec: networkingv1.IngressClassSpec{Controller: IngressController}}
	if dflt {
		c.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	}
	return c
}
