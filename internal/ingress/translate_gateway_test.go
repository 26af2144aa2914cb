package ingress

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var gwNow = metav1.NewTime(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))

func gwClass(name string, ctrl gwv1.GatewayController) *gwv1.GatewayClass {
	return &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}, Spec: gwv1.GatewayClassSpec{ControllerName: ctrl}}
}

func gwGateway(ns, name string, ls ...gwv1.Listener) *gwv1.Gateway {
	return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 2},
		Spec: gwv1.GatewaySpec{GatewayClassName: "svcnet", Listeners: ls}}
}

func httpListener(name string, port int32, host string, from gwv1.FromNamespaces) gwv1.Listener {
	l := gwv1.Listener{Name: gwv1.SectionName(name), Port: gwv1.PortNumber(port), Protocol: gwv1.HTTPProtocolType,
		AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr.To(from)}}}
	if host != "" {
		l.Hostname = ptr.To(gwv1.Hostname(host))
	}
	return l
}

func httpsListener(name, host string, refs ...gwv1.SecretObjectReference) gwv1.Listener {
	l := httpListener(name, 443, host, gwv1.NamespacesFromAll)
	l.Protocol = gwv1.HTTPSProtocolType
	l.TLS = &gwv1.ListenerTLSConfig{CertificateRefs: refs}
	return l
}

func secretRef(ns, name string) gwv1.SecretObjectReference {
	r := gwv1.SecretObjectReference{Name: gwv1.ObjectName(name)}
	if ns != "" {
		r.Namespace = ptr.To(gwv1.Namespace(ns))
	}
	return r
}

type gwMatch struct {
	path, pathType, method string
	headers, query         []KV
}

// gwRoute is an HTTPRoute in ns attached to gw/default with one rule per match, each to svc:80.
func gwRoute(ns, name string, age int, hosts []string, svc string, ms ...gwMatch) *gwv1.HTTPRoute {
	hr := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 3,
		CreationTimestamp: metav1.NewTime(gwNow.Add(time.Duration(age) * time.Second))}}
	hr.Spec.ParentRefs = []gwv1.ParentReference{{Name: "gw", Namespace: ptr.To(gwv1.Namespace("default"))}}
	for _, h := range hosts {
		hr.Spec.Hostnames = append(hr.Spec.Hostnames, gwv1.Hostname(h))
	}
	rule := gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptr.To(gwv1.PortNumber(80))}}}}}
	for _, m := range ms {
		var hm gwv1.HTTPRouteMatch
		if m.path != "" {
			t := gwv1.PathMatchPathPrefix
			if m.pathType != "" {
				t = gwv1.PathMatchType(m.pathType)
			}
			hm.Path = &gwv1.HTTPPathMatch{Type: &t, Value: ptr.To(m.path)}
		}
		if m.method != "" {
			hm.Method = ptr.To(gwv1.HTTPMethod(m.method))
		}
		for _, h := range m.headers {
			hm.Headers = append(hm.Headers, gwv1.HTTPHeaderMatch{Name: gwv1.HTTPHeaderName(h.Name), Value: h.Value})
		}
		for _, q := range m.query {
			hm.QueryParams = append(hm.QueryParams, gwv1.HTTPQueryParamMatch{Name: gwv1.HTTPHeaderName(q.Name), Value: q.Value})
		}
		r := rule
		r.Matches = []gwv1.HTTPRouteMatch{hm}
		hr.Spec.Rules = append(hr.Spec.Rules, r)
	}
	if len(ms) == 0 {
		hr.Spec.Rules = []gwv1.HTTPRouteRule{rule}
	}
	return hr
}

func gwSvc(ns, name string) (*corev1.Service, *discoveryv1.EndpointSlice) {
	svc := testService(name, corev1.ServicePort{Name: "http", Port: 80})
	svc.Namespace = ns
	es := testSlice(name, name+"-1", "http", 8080, testEP{ip: "10.0.0.1", ready: true, serving: true})
	es.Namespace = ns
	return svc, es
}

func gwState(objs ...any) *GatewayState {
	st := &GatewayState{State: &State{}, Addresses: []string{"192.0.2.10"}, Now: gwNow,
		Namespaces: map[string]map[string]string{"default": {"kubernetes.io/metadata.name": "default"}, "other": {"env": "web"}}}
	st.Classes = []*gwv1.GatewayClass{gwClass("svcnet", GatewayControllerName)}
	for _, o := range objs {
		switch o := o.(type) {
		case *gwv1.Gateway:
			st.Gateways = append(st.Gateways, o)
		case *gwv1.HTTPRoute:
			st.Routes = append(st.Routes, o)
		case *gwv1.ReferenceGrant:
			st.Grants = append(st.Grants, o)
		case *corev1.Secret:
			st.Secrets = append(st.Secrets, o)
		case string: // "ns/name" of a Service with one ready endpoint
			ns, name, _ := cutSlash(o)
			svc, es := gwSvc(ns, name)
			st.Services, st.EndpointSlices = append(st.Services, svc), append(st.EndpointSlices, es)
		}
	}
	return st
}

func cutSlash(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "default", s, false
}

func grant(ns, fromKind, fromNS, toKind string) *gwv1.ReferenceGrant {
	return &gwv1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "g"}, Spec: gwv1.ReferenceGrantSpec{
		From: []gwv1.ReferenceGrantFrom{{Group: gatewayGroup, Kind: gwv1.Kind(fromKind), Namespace: gwv1.Namespace(fromNS)}},
		To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: gwv1.Kind(toKind)}}}}
}

func condOf(cs []metav1.Condition, typ string) string {
	for _, c := range cs {
		if c.Type == typ {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "missing"
}

func TestGatewayClassStatus(t *testing.T) {
	st := gwState()
	st.Classes = append(st.Classes, gwClass("other", "example.com/other"))
	res := FromGateways(st)
	if len(res.Classes) != 1 {
		t.Fatalf("classes with status: %v, want only svcnet", res.Classes)
	}
	s := res.Classes["svcnet"]
	if got := condOf(s.Conditions, "Accepted"); got != "True/Accepted" {
		t.Errorf("Accepted = %s", got)
	}
	if got := condOf(s.Conditions, "SupportedVersion"); got != "True/SupportedVersion" {
		t.Errorf("SupportedVersion = %s", got)
	}
	if s.Conditions[0].ObservedGeneration != 1 || len(s.SupportedFeatures) != 3 {
		t.Errorf("status %+v", s)
	}
}

func TestGatewayListenerStatus(t *testing.T) {
	good := testTLSSecret(t, "cert", "example.com")
	elsewhere := testTLSSecret(t, "cert", "example.com")
	elsewhere.Namespace, elsewhere.UID = "certs", "uid-elsewhere"
	badKind := httpListener("http", 80, "", gwv1.NamespacesFromAll)
	badKind.AllowedRoutes.Kinds = []gwv1.RouteGroupKind{{Kind: "TCPRoute"}}
	mixedKinds := httpListener("http", 80, "", gwv1.NamespacesFromAll)
	mixedKinds.AllowedRoutes.Kinds = []gwv1.RouteGroupKind{{Kind: "HTTPRoute"}, {Kind: "Unknown"}}
	tcp := httpListener("tcp", 9000, "", gwv1.NamespacesFromAll)
	tcp.Protocol = gwv1.TCPProtocolType
	wrongGroup := secretRef("", "cert")
	wrongGroup.Group = ptr.To(gwv1.Group("wrong.group.company.io"))
	cases := []struct {
		name      string
		l         gwv1.Listener
		objs      []any
		accepted  string
		refs      string
		programed string
		kinds     int
	}{
		{"http", httpListener("http", 80, "", gwv1.NamespacesFromSame), nil, "True/Accepted", "True/ResolvedRefs", "True/Programmed", 1},
		{"https", httpsListener("https", "", secretRef("", "cert")), []any{good}, "True/Accepted", "True/ResolvedRefs", "True/Programmed", 1},
		{"https missing secret", httpsListener("https", "", secretRef("", "nonexistent")), nil, "True/Accepted", "False/InvalidCertificateRef", "False/Invalid", 1},
		{"https wrong group", httpsListener("https", "", wrongGroup), []any{good}, "True/Accepted", "False/InvalidCertificateRef", "False/Invalid", 1},
		{"https cross-namespace without grant", httpsListener("https", "", secretRef("certs", "cert")), []any{elsewhere}, "True/Accepted", "False/RefNotPermitted", "False/Invalid", 1},
		{"https cross-namespace with grant", httpsListener("https", "", secretRef("certs", "cert")), []any{elsewhere, grant("certs", "Gateway", "default", "Secret")}, "True/Accepted", "True/ResolvedRefs", "True/Programmed", 1},
		{"grant for another kind", httpsListener("https", "", secretRef("certs", "cert")), []any{elsewhere, grant("certs", "HTTPRoute", "default", "Secret")}, "True/Accepted", "False/RefNotPermitted", "False/Invalid", 1},
		{"invalid route kind", badKind, nil, "True/Accepted", "False/InvalidRouteKinds", "False/Invalid", 0},
		{"supported and invalid route kind", mixedKinds, nil, "True/Accepted", "False/InvalidRouteKinds", "False/Invalid", 1},
		{"unsupported protocol", tcp, nil, "False/UnsupportedProtocol", "True/ResolvedRefs", "False/Invalid", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := FromGateways(gwState(append(c.objs, gwGateway("default", "gw", c.l))...))
			s := res.Gateways[types.NamespacedName{Namespace: "default", Name: "gw"}]
			if len(s.Listeners) != 1 {
				t.Fatalf("listeners %+v", s.Listeners)
			}
			ls := s.Listeners[0]
			for typ, want := range map[string]string{"Accepted": c.accepted, "ResolvedRefs": c.refs, "Programmed": c.programed, "Conflicted": "False/NoConflicts"} {
				if got := condOf(ls.Conditions, typ); got != want {
					t.Errorf("listener %s = %s, want %s", typ, got, want)
				}
			}
			if len(ls.SupportedKinds) != c.kinds || ls.SupportedKinds == nil {
				t.Errorf("supportedKinds %v, want %d", ls.SupportedKinds, c.kinds)
			}
			if got := condOf(s.Conditions, "Programmed"); got != "True/Programmed" {
				t.Errorf("gateway Programmed = %s", got)
			}
			if len(s.Addresses) != 1 || s.Addresses[0].Value != "192.0.2.10" || *s.Addresses[0].Type != gwv1.IPAddressType {
				t.Errorf("addresses %+v", s.Addresses)
			}
			if s.Conditions[0].ObservedGeneration != 2 || ls.Conditions[0].ObservedGeneration != 2 {
				t.Errorf("observedGeneration not the Gateway's")
			}
		})
	}
}

func TestGatewayListenerConflicts(t *testing.T) {
	gw := gwGateway("default", "gw", httpListener("a", 80, "foo.com", gwv1.NamespacesFromAll),
		httpListener("b", 80, "foo.com", gwv1.NamespacesFromAll), httpListener("c", 80, "bar.com", gwv1.NamespacesFromAll))
	s := FromGateways(gwState(gw)).Gateways[types.NamespacedName{Namespace: "default", Name: "gw"}]
	want := []string{"True/HostnameConflict", "True/HostnameConflict", "False/NoConflicts"}
	for i, l := range s.Listeners {
		if got := condOf(l.Conditions, "Conflicted"); got != want[i] {
			t.Errorf("listener %s Conflicted = %s, want %s", l.Name, got, want[i])
		}
	}
	if got := condOf(s.Conditions, "Accepted"); got != "True/ListenersNotValid" {
		t.Errorf("gateway Accepted = %s", got)
	}
}

func TestHTTPRouteParentStatus(t *testing.T) {
	withSection := func(hr *gwv1.HTTPRoute, section string, port int32) *gwv1.HTTPRoute {
		if section != "" {
			hr.Spec.ParentRefs[0].SectionName = ptr.To(gwv1.SectionName(section))
		}
		if port != 0 {
			hr.Spec.ParentRefs[0].Port = ptr.To(gwv1.PortNumber(port))
		}
		return hr
	}
	backendIn := func(hr *gwv1.HTTPRoute, ns, kind string) *gwv1.HTTPRoute {
		ref := &hr.Spec.Rules[0].BackendRefs[0]
		if ns != "" {
			ref.Namespace = ptr.To(gwv1.Namespace(ns))
		}
		if kind != "" {
			ref.Kind = ptr.To(gwv1.Kind(kind))
		}
		return hr
	}
	gw := gwGateway("default", "gw", httpListener("same", 80, "", gwv1.NamespacesFromSame), httpListener("all", 8080, "*.example.com", gwv1.NamespacesFromAll))
	selector := httpListener("sel", 80, "", gwv1.NamespacesFromSelector)
	selector.AllowedRoutes.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "web"}}
	gwSel := gwGateway("default", "gw", selector)
	cases := []struct {
		name             string
		objs             []any
		accepted, refs   string
		attachedSame     int32
		attachedAll      int32
		status500, paths int
	}{
		{"attached to both", []any{gw, "web", gwRoute("default", "r", 0, nil, "web")}, "True/Accepted", "True/ResolvedRefs", 1, 1, 0, 2},
		{"section name", []any{gw, "web", withSection(gwRoute("default", "r", 0, nil, "web"), "all", 0)}, "True/Accepted", "True/ResolvedRefs", 0, 1, 0, 1},
		{"port", []any{gw, "web", withSection(gwRoute("default", "r", 0, nil, "web"), "", 80)}, "True/Accepted", "True/ResolvedRefs", 1, 0, 0, 1},
		{"section name and port disagree", []any{gw, "web", withSection(gwRoute("default", "r", 0, nil, "web"), "all", 80)}, "False/NoMatchingParent", "True/ResolvedRefs", 0, 0, 0, 0},
		{"unknown section", []any{gw, "web", withSection(gwRoute("default", "r", 0, nil, "web"), "nope", 0)}, "False/NoMatchingParent", "True/ResolvedRefs", 0, 0, 0, 0},
		{"other namespace: From All only", []any{gw, "other/web", gwRoute("other", "r", 0, nil, "web")}, "True/Accepted", "True/ResolvedRefs", 0, 1, 0, 1},
		{"other namespace, From Same", []any{gw, "other/web", withSection(gwRoute("other", "r", 0, nil, "web"), "same", 0)}, "False/NotAllowedByListeners", "True/ResolvedRefs", 0, 0, 0, 0},
		{"selector matches", []any{gwSel, "other/web", gwRoute("other", "r", 0, nil, "web")}, "True/Accepted", "True/ResolvedRefs", 0, 0, 0, 1},
		{"selector does not match", []any{gwSel, "web", gwRoute("default", "r", 0, nil, "web")}, "False/NotAllowedByListeners", "True/ResolvedRefs", 0, 0, 0, 0},
		{"hostname intersects the wildcard only", []any{gw, "web", gwRoute("default", "r", 0, []string{"foo.example.com"}, "web")}, "True/Accepted", "True/ResolvedRefs", 1, 1, 0, 2},
		{"no matching hostname", []any{gw, "web", withSection(gwRoute("default", "r", 0, []string{"foo.other.org"}, "web"), "all", 0)}, "False/NoMatchingListenerHostname", "True/ResolvedRefs", 0, 0, 0, 0},
		{"backend not found", []any{gw, gwRoute("default", "r", 0, nil, "missing")}, "True/Accepted", "False/BackendNotFound", 1, 1, 2, 2},
		{"backend kind", []any{gw, "web", backendIn(gwRoute("default", "r", 0, nil, "web"), "", "Pod")}, "True/Accepted", "False/InvalidKind", 1, 1, 2, 2},
		{"cross-namespace backend without grant", []any{gw, "other/web", backendIn(gwRoute("default", "r", 0, nil, "web"), "other", "")}, "True/Accepted", "False/RefNotPermitted", 1, 1, 2, 2},
		{"cross-namespace backend with grant", []any{gw, "other/web", grant("other", "HTTPRoute", "default", "Service"), backendIn(gwRoute("default", "r", 0, nil, "web"), "other", "")}, "True/Accepted", "True/ResolvedRefs", 1, 1, 0, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := FromGateways(gwState(c.objs...))
			var hr *gwv1.HTTPRoute
			for _, o := range c.objs {
				if r, ok := o.(*gwv1.HTTPRoute); ok {
					hr = r
				}
			}
			s := res.Routes[types.NamespacedName{Namespace: hr.Namespace, Name: hr.Name}]
			if len(s.Parents) != 1 {
				t.Fatalf("parents %+v", s.Parents)
			}
			p := s.Parents[0]
			if p.ControllerName != GatewayControllerName || p.Conditions[0].ObservedGeneration != 3 {
				t.Errorf("parent %+v", p)
			}
			if got := condOf(p.Conditions, "Accepted"); got != c.accepted {
				t.Errorf("Accepted = %s, want %s", got, c.accepted)
			}
			if got := condOf(p.Conditions, "ResolvedRefs"); got != c.refs {
				t.Errorf("ResolvedRefs = %s, want %s", got, c.refs)
			}
			gs := res.Gateways[types.NamespacedName{Namespace: "default", Name: "gw"}]
			attached := map[gwv1.SectionName]int32{}
			for _, l := range gs.Listeners {
				attached[l.Name] = l.AttachedRoutes
			}
			if attached["same"] != c.attachedSame || attached["all"] != c.attachedAll {
				t.Errorf("attachedRoutes %v, want same=%d all=%d", attached, c.attachedSame, c.attachedAll)
			}
			paths, failing := 0, 0
			for _, port := range res.Ports {
				for _, h := range port.Hosts {
					for _, r := range h.Routes {
						if r.Backends[0].Status == http.StatusNotFound {
							continue // the listener's catch-all
						}
						paths++
						for _, b := range r.Backends {
							if b.Status == 500 {
								failing++
							}
						}
					}
				}
			}
			if paths != c.paths || failing != c.status500 {
				t.Errorf("served routes %d (500: %d), want %d (500: %d)", paths, failing, c.paths, c.status500)
			}
		})
	}
}

func TestIntersectHost(t *testing.T) {
	cases := []struct{ listener, route, want string }{
		{"", "foo.com", "foo.com"},
		{"foo.com", "", "foo.com"},
		{"foo.com", "foo.com", "foo.com"},
		{"foo.com", "bar.com", "-"},
		{"*.wildcard.io", "foo.wildcard.io", "foo.wildcard.io"},
		{"*.wildcard.io", "foo.bar.wildcard.io", "foo.bar.wildcard.io"},
		{"*.wildcard.io", "wildcard.io", "-"},
		{"very.specific.com", "*.specific.com", "very.specific.com"},
		{"*.anotherwildcard.io", "*.anotherwildcard.io", "*.anotherwildcard.io"},
		{"*.example.com", "*.foo.example.com", "*.foo.example.com"},
		{"*.foo.example.com", "*.example.com", "*.foo.example.com"},
		{"*.example.com", "*.example.org", "-"},
	}
	for _, c := range cases {
		got, ok := intersectHost(c.listener, c.route)
		if !ok {
			got = "-"
		}
		if got != c.want {
			t.Errorf("intersect(%q, %q) = %q, want %q", c.listener, c.route, got, c.want)
		}
	}
}

// TestGatewayPrecedence traces requests through the built port, with the
// precedence examples of the Gateway API spec and conformance tests.
func TestGatewayPrecedence(t *testing.T) {
	gw := gwGateway("default", "gw", httpListener("http", 80, "", gwv1.NamespacesFromAll))
	routes := []any{gw, "a", "b", "c", "d", "e", "f", "g", "h",
		// path-match-order: exact beats prefix, longest prefix wins, then method, headers, query.
		gwRoute("default", "order", 0, nil, "a",
			gwMatch{path: "/match", pathType: "Exact"},
			gwMatch{path: "/match/exact/one", pathType: "Exact"},
			gwMatch{path: "/match/exact", pathType: "Exact"},
			gwMatch{path: "/match/prefix/one"},
			gwMatch{path: "/match/prefix"}),
		gwRoute("default", "method", 0, nil, "b", gwMatch{path: "/match", method: "POST"}),
		gwRoute("default", "headers", 0, nil, "c", gwMatch{path: "/match", headers: []KV{{"version", "one"}, {"color", "red"}}}),
		gwRoute("default", "header", 0, nil, "d", gwMatch{path: "/match", headers: []KV{{"version", "one"}}}),
		gwRoute("default", "query", 0, nil, "e", gwMatch{path: "/match", query: []KV{{"q", "1"}}}),
		gwRoute("default", "any", 0, nil, "f", gwMatch{path: "/match"}),
		// oldest route wins a tie; then name.
		gwRoute("default", "young", 5, nil, "g", gwMatch{path: "/tie"}),
		gwRoute("default", "old", 1, nil, "h", gwMatch{path: "/tie"}),
		gwRoute("default", "same-age-b", 9, nil, "g", gwMatch{path: "/name"}),
		gwRoute("default", "same-age-a", 9, nil, "h", gwMatch{path: "/name"}),
		// hosts: exact host beats wildcard, wildcard covers several labels, any host last.
		gwRoute("default", "exact-host", 0, []string{"very.specific.com"}, "a", gwMatch{path: "/s"}),
		gwRoute("default", "wild-host", 0, []string{"*.specific.com"}, "b", gwMatch{path: "/s"}),
		gwRoute("default", "exact-other-path", 0, []string{"very.specific.com"}, "c", gwMatch{path: "/other"}),
	}
	res := FromGateways(gwState(routes...))
	port := res.Ports[80]
	if port == nil || port.TLS {
		t.Fatalf("port 80: %+v", port)
	}
	cases := []struct {
		method, host, target string
		headers              map[string]string
		want                 string
	}{
		{"GET", "x", "/match", nil, "a"},
		{"GET", "x", "/match/exact", nil, "a"},
		{"GET", "x", "/match/exact/one", nil, "a"},
		{"GET", "x", "/match/prefix/one/two", nil, "a"},
		{"GET", "x", "/match/prefixed", nil, "f"},
		{"POST", "x", "/match/x", map[string]string{"version": "one", "color": "red"}, "b"},
		{"GET", "x", "/match/x", map[string]string{"version": "one", "color": "red"}, "c"},
		{"GET", "x", "/match/x", map[string]string{"Version": "one"}, "d"},
		{"GET", "x", "/match/x?q=1", map[string]string{"version": "two"}, "e"},
		{"GET", "x", "/match/x?q=2", nil, "f"},
		{"GET", "x", "/tie", nil, "h"},
		{"GET", "x", "/name", nil, "h"},
		{"GET", "very.specific.com", "/s", nil, "a"},
		{"GET", "very.specific.com:1234", "/s", nil, "a"},
		{"GET", "other.specific.com", "/s", nil, "b"},
		{"GET", "very.specific.com", "/other", nil, "c"},
		{"GET", "other.specific.com", "/other", nil, "none"},
		{"GET", "very.specific.com", "/match", nil, "a"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, "http://"+c.host+c.target, nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		got := "none"
		if rt := port.Match(r); rt != nil && len(rt.Backends) > 0 && rt.Backends[0].Status != http.StatusNotFound {
			got = rt.Backends[0].Service.Name
		}
		if got != c.want {
			t.Errorf("%s %s%s %v: routed to %s, want %s", c.method, c.host, c.target, c.headers, got, c.want)
		}
	}
}

func TestGatewayMultiLabelWildcard(t *testing.T) {
	gw := gwGateway("default", "gw", httpListener("http", 80, "*.wildcard.io", gwv1.NamespacesFromAll))
	res := FromGateways(gwState(gw, "a", gwRoute("default", "r", 0, nil, "a")))
	h := res.Ports[80].Hosts["*.wildcard.io"]
	if h == nil || !h.AnyDepth || len(h.Routes) != 2 || len(res.Ports[80].Hosts) != 1 {
		t.Fatalf("hosts %+v", res.Ports[80].Hosts)
	}
	ingressStyle := &Port{Hosts: map[string]*Host{"*.example.com": {Routes: h.Routes}}}
	for _, c := range []struct {
		port *Port
		host string
		want bool
	}{
		{res.Ports[80], "foo.wildcard.io", true},
		{res.Ports[80], "foo.bar.wildcard.io", true},
		{res.Ports[80], "wildcard.io", false},
		{res.Ports[80], "foo.wildcard.com", false},
		{ingressStyle, "a.example.com", true},
		{ingressStyle, "a.b.example.com", false},
	} {
		rt := c.port.Match(httptest.NewRequest(http.MethodGet, "http://"+c.host+"/", nil))
		got := rt != nil && rt.Backends[0].Status != http.StatusNotFound
		if got != c.want {
			t.Errorf("%s matched: %v, want %v", c.host, got, c.want)
		}
	}
}

func TestGatewayFilters(t *testing.T) {
	gw := gwGateway("default", "gw", httpListener("http", 80, "", gwv1.NamespacesFromAll))
	hr := gwRoute("default", "r", 0, nil, "a")
	hr.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{
		{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
			Set: []gwv1.HTTPHeader{{Name: "X-Set", Value: "1"}}, Add: []gwv1.HTTPHeader{{Name: "X-Add", Value: "2"}}, Remove: []string{"X-Gone"}}},
		{Type: gwv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Resp", Value: "3"}}}},
		{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{Hostname: ptr.To(gwv1.PreciseHostname("rewritten.example")),
			Path: &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/new")}}},
	}
	redirect := gwRoute("default", "redirect", 0, []string{"redirect.example"}, "a")
	redirect.Spec.Rules[0].BackendRefs = nil
	redirect.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{
		Scheme: ptr.To("https"), Hostname: ptr.To(gwv1.PreciseHostname("example.org")), StatusCode: ptr.To(301)}}}
	mirror := gwRoute("default", "mirror", 0, []string{"mirror.example"}, "a")
	mirror.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestMirror}}
	res := FromGateways(gwState(gw, "a", hr, redirect, mirror))
	r := res.Ports[80].Hosts[""].Routes[0]
	if r.RequestHeaders == nil || r.RequestHeaders.Set[0] != (KV{"X-Set", "1"}) || r.RequestHeaders.Add[0] != (KV{"X-Add", "2"}) || r.RequestHeaders.Remove[0] != "X-Gone" {
		t.Errorf("request headers %+v", r.RequestHeaders)
	}
	if r.ResponseHeaders == nil || r.ResponseHeaders.Set[0] != (KV{"X-Resp", "3"}) {
		t.Errorf("response headers %+v", r.ResponseHeaders)
	}
	if r.Rewrite == nil || r.Rewrite.Host != "rewritten.example" || r.Rewrite.PrefixPath == nil || *r.Rewrite.PrefixPath != "/new" {
		t.Errorf("rewrite %+v", r.Rewrite)
	}
	rd := res.Ports[80].Hosts["redirect.example"].Routes[0]
	if rd.Redirect == nil || *rd.Redirect != (Redirect{Scheme: "https", Host: "example.org", Port: 443, Code: 301}) {
		t.Errorf("redirect %+v", rd.Redirect)
	}
	ms := res.Routes[types.NamespacedName{Namespace: "default", Name: "mirror"}]
	if got := condOf(ms.Parents[0].Conditions, "Accepted"); got != "False/UnsupportedValue" {
		t.Errorf("mirror route Accepted = %s", got)
	}
	if res.Ports[80].Hosts["mirror.example"] != nil {
		t.Errorf("a route that is not accepted is served")
	}
	req := httptest.NewRequest(http.MethodGet, "http://redirect.example/", nil)
	if got := res.Ports[80].Match(req); got != rd {
		t.Errorf("redirect host matched %+v", got)
	}
}

func TestGatewayHTTPSCertsAndStatusKept(t *testing.T) {
	sec := testTLSSecret(t, "cert", "secure.example")
	gw := gwGateway("default", "gw", httpsListener("https", "secure.example", secretRef("", "cert")), httpsListener("fallback", "", secretRef("", "cert")))
	st := gwState(gw, "a", gwRoute("default", "r", 0, nil, "a"), sec)
	res := FromGateways(st)
	p := res.Ports[443]
	if p == nil || !p.TLS || len(p.Certs) != 2 || len(p.Certs[0].Hosts) != 1 || p.Certs[1].Hosts != nil {
		t.Fatalf("port 443 %+v", p)
	}
	// A second build an hour later keeps the transition times of unchanged conditions.
	gw.Status = res.Gateways[types.NamespacedName{Namespace: "default", Name: "gw"}]
	st.Now = metav1.NewTime(gwNow.Add(time.Hour))
	again := FromGateways(st).Gateways[types.NamespacedName{Namespace: "default", Name: "gw"}]
	if !again.Conditions[0].LastTransitionTime.Equal(&gwNow) || !again.Listeners[0].Conditions[0].LastTransitionTime.Equal(&gwNow) {
		t.Errorf("transition time moved: %v", again.Conditions[0].LastTransitionTime)
	}
}

// A request belongs to the most specific listener covering its host and gets
// 404 when none of that listener's routes match (GatewayHTTPListenerIsolation).
func TestGatewayListenerIsolation(t *testing.T) {
	withSection := func(hr *gwv1.HTTPRoute, section string) *gwv1.HTTPRoute {
		hr.Spec.ParentRefs[0].SectionName = ptr.To(gwv1.SectionName(section))
		return hr
	}
	gw := gwGateway("default", "gw", httpListener("empty", 80, "", gwv1.NamespacesFromAll),
		httpListener("wild", 80, "*.example.com", gwv1.NamespacesFromAll),
		httpListener("foo-wild", 80, "*.foo.example.com", gwv1.NamespacesFromAll),
		httpListener("abc", 80, "abc.foo.example.com", gwv1.NamespacesFromAll))
	res := FromGateways(gwState(gw, "a", "b", "c", "d",
		withSection(gwRoute("default", "empty", 0, nil, "a", gwMatch{path: "/empty"}), "empty"),
		withSection(gwRoute("default", "wild", 0, nil, "b", gwMatch{path: "/wild"}), "wild"),
		withSection(gwRoute("default", "foo-wild", 0, nil, "c", gwMatch{path: "/foo-wild"}), "foo-wild"),
		withSection(gwRoute("default", "abc", 0, nil, "d", gwMatch{path: "/abc"}), "abc")))
	cases := []struct{ host, path, want string }{
		{"zzz.com", "/empty", "a"},
		{"zzz.com", "/wild", "none"},
		{"bar.example.com", "/wild", "b"},
		{"bar.example.com", "/empty", "none"},
		{"bar.foo.example.com", "/foo-wild", "c"},
		{"bar.foo.example.com", "/wild", "none"},
		{"abc.foo.example.com", "/abc", "d"},
		{"abc.foo.example.com", "/foo-wild", "none"},
		{"x.y.example.com", "/wild", "b"},
	}
	for _, c := range cases {
		got := "none"
		if rt := res.Ports[80].Match(httptest.NewRequest(http.MethodGet, "http://"+c.host+c.path, nil)); rt != nil && rt.Backends[0].Status != http.StatusNotFound {
			got = rt.Backends[0].Service.Name
		}
		if got != c.want {
			t.Errorf("%s%s routed to %s, want %s", c.host, c.path, got, c.want)
		}
	}
}
