package ingress

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gwEntry is one HTTPRoute match attached to one listener hostname, with the keys
// that order it (Gateway API's precedence).
type gwEntry struct {
	port  int
	host  string // "", "*.suffix" or an exact name
	lhost string // the hostname of the listener it is attached to
	route *Route
	meta  *metav1.ObjectMeta
	rule  int
	match int
}

// attachRoutes attaches the HTTPRoutes to the listeners, writes the routes'
// statuses into res and answers the route entries to serve.
func attachRoutes(st *GatewayState, ix *Index, gws map[types.NamespacedName][]*gwListener, res *GatewayResult) []gwEntry {
	routes := append([]*gwv1.HTTPRoute(nil), st.Routes...)
	sort.Slice(routes, func(i, j int) bool { return olderFirst(&routes[i].ObjectMeta, &routes[j].ObjectMeta) })
	var out []gwEntry
	for _, hr := range routes {
		rules, acceptErr, refsReason, refsMsg := translateRules(st, ix, hr)
		var parents []gwv1.RouteParentStatus
		for _, pr := range hr.Spec.ParentRefs {
			if pr.Group != nil && *pr.Group != gatewayGroup || pr.Kind != nil && *pr.Kind != "Gateway" {
				continue
			}
			ns := hr.Namespace
			if pr.Namespace != nil {
				ns = string(*pr.Namespace)
			}
			ls, ok := gws[types.NamespacedName{Namespace: ns, Name: string(pr.Name)}]
			if !ok {
				continue // not one of svcnet's Gateways
			}
			reason, msg := string(gwv1.RouteReasonAccepted), "route accepted"
			var attached []*gwListener
			var hosts [][]string
			if acceptErr != "" {
				reason, msg = string(gwv1.RouteReasonUnsupportedValue), acceptErr
			} else {
				reason, msg, attached, hosts = attach(st, hr, pr, ls)
			}
			for i, l := range attached {
				l.attached++
				for _, h := range hosts[i] {
					for ri, rr := range rules {
						for mi, r := range rr {
							out = append(out, gwEntry{port: l.port, host: h, lhost: hostnameOf(l.spec.Hostname), route: r, meta: &hr.ObjectMeta, rule: ri, match: mi})
						}
					}
				}
			}
			gen := hr.Generation
			conds := []metav1.Condition{
				cond(string(gwv1.RouteConditionAccepted), len(attached) > 0, reason, msg, gen, st.Now),
				cond(string(gwv1.RouteConditionResolvedRefs), refsReason == string(gwv1.RouteReasonResolvedRefs), refsReason, refsMsg, gen, st.Now),
			}
			var old []metav1.Condition
			for _, p := range hr.Status.Parents {
				if p.ControllerName == GatewayControllerName && sameParent(p.ParentRef, pr, hr.Namespace) {
					old = p.Conditions
				}
			}
			parents = append(parents, gwv1.RouteParentStatus{ParentRef: pr, ControllerName: GatewayControllerName, Conditions: mergeConditions(old, conds)})
		}
		var s gwv1.HTTPRouteStatus
		for _, p := range hr.Status.Parents {
			if p.ControllerName != GatewayControllerName {
				s.Parents = append(s.Parents, p)
			}
		}
		s.Parents = append(s.Parents, parents...)
		if s.Parents == nil {
			s.Parents = []gwv1.RouteParentStatus{}
		}
		res.Routes[types.NamespacedName{Namespace: hr.Namespace, Name: hr.Name}] = s
	}
	return out
}

// attach finds the listeners of one parentRef that accept the route, and the
// hostnames the route serves on each.
func attach(st *GatewayState, hr *gwv1.HTTPRoute, pr gwv1.ParentReference, ls []*gwListener) (string, string, []*gwListener, [][]string) {
	var named []*gwListener
	for _, l := range ls {
		if pr.SectionName != nil && *pr.SectionName != l.spec.Name || pr.Port != nil && int(*pr.Port) != l.port {
			continue
		}
		named = append(named, l)
	}
	if len(named) == 0 {
		return string(gwv1.RouteReasonNoMatchingParent), "no listener matches the parentRef's sectionName and port", nil, nil
	}
	var allowed []*gwListener
	for _, l := range named {
		if l.accepted && kindAllowed(l) && allowsNamespace(st, l, hr.Namespace) {
			allowed = append(allowed, l)
		}
	}
	if len(allowed) == 0 {
		return string(gwv1.RouteReasonNotAllowedByListeners), "no listener allows this route", nil, nil
	}
	var attached []*gwListener
	var hosts [][]string
	for _, l := range allowed {
		hs := routeHosts(hostnameOf(l.spec.Hostname), hr.Spec.Hostnames)
		if len(hs) > 0 {
			attached = append(attached, l)
			hosts = append(hosts, hs)
		}
	}
	if len(attached) == 0 {
		return string(gwv1.RouteReasonNoMatchingListenerHostname), "no listener hostname matches the route's hostnames", nil, nil
	}
	return string(gwv1.RouteReasonAccepted), "route accepted", attached, hosts
}

func kindAllowed(l *gwListener) bool {
	for _, k := range l.kinds {
		if k.Kind == "HTTPRoute" {
			return true
		}
	}
	return false
}

// routeHosts intersects a listener's hostname with a route's hostnames.
func routeHosts(lh string, rhs []gwv1.Hostname) []string {
	if len(rhs) == 0 {
		return []string{lh}
	}
	var out []string
	for _, rh := range rhs {
		if h, ok := intersectHost(lh, strings.ToLower(string(rh))); ok && !containsString(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// intersectHost is the most specific hostname both patterns match, "" for any.
func intersectHost(a, b string) (string, bool) {
	switch {
	case a == "":
		return b, true
	case b == "":
		return a, true
	case a == b:
		return a, true
	case strings.HasPrefix(a, "*.") && strings.HasSuffix(b, a[1:]):
		return b, true
	case strings.HasPrefix(b, "*.") && strings.HasSuffix(a, b[1:]):
		return a, true
	}
	return "", false
}

// translateRules turns an HTTPRoute's rules into Routes (one per match). It
// answers why the route cannot be accepted ("" when it can) and the
// ResolvedRefs reason and message.
func translateRules(st *GatewayState, ix *Index, hr *gwv1.HTTPRoute) ([][]*Route, string, string, string) {
	refsReason, refsMsg := string(gwv1.RouteReasonResolvedRefs), "references resolved"
	var out [][]*Route
	for ri, rule := range hr.Spec.Rules {
		src := fmt.Sprintf("httproute %s/%s rule %d", hr.Namespace, hr.Name, ri)
		base := &Route{Source: src}
		for fi, f := range rule.Filters {
			if err := applyFilter(base, f); err != "" {
				return nil, fmt.Sprintf("spec.rules[%d].filters[%d]: %s", ri, fi, err), refsReason, refsMsg
			}
		}
		if rule.Timeouts != nil && rule.Timeouts.Request != nil {
			if d, err := time.ParseDuration(string(*rule.Timeouts.Request)); err == nil {
				base.Timeout = d
			}
		}
		if base.Redirect == nil {
			for bi, br := range rule.BackendRefs {
				b, reason, msg := gwBackend(st, ix, hr, br)
				if reason != "" && refsReason == string(gwv1.RouteReasonResolvedRefs) {
					refsReason, refsMsg = reason, fmt.Sprintf("spec.rules[%d].backendRefs[%d]: %s", ri, bi, msg)
				}
				if len(br.Filters) > 0 && b.Problem == "" {
					b.Problem, b.Status = "backendRef filters are not supported", 500
				}
				base.Backends = append(base.Backends, b)
			}
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.HTTPRouteMatch{{}}
		}
		var rs []*Route
		for mi, m := range matches {
			r := *base
			r.Path, r.Value = PathPrefix, "/"
			if m.Path != nil {
				if m.Path.Value != nil {
					r.Value = *m.Path.Value
				}
				if m.Path.Type != nil {
					switch *m.Path.Type {
					case gwv1.PathMatchExact:
						r.Path = PathExact
					case gwv1.PathMatchRegularExpression:
						re, err := regexp.Compile("^(?:" + r.Value + ")$")
						if err != nil {
							return nil, fmt.Sprintf("spec.rules[%d].matches[%d].path.value: %v", ri, mi, err), refsReason, refsMsg
						}
						r.Path, r.Regexp = PathRegex, re
					}
				}
			}
			if m.Method != nil {
				r.Method = string(*m.Method)
			}
			for hi, h := range m.Headers {
				if h.Type != nil && *h.Type != gwv1.HeaderMatchExact {
					return nil, fmt.Sprintf("spec.rules[%d].matches[%d].headers[%d].type: %q is not supported", ri, mi, hi, *h.Type), refsReason, refsMsg
				}
				if !hasKV(r.Headers, string(h.Name), true) {
					r.Headers = append(r.Headers, KV{Name: string(h.Name), Value: h.Value})
				}
			}
			for qi, q := range m.QueryParams {
				if q.Type != nil && *q.Type != gwv1.QueryParamMatchExact {
					return nil, fmt.Sprintf("spec.rules[%d].matches[%d].queryParams[%d].type: %q is not supported", ri, mi, qi, *q.Type), refsReason, refsMsg
				}
				if !hasKV(r.Query, string(q.Name), false) {
					r.Query = append(r.Query, KV{Name: string(q.Name), Value: q.Value})
				}
			}
			r.Source = fmt.Sprintf("%s match %d", src, mi)
			rs = append(rs, &r)
		}
		out = append(out, rs)
	}
	return out, "", refsReason, refsMsg
}

func hasKV(kvs []KV, name string, fold bool) bool {
	for _, kv := range kvs {
		if kv.Name == name || fold && strings.EqualFold(kv.Name, name) {
			return true
		}
	}
	return false
}

// applyFilter applies one rule filter to r; it answers why it cannot.
func applyFilter(r *Route, f gwv1.HTTPRouteFilter) string {
	switch f.Type {
	case gwv1.HTTPRouteFilterRequestHeaderModifier:
		if f.RequestHeaderModifier != nil {
			r.RequestHeaders = headerFilter(f.RequestHeaderModifier)
		}
	case gwv1.HTTPRouteFilterResponseHeaderModifier:
		if f.ResponseHeaderModifier != nil {
			r.ResponseHeaders = headerFilter(f.ResponseHeaderModifier)
		}
	case gwv1.HTTPRouteFilterRequestRedirect:
		rr := f.RequestRedirect
		if rr == nil {
			return "requestRedirect is required"
		}
		red := &Redirect{Code: 302}
		if rr.StatusCode != nil {
			red.Code = *rr.StatusCode
		}
		if rr.Scheme != nil {
			red.Scheme = *rr.Scheme
			red.Port = map[string]int{"http": 80, "https": 443}[strings.ToLower(red.Scheme)]
		}
		if rr.Hostname != nil {
			red.Host = string(*rr.Hostname)
		}
		if rr.Port != nil {
			red.Port = int(*rr.Port)
		}
		red.Path = pathModifier(rr.Path)
		r.Redirect = red
	case gwv1.HTTPRouteFilterURLRewrite:
		if f.URLRewrite == nil {
			return "urlRewrite is required"
		}
		rw := pathModifier(f.URLRewrite.Path)
		if rw == nil {
			rw = &Rewrite{}
		}
		if f.URLRewrite.Hostname != nil {
			rw.Host = string(*f.URLRewrite.Hostname)
		}
		r.Rewrite = rw
	default:
		return fmt.Sprintf("filter type %q is not supported", f.Type)
	}
	return ""
}

func pathModifier(p *gwv1.HTTPPathModifier) *Rewrite {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		return &Rewrite{FullPath: p.ReplaceFullPath}
	case gwv1.PrefixMatchHTTPPathModifier:
		return &Rewrite{PrefixPath: p.ReplacePrefixMatch}
	}
	return nil
}

func headerFilter(f *gwv1.HTTPHeaderFilter) *HeaderFilter {
	h := &HeaderFilter{Remove: f.Remove}
	for _, s := range f.Set {
		h.Set = append(h.Set, KV{Name: string(s.Name), Value: s.Value})
	}
	for _, a := range f.Add {
		h.Add = append(h.Add, KV{Name: string(a.Name), Value: a.Value})
	}
	return h
}

// backend resolves one backendRef; an unusable one answers 500 and gives the
// ResolvedRefs reason.
func gwBackend(st *GatewayState, ix *Index, hr *gwv1.HTTPRoute, br gwv1.HTTPBackendRef) (*Backend, string, string) {
	ns := hr.Namespace
	if br.Namespace != nil {
		ns = string(*br.Namespace)
	}
	b := &Backend{Service: types.NamespacedName{Namespace: ns, Name: string(br.Name)}, Weight: 1}
	if br.Weight != nil {
		b.Weight = *br.Weight
	}
	if br.Port != nil {
		b.Port = strconv.Itoa(int(*br.Port))
	}
	fail := func(reason, msg string) (*Backend, string, string) {
		b.Problem, b.Status = msg, 500
		return b, reason, msg
	}
	if br.Group != nil && *br.Group != "" || br.Kind != nil && *br.Kind != "Service" {
		g, k := "", "Service"
		if br.Group != nil {
			g = string(*br.Group)
		}
		if br.Kind != nil {
			k = string(*br.Kind)
		}
		return fail(string(gwv1.RouteReasonInvalidKind), fmt.Sprintf("backend kind %s.%s is not supported; Service is", k, g))
	}
	if ns != hr.Namespace && !granted(st.Grants, gatewayGroup, "HTTPRoute", hr.Namespace, "", "Service", ns, string(br.Name)) {
		return fail(string(gwv1.RouteReasonRefNotPermitted), fmt.Sprintf("Service %s/%s is not permitted by a ReferenceGrant", ns, br.Name))
	}
	if br.Port == nil {
		return fail(string(gwv1.RouteReasonUnsupportedValue), "port is required for a Service backend")
	}
	rb, err := ix.Backend(b.Service, "", int32(*br.Port), b.Weight)
	if err != nil {
		return fail(string(gwv1.RouteReasonBackendNotFound), err.Error())
	}
	b.Endpoints = rb.Endpoints
	return b, "", ""
}

// buildHosts fills each port's hosts. A request belongs to the most specific
// listener hostname that covers its host (listener isolation): every host
// pattern gets that listener's entries covering it (its own, wildcards matching
// it, host-less ones) in precedence order, then a 404 for the rest, so a
// request never falls through to another listener's routes.
func buildHosts(ports map[int]*Port, listenerHosts map[int]map[string]bool, entries []gwEntry) {
	byPort := map[int][]gwEntry{}
	for _, e := range entries {
		if ports[e.port] != nil {
			byPort[e.port] = append(byPort[e.port], e)
		}
	}
	for port, p := range ports {
		es := byPort[port]
		keys := map[string]bool{}
		for k := range listenerHosts[port] {
			keys[k] = true
		}
		for _, e := range es {
			keys[e.host] = true
		}
		for k := range keys {
			best := ""
			for lh := range listenerHosts[port] {
				if covers(lh, k) && hostRank(lh) > hostRank(best) {
					best = lh
				}
			}
			var mine []gwEntry
			for _, e := range es {
				if e.lhost == best && covers(e.host, k) {
					mine = append(mine, e)
				}
			}
			sort.SliceStable(mine, func(i, j int) bool { return precedes(mine[i], mine[j]) })
			h := &Host{AnyDepth: true}
			for _, e := range mine {
				h.Routes = append(h.Routes, e.route)
			}
			h.Routes = append(h.Routes, &Route{Source: fmt.Sprintf("gateway listener %q: no route", best), Path: PathPrefix, Value: "/",
				Backends: []*Backend{{Weight: 1, Problem: "no HTTPRoute of the listener matches", Status: http.StatusNotFound}}})
			p.Hosts[k] = h
		}
	}
}

// covers reports whether requests for host pattern k may match an gwEntry for pattern h.
func covers(h, k string) bool {
	return h == "" || h == k || strings.HasPrefix(h, "*.") && strings.HasSuffix(k, h[1:])
}

// precedes is Gateway API's order: most specific hostname, exact path, longest
// prefix, method, most headers, most query params, oldest route, name, rule order.
func precedes(a, b gwEntry) bool {
	if ka, kb := hostRank(a.host), hostRank(b.host); ka != kb {
		return ka > kb
	}
	if pa, pb := pathRank(a.route), pathRank(b.route); pa != pb {
		return pa < pb
	}
	if a.route.Path != PathExact && len(a.route.Value) != len(b.route.Value) {
		return len(a.route.Value) > len(b.route.Value)
	}
	if (a.route.Method != "") != (b.route.Method != "") {
		return a.route.Method != ""
	}
	if len(a.route.Headers) != len(b.route.Headers) {
		return len(a.route.Headers) > len(b.route.Headers)
	}
	if len(a.route.Query) != len(b.route.Query) {
		return len(a.route.Query) > len(b.route.Query)
	}
	if a.meta != b.meta {
		return olderFirst(a.meta, b.meta)
	}
	if a.rule != b.rule {
		return a.rule < b.rule
	}
	return a.match < b.match
}

// hostRank orders host patterns: exact names first, then longer wildcards.
func hostRank(h string) int {
	switch {
	case h == "":
		return 0
	case strings.HasPrefix(h, "*."):
		return len(h)
	}
	return 1 << 20
}

// pathRank: Exact, then RegularExpression, then Prefix.
func pathRank(r *Route) int {
	switch r.Path {
	case PathExact:
		return 0
	case PathRegex:
		return 1
	}
	return 2
}

// sortCerts puts certificates for named hosts before the fallback, exact names
// before wildcards.
func sortCerts(cs []Cert) {
	rank := func(c Cert) int {
		if len(c.Hosts) == 0 {
			return 0
		}
		return hostRank(c.Hosts[0])
	}
	sort.SliceStable(cs, func(i, j int) bool { return rank(cs[i]) > rank(cs[j]) })
}

// sameParent reports whether two parentRefs of a route in ns name the same parent.
func sameParent(a, b gwv1.ParentReference, ns string) bool {
	key := func(p gwv1.ParentReference) string {
		port := ""
		if p.Port != nil {
			port = strconv.Itoa(int(*p.Port))
		}
		return strings.Join([]string{strOr(p.Group, gatewayGroup), strOr(p.Kind, "Gateway"), strOr(p.Namespace, ns), string(p.Name), strOr(p.SectionName, ""), port}, "/")
	}
	return key(a) == key(b)
}

// strOr is *p as a string, or def when p is nil.
func strOr[T ~string](p *T, def string) string {
	if p == nil {
		return def
	}
	return string(*p)
}
