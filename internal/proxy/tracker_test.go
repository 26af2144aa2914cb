package proxy

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(name, ip string, mutate func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if mutate != nil {
		mutate(s)
	}
	return s
}

func slice(svcName, name, node string, ready bool, ips ...string) *discoveryv1.EndpointSlice {
	port, pname := int32(8080), "http"
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: svcName}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: &pname, Port: &port}}}
	for _, ip := range ips {
		r := ready
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &r}, NodeName: &node})
	}
	return es
}

func TestTrackerFoldsChanges(t *testing.T) {
	tr := NewTracker("n1")
	tr.OnService(svc("web", "10.96.0.5", nil), false)
	tr.OnSlice(slice("web", "web-a", "n1", true, "10.244.0.2", "10.244.0.3"), false)
	tr.OnSlice(slice("web", "web-b", "n2", true, "10.244.1.2", "10.244.0.2"), false) // 10.244.0.2 twice: counted once
	st, changed, _ := tr.Apply()
	k := Key{"ns", "web", "http"}
	if len(changed) != 1 || changed[0] != k || len(st.Endpoints[k]) != 3 {
		t.Fatalf("changed %v endpoints %v", changed, st.Endpoints[k])
	}
	if e := st.Endpoints[k][0]; e.Addr != netip.MustParseAddrPort("10.244.0.2:8080") || !e.Local {
		t.Errorf("first endpoint %+v: want 10.244.0.2:8080, local", e)
	}
	if _, changed, _ := tr.Apply(); len(changed) != 0 {
		t.Errorf("nothing pending, changed %v", changed)
	}
	tr.OnService(svc("other", "10.96.0.6", nil), false)
	tr.OnService(svc("web", "10.96.0.5", nil), true)
	st, changed, _ = tr.Apply()
	if len(changed) != 2 || st.Services[k] != nil || st.Endpoints[k] != nil {
		t.Errorf("after deleting web: changed %v, state %v", changed, st.Services)
	}
}

func TestServicePortsConversion(t *testing.T) {
	if got := ServicePorts(svc("headless", "None", nil)); got != nil {
		t.Errorf("headless: %v", got)
	}
	dns := ServicePorts(svc("kube-dns", "10.96.0.10", func(s *corev1.Service) { s.Labels = map[string]string{ServiceProxyNameLabel: "x"} }))
	if len(dns) != 1 || dns[0].Port != 0 || dns[0].ClusterIP != netip.MustParseAddr("10.96.0.10") {
		t.Errorf("another proxy's service: %+v", dns)
	}
	if l := ServicePorts(svc("labelled", "10.96.0.11", func(s *corev1.Service) { s.Labels = map[string]string{HeadlessLabel: ""} })); len(l) != 1 || l[0].Port != 0 {
		t.Errorf("a Service labelled %s gets no ports: %+v", HeadlessLabel, l)
	}
	sp := ServicePorts(svc("np", "10.96.0.7", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30007
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	}))[0]
	if sp.NodePort != 30007 || !sp.ExternalLocal || sp.AffinityTimeout != 10800 {
		t.Errorf("node port service: %+v", sp)
	}
}

func TestUsable(t *testing.T) {
	eps := []Endpoint{{Addr: netip.MustParseAddrPort("10.0.0.1:1"), Ready: false, Serving: true, Terminating: true, Local: true},
		{Addr: netip.MustParseAddrPort("10.0.0.2:1"), Ready: true, Serving: true, Local: false}}
	if got := Usable(eps, false); len(got) != 1 || got[0].Addr.Port() != 1 || got[0].Addr.Addr().String() != "10.0.0.2" {
		t.Errorf("ready ones first: %v", got)
	}
	if got := Usable(eps, true); len(got) != 1 || got[0].Addr.Addr().String() != "10.0.0.1" {
		t.Errorf("local: only the terminating local one is left: %v", got)
	}
}

func TestUsableTerminating(t *testing.T) {
	ep := func(ip string, ready, serving, terminating bool) Endpoint {
		return Endpoint{Addr: netip.MustParseAddrPort(ip + ":80"), Ready: ready, Serving: serving, Terminating: terminating}
	}
	for _, tc := range []struct {
		name string
		eps  []Endpoint
		want []string
	}{
		// publishNotReadyAddresses: the controller marks a terminating, unready pod
		// ready; kube-proxy goes by ready alone and sends traffic to it
		{"ready terminating not serving", []Endpoint{ep("10.0.0.1", true, false, true)}, []string{"10.0.0.1"}},
		{"ready terminating beside a ready one", []Endpoint{ep("10.0.0.1", true, false, true), ep("10.0.0.2", true, true, false)}, []string{"10.0.0.1", "10.0.0.2"}},
		{"serving terminating only as fallback", []Endpoint{ep("10.0.0.1", false, true, true), ep("10.0.0.2", true, true, false)}, []string{"10.0.0.2"}},
		{"serving terminating when nothing is ready", []Endpoint{ep("10.0.0.1", false, true, true)}, []string{"10.0.0.1"}},
		{"neither ready nor serving", []Endpoint{ep("10.0.0.1", false, false, true), ep("10.0.0.2", false, false, false)}, nil},
	} {
		var got []string
		for _, e := range Usable(tc.eps, false) {
			got = append(got, e.Addr.Addr().String())
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTrackerPendingKinds(t *testing.T) {
	tr := NewTracker("n1")
	tr.OnService(svc("a", "10.96.0.1", nil), false)
	tr.OnService(svc("b", "10.96.0.2", nil), false)
	tr.OnSlice(slice("b", "b-1", "n1", true, "10.244.0.2"), false)
	tr.OnSlice(slice("c", "c-1", "n1", true, "10.244.0.3"), false)
	tr.OnService(svc("a", "10.96.0.1", nil), false) // again: still one
	tr.OnSlice(slice("c", "c-2", "n1", true, "10.244.0.4"), false)
	if s, e := tr.Pending(); s != 2 || e != 2 {
		t.Errorf("pending services %d, endpoints %d; want 2 and 2 (b changed both)", s, e)
	}
	tr.Apply()
	if s, e := tr.Pending(); s != 0 || e != 0 {
		t.Errorf("after Apply: pending %d, %d; want none", s, e)
	}
}

func TestLoopbackEndpoints(t *testing.T) {
	api := slice("kubernetes", "kubernetes", "", true, "127.0.0.1")
	api.Namespace, api.Endpoints[0].NodeName = "default", nil
	for _, tc := range []struct {
		name string
		es   *discoveryv1.EndpointSlice
		want int
	}{
		{"the API server of svcnet up", api, 1},
		{"a hostNetwork pod of this node", slice("web", "web-a", "n1", true, "127.0.0.1"), 1},
		{"another node's loopback", slice("web", "web-b", "n2", true, "127.0.0.1", "10.244.1.2"), 1},
		{"a slice without a node", func() *discoveryv1.EndpointSlice {
			es := slice("web", "web-c", "", true, "127.0.0.2")
			es.Endpoints[0].NodeName = nil
			return es
		}(), 0},
		{"kubernetes in another namespace", slice("kubernetes", "k", "n2", true, "127.0.0.1"), 0},
	} {
		got := SliceEndpoints(tc.es, "n1")["http"]
		if len(got) != tc.want {
			t.Errorf("%s: %v, want %d endpoints", tc.name, got, tc.want)
		}
		for _, e := range got {
			if e.Addr.Addr().IsLoopback() && e.Node == "n2" {
				t.Errorf("%s: kept another node's loopback %v", tc.name, e)
			}
		}
	}
}

func TestTrackedSlicesByName(t *testing.T) {
	var s []trackedSlice
	s = putSlice(s, trackedSlice{name: "b"})
	s = putSlice(s, trackedSlice{name: "a"})
	s = putSlice(s, trackedSlice{name: "a", ports: []portEndpoints{{port: "http"}}})
	if len(s) != 2 || s[0].name != "a" || len(s[0].ports) != 1 || s[1].name != "b" {
		t.Fatalf("slices %+v; want a (replaced), b", s)
	}
	if s = removeSlice(s, "b"); len(s) != 1 || s[0].name != "a" {
		t.Fatalf("after removing b: %+v", s)
	}
	if s = removeSlice(s, "a"); s != nil {
		t.Errorf("after removing a: %+v, want nil", s)
	}
}
