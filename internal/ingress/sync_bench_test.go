package ingress

import (
	"fmt"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// benchState is n routes in Ingresses of ten hosts each (as bench/ingress
// fills the cluster) to one Service with three endpoints.
func benchState(n int) *State {
	s := &State{Certs: &CertCache{}, Translations: &IngressCache{},
		IngressClasses: []*networkingv1.IngressClass{testClass(true)},
		Services:       []*corev1.Service{testService("echo", corev1.ServicePort{Name: "web", Port: 80})},
	}
	s.Services[0].ResourceVersion = "1"
	s.EndpointSlices = append(s.EndpointSlices, testSlice("echo", "echo-1", "web", 8080,
		testEP{"10.1.0.1", true, true, false}, testEP{"10.1.0.2", true, true, false}, testEP{"10.1.0.3", true, true, false}))
	s.EndpointSlices[0].ResourceVersion = "1"
	for k := 0; k*10 < n; k++ {
		ing := testIngress(fmt.Sprintf("fill-%d", k), nil)
		ing.ResourceVersion = "1"
		ing.UID = types.UID(ing.Name)
		for j := 0; j < 10 && k*10+j < n; j++ {
			ing.Spec.Rules = appendPath(ing.Spec.Rules, fmt.Sprintf("fill-%d-%d.test", k, j), networkingv1.PathTypePrefix, "/", "echo", 80)
		}
		s.Ingresses = append(s.Ingresses, ing)
	}
	return s
}

// BenchmarkFromIngresses3000 is one sync's translation at 3,000 routes after
// one Ingress changed (the others come from the cache).
func BenchmarkFromIngresses3000(b *testing.B) {
	s := benchState(3000)
	opts := IngressOptions{Controller: IngressController, HTTPPort: 80, HTTPSPort: 443}
	b.ReportAllocs()
	rv := 1
	for b.Loop() {
		rv++
		s.Ingresses[7].ResourceVersion = strconv.Itoa(rv)
		t, _ := FromIngresses(s, opts)
		_ = Merge(t.Ports)
	}
}

// BenchmarkFromIngresses3000Uncached is the same without the cache.
func BenchmarkFromIngresses3000Uncached(b *testing.B) {
	s := benchState(3000)
	s.Translations = nil
	opts := IngressOptions{Controller: IngressController, HTTPPort: 80, HTTPSPort: 443}
	b.ReportAllocs()
	for b.Loop() {
		t, _ := FromIngresses(s, opts)
		_ = Merge(t.Ports)
	}
}
