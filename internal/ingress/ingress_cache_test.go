package ingress

import (
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func TestIngressCache(t *testing.T) {
	opts := IngressOptions{Controller: IngressController, HTTPPort: 80, HTTPSPort: 443}
	state := func() *State {
		ing := testIngress("web", nil)
		ing.ResourceVersion = "1"
		ing.Spec.Rules = appendPath(nil, "web.test", networkingv1.PathTypePrefix, "/", "web", 80)
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"web.test"}, SecretName: "tls"}}
		svc := testService("web", corev1.ServicePort{Name: "http", Port: 80})
		svc.ResourceVersion = "1"
		es := testSlice("web", "web-1", "http", 8080, testEP{"10.1.0.1", true, true, false})
		es.ResourceVersion, es.UID = "1", "es-1"
		return &State{Ingresses: []*networkingv1.Ingress{ing}, IngressClasses: []*networkingv1.IngressClass{testClass(true)},
			Services: []*corev1.Service{svc}, EndpointSlices: []*discoveryv1.EndpointSlice{es}}
	}
	tests := []struct {
		name   string
		change func(s *State)
		reused bool
	}{
		{"nothing changed", func(*State) {}, true},
		{"ingress changed", func(s *State) { s.Ingresses[0].ResourceVersion = "2" }, false},
		{"service changed", func(s *State) { s.Services[0].ResourceVersion = "2" }, false},
		{"endpoints changed", func(s *State) {
			s.EndpointSlices[0] = testSlice("web", "web-1", "http", 8080, testEP{"10.1.0.2", true, true, false})
			s.EndpointSlices[0].ResourceVersion, s.EndpointSlices[0].UID = "2", "es-1"
		}, false},
		{"slice added", func(s *State) {
			es := testSlice("web", "web-2", "http", 8080, testEP{"10.1.0.3", true, true, false})
			es.ResourceVersion, es.UID = "3", "es-2"
			s.EndpointSlices = append(s.EndpointSlices, es)
		}, false},
		{"service removed", func(s *State) { s.Services = nil }, false},
		{"secret added", func(s *State) { s.Secrets = []*corev1.Secret{testTLSSecret(t, "tls", "web.test")} }, false},
		{"no resourceVersion", func(s *State) { s.Ingresses[0].ResourceVersion = "" }, false},
		{"options changed", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := state()
			s.Translations = &IngressCache{}
			first, _ := FromIngresses(s, opts)
			o := opts
			if tt.change != nil {
				tt.change(s)
			} else {
				o.HTTPSPort = 8443
			}
			second, _ := FromIngresses(s, o)
			a := first.Ports[80].Match(httptest.NewRequest("GET", "http://web.test/", nil))
			b := second.Ports[80].Match(httptest.NewRequest("GET", "http://web.test/", nil))
			if (a == b) != tt.reused {
				t.Fatalf("route reused = %v, want %v", a == b, tt.reused)
			}
			// What the cache gives equals a build without it.
			s.Translations = nil
			fresh, _ := FromIngresses(s, o)
			c := fresh.Ports[80].Match(httptest.NewRequest("GET", "http://web.test/", nil))
			if b.Source != c.Source || len(b.Backends[0].Endpoints) != len(c.Backends[0].Endpoints) ||
				b.Backends[0].Problem != c.Backends[0].Problem || len(second.Ports[o.HTTPSPort].Certs) != len(fresh.Ports[o.HTTPSPort].Certs) {
				t.Fatalf("cached build differs from a fresh one: %+v vs %+v", b, c)
			}
			for i, ep := range b.Backends[0].Endpoints {
				if ep != c.Backends[0].Endpoints[i] {
					t.Fatalf("endpoints %v, fresh %v", b.Backends[0].Endpoints, c.Backends[0].Endpoints)
				}
			}
		})
	}
	// Ingresses gone are forgotten.
	s := state()
	s.Translations = &IngressCache{}
	FromIngresses(s, opts)
	s.Ingresses = nil
	FromIngresses(s, opts)
	if n := len(s.Translations.m); n != 0 {
		t.Fatalf("%d translations kept after the Ingress went", n)
	}
}
