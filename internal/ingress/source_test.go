package ingress

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

func TestMerge(t *testing.T) {
	a := &Route{Source: "a"}
	b := &Route{Source: "b"}
	c := &Route{Source: "c"}
	tab := Merge(
		map[int]*Port{80: {Hosts: map[string]*Host{"x": {Routes: []*Route{a}}}}, 443: {TLS: true, Certs: []Cert{{Source: "1"}}}},
		map[int]*Port{80: {Hosts: map[string]*Host{"x": {Routes: []*Route{b}}, "y": {Routes: []*Route{c}}}}, 443: {Certs: []Cert{{Source: "2"}}}, 8080: {}},
	)
	if got := tab.Ports[80].Hosts["x"].Routes; len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("host x routes: %v", got)
	}
	if tab.Ports[80].Hosts["y"].Routes[0] != c || !tab.Ports[443].TLS || len(tab.Ports[443].Certs) != 2 || tab.Ports[8080] == nil {
		t.Errorf("merged: %+v", tab.Ports)
	}
}

func TestLoadBalancerStatus(t *testing.T) {
	lb := func(ips ...string) []networkingv1.IngressLoadBalancerIngress {
		var out []networkingv1.IngressLoadBalancerIngress
		for _, ip := range ips {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip})
		}
		return out
	}
	tests := []struct {
		cur     []networkingv1.IngressLoadBalancerIngress
		serving bool
		want    []networkingv1.IngressLoadBalancerIngress
		changed bool
	}{
		{nil, true, lb("10.0.0.1"), true},
		{lb("10.0.0.2"), true, lb("10.0.0.2", "10.0.0.1"), true}, // another agent's entry stays
		{lb("10.0.0.1", "10.0.0.2"), true, lb("10.0.0.1", "10.0.0.2"), false},
		{lb("10.0.0.2", "10.0.0.1"), false, lb("10.0.0.2"), true},
		{lb("10.0.0.2"), false, lb("10.0.0.2"), false},
	}
	for i, tt := range tests {
		got, changed := LoadBalancerStatus(tt.cur, []string{"10.0.0.1"}, tt.serving)
		if changed != tt.changed || !equality.Semantic.DeepEqual(got, tt.want) {
			t.Errorf("%d: %v %v, want %v %v", i, got, changed, tt.want, tt.changed)
		}
	}
}
