package ingress

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayControllerName is the GatewayClass spec.controllerName svcnet implements.
const GatewayControllerName gwv1.GatewayController = "svcnet.io/gateway"

// gatewayGroup is the API group of Gateways and routes.
const gatewayGroup = gwv1.GroupName

// GatewayFeatures are the Gateway API features svcnet claims in GatewayClass status.
var GatewayFeatures = []gwv1.FeatureName{"Gateway", "HTTPRoute", "ReferenceGrant"}

// GatewayState is everything FromGateways reads: the Gateway API objects, the
// Services, EndpointSlices, Secrets and Namespaces they refer to, and the node's
// addresses. Objects' current statuses are read to keep condition transition times.
type GatewayState struct {
	// State holds the Services, EndpointSlices and TLS Secrets (shared with
	// the Ingress translation) and the certificate cache.
	*State
	Classes  []*gwv1.GatewayClass
	Gateways []*gwv1.Gateway
	Routes   []*gwv1.HTTPRoute
	Grants   []*gwv1.ReferenceGrant
	// Namespaces holds each namespace's labels (for allowedRoutes selectors).
	Namespaces map[string]map[string]string
	// Addresses are the node addresses written to Gateway status.addresses.
	Addresses []string
	// Now stamps conditions whose status changes.
	Now metav1.Time
}

// GatewayResult is what FromGateways computes: what to serve on each port and
// the statuses to write (whole statuses; unchanged ones need no write).
type GatewayResult struct {
	Ports    map[int]*Port
	Classes  map[string]gwv1.GatewayClassStatus
	Gateways map[types.NamespacedName]gwv1.GatewayStatus
	Routes   map[types.NamespacedName]gwv1.HTTPRouteStatus
}

// gwListener is one Gateway listener as translation sees it.
type gwListener struct {
	gw       *gwv1.Gateway
	spec     gwv1.Listener
	port     int
	https    bool
	accepted bool // routes may attach
	resolved bool // certificates and kinds resolved
	kinds    []gwv1.RouteGroupKind
	certs    []Cert
	attached int32
	conds    []metav1.Condition
}

// FromGateways translates Gateway API objects into routes by port and the
// statuses of the GatewayClasses, Gateways and HTTPRoutes svcnet controls. Pure.
func FromGateways(st *GatewayState) *GatewayResult {
	if st.State == nil {
		st = &GatewayState{State: &State{}, Classes: st.Classes, Gateways: st.Gateways, Routes: st.Routes,
			Grants: st.Grants, Namespaces: st.Namespaces, Addresses: st.Addresses, Now: st.Now}
	}
	return fromGateways(st, NewIndex(st.State))
}

// fromGateways is FromGateways resolving Services and Secrets through ix.
func fromGateways(st *GatewayState, ix *Index) *GatewayResult {
	res := &GatewayResult{
		Ports:    map[int]*Port{},
		Classes:  map[string]gwv1.GatewayClassStatus{},
		Gateways: map[types.NamespacedName]gwv1.GatewayStatus{},
		Routes:   map[types.NamespacedName]gwv1.HTTPRouteStatus{},
	}
	ours := map[string]bool{}
	for _, c := range st.Classes {
		if c.Spec.ControllerName != GatewayControllerName {
			continue
		}
		ours[c.Name] = true
		res.Classes[c.Name] = classStatus(st, c)
	}

	gws := append([]*gwv1.Gateway(nil), st.Gateways...)
	sort.Slice(gws, func(i, j int) bool { return olderFirst(&gws[i].ObjectMeta, &gws[j].ObjectMeta) })
	byGateway := map[types.NamespacedName][]*gwListener{}
	portTLS := map[int]bool{} // the protocol that holds each port, first Gateway wins
	portSeen := map[int]bool{}
	for _, gw := range gws {
		if !ours[string(gw.Spec.GatewayClassName)] {
			continue
		}
		ls := gatewayListeners(st, ix, gw, portTLS, portSeen)
		byGateway[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = ls
	}

	entries := attachRoutes(st, ix, byGateway, res)
	listenerHosts := map[int]map[string]bool{} // the hostnames of the listeners served on each port

	for _, gw := range gws {
		nn := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		ls, ok := byGateway[nn]
		if !ok {
			continue
		}
		res.Gateways[nn] = gatewayStatus(st, gw, ls)
		for _, l := range ls {
			if !l.accepted || !l.resolved {
				continue
			}
			if listenerHosts[l.port] == nil {
				listenerHosts[l.port] = map[string]bool{}
			}
			listenerHosts[l.port][hostnameOf(l.spec.Hostname)] = true
			p := res.Ports[l.port]
			if p == nil {
				p = &Port{TLS: l.https, Hosts: map[string]*Host{}}
				res.Ports[l.port] = p
			}
			p.Certs = append(p.Certs, l.certs...)
		}
	}
	buildHosts(res.Ports, listenerHosts, entries)
	for _, p := range res.Ports {
		sortCerts(p.Certs)
	}
	return res
}

// classStatus is the status of one of svcnet's GatewayClasses.
func classStatus(st *GatewayState, c *gwv1.GatewayClass) gwv1.GatewayClassStatus {
	conds := []metav1.Condition{
		cond(string(gwv1.GatewayClassConditionStatusAccepted), true, string(gwv1.GatewayClassReasonAccepted), "svcnet serves this class", c.Generation, st.Now),
		cond(string(gwv1.GatewayClassConditionStatusSupportedVersion), true, string(gwv1.GatewayClassReasonSupportedVersion), "Gateway API v1.5", c.Generation, st.Now),
	}
	s := gwv1.GatewayClassStatus{Conditions: mergeConditions(c.Status.Conditions, conds)}
	for _, f := range GatewayFeatures {
		s.SupportedFeatures = append(s.SupportedFeatures, gwv1.SupportedFeature{Name: f})
	}
	return s
}

// gatewayListeners validates a Gateway's listeners: protocol, conflicts, route
// kinds and certificates.
func gatewayListeners(st *GatewayState, ix *Index, gw *gwv1.Gateway, portTLS, portSeen map[int]bool) []*gwListener {
	var ls []*gwListener
	type key struct {
		port int
		host string
	}
	hostsOnPort := map[key]int{}
	for _, spec := range gw.Spec.Listeners {
		l := &gwListener{gw: gw, spec: spec, port: int(spec.Port), accepted: true, resolved: true}
		ls = append(ls, l)
		hostsOnPort[key{l.port, hostnameOf(spec.Hostname)}]++
	}
	protoOnPort := map[int]gwv1.ProtocolType{}
	for _, l := range ls {
		if p, ok := protoOnPort[l.port]; !ok || p == l.spec.Protocol {
			protoOnPort[l.port] = l.spec.Protocol
		}
	}
	for _, l := range ls {
		gen := gw.Generation
		acceptReason, acceptMsg := string(gwv1.ListenerReasonAccepted), "listener accepted"
		conflictReason, conflictMsg := "", ""
		switch l.spec.Protocol {
		case gwv1.HTTPProtocolType:
		case gwv1.HTTPSProtocolType:
			l.https = true
			if l.spec.TLS != nil && l.spec.TLS.Mode != nil && *l.spec.TLS.Mode != gwv1.TLSModeTerminate {
				l.accepted, acceptReason, acceptMsg = false, "UnsupportedValue", "only tls.mode Terminate is supported"
			}
		default:
			l.accepted, acceptReason, acceptMsg = false, string(gwv1.ListenerReasonUnsupportedProtocol), fmt.Sprintf("protocol %q is not supported; HTTP and HTTPS are", l.spec.Protocol)
		}
		if l.accepted {
			switch {
			case protoOnPort[l.port] != l.spec.Protocol:
				conflictReason, conflictMsg = string(gwv1.ListenerReasonProtocolConflict), fmt.Sprintf("another listener uses port %d with protocol %s", l.port, protoOnPort[l.port])
			case hostsOnPort[key{l.port, hostnameOf(l.spec.Hostname)}] > 1:
				conflictReason, conflictMsg = string(gwv1.ListenerReasonHostnameConflict), fmt.Sprintf("another listener uses port %d with the same hostname", l.port)
			case portSeen[l.port] && portTLS[l.port] != l.https:
				conflictReason, conflictMsg = string(gwv1.ListenerReasonProtocolConflict), fmt.Sprintf("port %d is used by another Gateway with another protocol", l.port)
			}
			if conflictReason != "" {
				l.accepted = false
			} else if !portSeen[l.port] {
				portSeen[l.port], portTLS[l.port] = true, l.https
			}
		}
		refsReason, refsMsg := string(gwv1.ListenerReasonResolvedRefs), "references resolved"
		if l.accepted {
			var bad []string
			l.kinds, bad = listenerKinds(l.spec)
			if len(bad) > 0 {
				l.resolved, refsReason, refsMsg = false, string(gwv1.ListenerReasonInvalidRouteKinds), "unsupported route kinds: "+strings.Join(bad, ", ")
			}
			if l.https && l.resolved {
				if reason, msg := listenerCerts(st, ix, gw, l); reason != "" {
					l.resolved, refsReason, refsMsg = false, reason, msg
				}
			}
		} else {
			l.kinds = []gwv1.RouteGroupKind{}
		}
		l.conds = []metav1.Condition{
			cond(string(gwv1.ListenerConditionAccepted), l.accepted, acceptReason, acceptMsg, gen, st.Now),
			cond(string(gwv1.ListenerConditionResolvedRefs), l.resolved, refsReason, refsMsg, gen, st.Now),
		}
		if conflictReason != "" {
			l.conds = append(l.conds, cond(string(gwv1.ListenerConditionConflicted), true, conflictReason, conflictMsg, gen, st.Now))
		} else {
			l.conds = append(l.conds, cond(string(gwv1.ListenerConditionConflicted), false, string(gwv1.ListenerReasonNoConflicts), "no conflicts", gen, st.Now))
		}
		if l.accepted && l.resolved {
			l.conds = append(l.conds, cond(string(gwv1.ListenerConditionProgrammed), true, string(gwv1.ListenerReasonProgrammed), "listener programmed", gen, st.Now))
		} else {
			l.conds = append(l.conds, cond(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonInvalid), "listener is not valid", gen, st.Now))
		}
	}
	return ls
}

// listenerKinds are the route kinds a listener allows (HTTPRoute by default)
// and the unsupported ones it names.
func listenerKinds(l gwv1.Listener) (ok []gwv1.RouteGroupKind, bad []string) {
	ok = []gwv1.RouteGroupKind{}
	if l.AllowedRoutes == nil || len(l.AllowedRoutes.Kinds) == 0 {
		g := gwv1.Group(gatewayGroup)
		return append(ok, gwv1.RouteGroupKind{Group: &g, Kind: "HTTPRoute"}), nil
	}
	for _, k := range l.AllowedRoutes.Kinds {
		g := gatewayGroup
		if k.Group != nil {
			g = string(*k.Group)
		}
		if g == gatewayGroup && k.Kind == "HTTPRoute" {
			gg := gwv1.Group(g)
			ok = append(ok, gwv1.RouteGroupKind{Group: &gg, Kind: k.Kind})
		} else {
			bad = append(bad, g+"/"+string(k.Kind))
		}
	}
	return ok, bad
}

// listenerCerts resolves an HTTPS listener's certificateRefs into l.certs; it
// answers the ResolvedRefs reason and message of the first bad reference.
func listenerCerts(st *GatewayState, ix *Index, gw *gwv1.Gateway, l *gwListener) (string, string) {
	if l.spec.TLS == nil || len(l.spec.TLS.CertificateRefs) == 0 {
		return string(gwv1.ListenerReasonInvalidCertificateRef), "an HTTPS listener needs tls.certificateRefs"
	}
	var hosts []string
	if h := hostnameOf(l.spec.Hostname); h != "" {
		hosts = []string{h}
	}
	for i, ref := range l.spec.TLS.CertificateRefs {
		field := fmt.Sprintf("tls.certificateRefs[%d]", i)
		if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
			return string(gwv1.ListenerReasonInvalidCertificateRef), field + ": only core Secrets are supported"
		}
		ns := gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if ns != gw.Namespace && !granted(st.Grants, gatewayGroup, "Gateway", gw.Namespace, "", "Secret", ns, string(ref.Name)) {
			return string(gwv1.ListenerReasonRefNotPermitted), fmt.Sprintf("%s: Secret %s/%s is not permitted by a ReferenceGrant", field, ns, ref.Name)
		}
		c, err := ix.Certificate(types.NamespacedName{Namespace: ns, Name: string(ref.Name)})
		if err != nil {
			return string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("%s: %v", field, err)
		}
		l.certs = append(l.certs, Cert{Hosts: hosts, Cert: c, Source: "secret " + ns + "/" + string(ref.Name)})
	}
	return "", ""
}

// granted reports whether a ReferenceGrant in toNS lets objects of fromGroup/
// fromKind in fromNS refer to toGroup/toKind name.
func granted(grants []*gwv1.ReferenceGrant, fromGroup, fromKind, fromNS, toGroup, toKind, toNS, name string) bool {
	for _, g := range grants {
		if g.Namespace != toNS {
			continue
		}
		from := false
		for _, f := range g.Spec.From {
			if string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				from = true
				break
			}
		}
		if !from {
			continue
		}
		for _, t := range g.Spec.To {
			if string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || *t.Name == "" || string(*t.Name) == name) {
				return true
			}
		}
	}
	return false
}

// gatewayStatus is a Gateway's status once routes are attached.
func gatewayStatus(st *GatewayState, gw *gwv1.Gateway, ls []*gwListener) gwv1.GatewayStatus {
	var s gwv1.GatewayStatus
	for _, a := range st.Addresses {
		t := gwv1.IPAddressType
		if _, err := netip.ParseAddr(a); err != nil {
			t = gwv1.HostnameAddressType
		}
		s.Addresses = append(s.Addresses, gwv1.GatewayStatusAddress{Type: &t, Value: a})
	}
	old := map[gwv1.SectionName][]metav1.Condition{}
	for _, o := range gw.Status.Listeners {
		old[o.Name] = o.Conditions
	}
	invalid := 0
	for _, l := range ls {
		if !l.accepted || !l.resolved {
			invalid++
		}
		s.Listeners = append(s.Listeners, gwv1.ListenerStatus{
			Name: l.spec.Name, SupportedKinds: l.kinds, AttachedRoutes: l.attached,
			Conditions: mergeConditions(old[l.spec.Name], l.conds),
		})
	}
	gen := gw.Generation
	accepted := cond(string(gwv1.GatewayConditionAccepted), true, string(gwv1.GatewayReasonAccepted), "gateway accepted", gen, st.Now)
	if invalid > 0 {
		accepted.Reason, accepted.Message = string(gwv1.GatewayReasonListenersNotValid), fmt.Sprintf("%d of %d listeners are not valid", invalid, len(ls))
	}
	programmed := cond(string(gwv1.GatewayConditionProgrammed), true, string(gwv1.GatewayReasonProgrammed), "gateway programmed on the nodes", gen, st.Now)
	for _, a := range gw.Spec.Addresses {
		if !containsString(st.Addresses, a.Value) {
			accepted = cond(string(gwv1.GatewayConditionAccepted), false, string(gwv1.GatewayReasonUnsupportedAddress), fmt.Sprintf("address %q is not a node address", a.Value), gen, st.Now)
			programmed = cond(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonAddressNotUsable), fmt.Sprintf("address %q is not a node address", a.Value), gen, st.Now)
		}
	}
	if len(s.Addresses) == 0 && programmed.Status == metav1.ConditionTrue {
		programmed = cond(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonAddressNotAssigned), "no node address yet", gen, st.Now)
	}
	s.Conditions = mergeConditions(gw.Status.Conditions, []metav1.Condition{accepted, programmed})
	return s
}

// allowsNamespace reports whether a listener's allowedRoutes admit routes from ns.
func allowsNamespace(st *GatewayState, l *gwListener, ns string) bool {
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		sel = ar.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return ns == l.gw.Namespace
	case gwv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		return s.Matches(labels.Set(st.Namespaces[ns]))
	}
	return false
}

// hostnameOf is a listener's or route's hostname, "" when unset.
func hostnameOf(h *gwv1.Hostname) string {
	if h == nil {
		return ""
	}
	return strings.ToLower(string(*h))
}

// olderFirst orders objects by creation time, then namespace/name.
func olderFirst(a, b *metav1.ObjectMeta) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cond builds a condition stamped with now.
func cond(typ string, ok bool, reason, msg string, gen int64, now metav1.Time) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: now}
}

// mergeConditions returns next, keeping the transition time of each condition
// whose status did not change from old.
func mergeConditions(old, next []metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, len(next))
	for i, c := range next {
		for _, o := range old {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		out[i] = c
	}
	return out
}
