package ingress

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
)

func testIngress(name string, class *string) *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: networkingv1.IngressSpec{IngressClassName: class}}
}

func appendPath(rules []networkingv1.IngressRule, host string, pt networkingv1.PathType, path, svc string, port int32) []networkingv1.IngressRule {
	var r *networkingv1.IngressRule
	for i := range rules {
		if rules[i].Host == host {
			r = &rules[i]
		}
	}
	if r == nil {
		rules = append(rules, networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}})
		r = &rules[len(rules)-1]
	}
	r.HTTP.Paths = append(r.HTTP.Paths, networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(pt),
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: port}}}})
	return rules
}

// pathIndex reads J from "... rule I path J".
func pathIndex(t *testing.T, source string) int {
	var j int
	if _, err := fmt.Sscanf(source[strings.LastIndex(source, " path ")+1:], "path %d", &j); err != nil {
		t.Fatalf("source %q: %v", source, err)
	}
	return j
}

func testService(name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
}

type testEP struct {
	ip                          string
	ready, serving, terminating bool
}

func testSlice(svc, name, portName string, port int32, eps ...testEP) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}}}
	for _, e := range eps {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{
			Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating)}})
	}
	return es
}

func testTLSSecret(t *testing.T, name, host string) *corev1.Secret {
	crt, key, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
}

func TestFromIngressesBackends(t *testing.T) {
	ing := testIngress("web", nil)
	ing.Spec.Rules = appendPath(nil, "foo.example.com", networkingv1.PathTypePrefix, "/", "foo", 80)
	ing.Spec.Rules = appendPath(ing.Spec.Rules, "bar.example.com", networkingv1.PathTypePrefix, "/", "bar", 0)
	ing.Spec.Rules[1].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "web"}
	ing.Spec.Rules = appendPath(ing.Spec.Rules, "bar.example.com", networkingv1.PathTypeExact, "/missing", "nosuch", 80)
	ing.Spec.Rules = appendPath(ing.Spec.Rules, "bar.example.com", networkingv1.PathTypePrefix, "/res", "x", 80)
	ing.Spec.Rules[1].HTTP.Paths[2].Backend = networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}}
	s := &State{
		Ingresses:      []*networkingv1.Ingress{ing},
		IngressClasses: []*networkingv1.IngressClass{testClass(true)},
		Services: []*corev1.Service{
			testService("foo", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}),
			testService("bar", corev1.ServicePort{Name: "web", Port: 8000, TargetPort: intstr.FromString("www")}),
		},
		EndpointSlices: []*discoveryv1.EndpointSlice{
			testSlice("foo", "foo-1", "http", 8080, testEP{"10.0.0.2", true, true, false}, testEP{"10.0.0.1", true, true, false},
				testEP{"10.0.0.3", false, true, true}),
			// A named targetPort resolves to different numbers per pod.
			testSlice("bar", "bar-1", "web", 9001, testEP{"10.0.1.1", false, true, true}),
			testSlice("bar", "bar-2", "web", 9002, testEP{"10.0.1.2", false, true, true}, testEP{"10.0.1.3", false, false, true}),
		},
	}
	tab, events := FromIngresses(s, IngressOptions{Controller: IngressController, HTTPPort: 80, HTTPSPort: 443})
	eps := func(host, path string) ([]string, *Backend) {
		rt := tab.Ports[80].Match(httptest.NewRequest("GET", "http://"+host+path, nil))
		if rt == nil {
			return nil, nil
		}
		var out []string
		for _, e := range rt.Backends[0].Endpoints {
			out = append(out, e.String())
		}
		return out, rt.Backends[0]
	}
	if got, _ := eps("foo.example.com", "/x"); !slices.Equal(got, []string{"10.0.0.1:8080", "10.0.0.2:8080"}) {
		t.Errorf("foo: endpoints %v, want the two ready ones", got)
	}
	// No ready endpoint: the serving terminating ones.
	if got, _ := eps("bar.example.com", "/"); !slices.Equal(got, []string{"10.0.1.1:9001", "10.0.1.2:9002"}) {
		t.Errorf("bar: endpoints %v, want the serving terminating ones with their own ports", got)
	}
	if _, b := eps("bar.example.com", "/missing"); b == nil || b.Status != 503 || !strings.Contains(b.Problem, "not found") {
		t.Errorf("missing service: backend %+v, want a 503 problem", b)
	}
	if _, b := eps("bar.example.com", "/res/x"); b == nil || b.Status != 503 {
		t.Errorf("resource backend: backend %+v, want a 503 problem", b)
	}
	var reasons []string
	for _, e := range events {
		reasons = append(reasons, e.Reason+": "+e.Message)
	}
	want := []string{
		"BackendNotFound: spec.rules[1].http.paths[1].backend.service: service default/nosuch not found",
		"ResourceBackend: spec.rules[1].http.paths[2].backend.resource: resource backends are not supported by svcnet.io/ingress",
	}
	if !slices.Equal(reasons, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(reasons, "\n"), strings.Join(want, "\n"))
	}
	if tab.Ports[443] == nil || !tab.Ports[443].TLS || tab.Ports[80].TLS {
		t.Errorf("ports: %+v", tab.Ports)
	}
}

func TestOurIngresses(t *testing.T) {
	other := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	legacy := testIngress("legacy", nil)
	legacy.Annotations = map[string]string{annotationLegacyClass: "svcnet"}
	legacyOther := testIngress("legacy-other", nil)
	legacyOther.Annotations = map[string]string{annotationLegacyClass: "nginx"}
	ings := []*networkingv1.Ingress{testIngress("none", nil), testIngress("ours", ptr.To("svcnet")), testIngress("theirs", ptr.To("nginx")),
		testIngress("unknown", ptr.To("gone")), legacy, legacyOther}
	for _, tt := range []struct {
		dflt bool
		want []string
	}{
		{true, []string{"legacy", "none", "ours"}},
		{false, []string{"legacy", "ours"}},
	} {
		got := OurIngresses(&State{Ingresses: ings, IngressClasses: []*networkingv1.IngressClass{testClass(tt.dflt), other}}, IngressController)
		var names []string
		for _, i := range got {
			names = append(names, i.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("default %v: %v, want %v", tt.dflt, names, tt.want)
		}
	}
}

func TestFromIngressesTLSRedirectDefault(t *testing.T) {
	a := testIngress("a", nil)
	a.CreationTimestamp = metav1.Unix(1, 0)
	a.Annotations = map[string]string{AnnotationNginxSSLRedirect: "true"}
	a.Spec.Rules = appendPath(nil, "secure.example.com", networkingv1.PathTypePrefix, "/", "svc", 80)
	a.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"secure.example.com"}, SecretName: "secure"},
		{Hosts: []string{"*.wild.example.com"}, SecretName: "wild"}, {SecretName: "absent"}}
	b := testIngress("b", nil)
	b.CreationTimestamp = metav1.Unix(2, 0)
	b.Annotations = map[string]string{AnnotationSSLRedirect: "false", AnnotationNginxSSLRedirect: "true"}
	b.Spec.Rules = appendPath(nil, "plain.example.com", networkingv1.PathTypePrefix, "/", "svc", 80)
	b.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "svc", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	s := &State{Ingresses: []*networkingv1.Ingress{b, a}, IngressClasses: []*networkingv1.IngressClass{testClass(true)},
		Services: []*corev1.Service{testService("svc", corev1.ServicePort{Port: 80})},
		Secrets:  []*corev1.Secret{testTLSSecret(t, "secure", "secure.example.com"), testTLSSecret(t, "wild", "x.wild.example.com")},
		Certs:    &CertCache{}}
	tab, events := FromIngresses(s, IngressOptions{Controller: IngressController, HTTPPort: 80, HTTPSPort: 8443})
	if len(events) != 1 || events[0].Reason != "BadTLSSecret" || !strings.Contains(events[0].Message, "spec.tls[2].secretName: secret default/absent not found") {
		t.Errorf("events: %+v", events)
	}
	https := tab.Ports[8443]
	if len(https.Certs) != 2 || https.Certificate("secure.example.com") != https.Certs[0].Cert || https.Certificate("a.wild.example.com") != https.Certs[1].Cert {
		t.Errorf("certs: %+v", https.Certs)
	}
	rt := tab.Ports[80].Match(httptest.NewRequest("GET", "http://secure.example.com/x", nil))
	if rt == nil || rt.Redirect == nil || rt.Redirect.Scheme != "https" || rt.Redirect.Port != 8443 || rt.Redirect.Code != 308 {
		t.Errorf("HTTP secure.example.com: %+v, want a 308 redirect to https:8443", rt)
	}
	if rt := https.Match(httptest.NewRequest("GET", "https://secure.example.com/x", nil)); rt == nil || rt.Redirect != nil {
		t.Errorf("HTTPS secure.example.com: %+v, want proxied", rt)
	}
	if rt := tab.Ports[80].Match(httptest.NewRequest("GET", "http://plain.example.com/x", nil)); rt == nil || rt.Redirect != nil {
		t.Errorf("svcnet.io/ssl-redirect=false overrides nginx's: %+v", rt)
	}
	if rt := tab.Ports[80].Match(httptest.NewRequest("GET", "http://elsewhere/x", nil)); rt == nil || rt.Source != "ingress default/b defaultBackend" {
		t.Errorf("default backend: %+v", rt)
	}
	// The cache gives back the parsed certificate while the Secret is unchanged.
	tab2, _ := FromIngresses(s, IngressOptions{Controller: IngressController, HTTPSPort: 8443})
	if tab2.Ports[8443].Certs[0].Cert != https.Certs[0].Cert {
		t.Errorf("certificate parsed again for an unchanged Secret")
	}
}

func TestPrecedenceAcrossIngresses(t *testing.T) {
	old := testIngress("old", nil)
	old.CreationTimestamp = metav1.Unix(1, 0)
	old.Spec.Rules = appendPath(nil, "h.com", networkingv1.PathTypePrefix, "/app", "svc", 80)
	young := testIngress("young", nil)
	young.CreationTimestamp = metav1.Unix(2, 0)
	young.Spec.Rules = appendPath(nil, "h.com", networkingv1.PathTypePrefix, "/app", "svc", 80)
	young.Spec.Rules = appendPath(young.Spec.Rules, "h.com", networkingv1.PathTypePrefix, "/app/v2", "svc", 80)
	young.Spec.Rules = appendPath(young.Spec.Rules, "*.h.com", networkingv1.PathTypePrefix, "/", "svc", 80)
	tab, _ := FromIngresses(&State{Ingresses: []*networkingv1.Ingress{young, old}, IngressClasses: []*networkingv1.IngressClass{testClass(true)}},
		IngressOptions{Controller: IngressController, HTTPPort: 80})
	for url, want := range map[string]string{
		"http://h.com/app/x":      "ingress default/old rule 0 path 0",
		"http://h.com/app/v2/x":   "ingress default/young rule 0 path 1",
		"http://www.h.com/app/v2": "ingress default/young rule 1 path 0",
	} {
		rt := tab.Ports[80].Match(httptest.NewRequest("GET", url, nil))
		if rt == nil || rt.Source != want {
			t.Errorf("%s: %+v, want %s", url, rt, want)
		}
	}
}
