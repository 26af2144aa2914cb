package ingress

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Names svcnet's Ingress support answers to.
const (
	// IngressController is the spec.controller of svcnet's IngressClass.
	IngressController = "svcnet.io/ingress"
	// IngressClassName is the IngressClass svcnet creates (the default class).
	IngressClassName = "svcnet"
	// AnnotationSSLRedirect "true" on an Ingress redirects its plain HTTP
	// requests to HTTPS (308).
	AnnotationSSLRedirect = "svcnet.io/ssl-redirect"
	// AnnotationNginxSSLRedirect is ingress-nginx's name for the same, honoured
	// so existing manifests keep working (unlike ingress-nginx, the default is
	// no redirect even when the Ingress has TLS).
	AnnotationNginxSSLRedirect = "nginx.ingress.kubernetes.io/ssl-redirect"
	// annotationLegacyClass is the class annotation older Ingresses carry.
	annotationLegacyClass = "kubernetes.io/ingress.class"
)

// IngressOptions configure the Ingress translation.
type IngressOptions struct {
	// Controller selects the IngressClasses served (IngressController).
	Controller string
	// HTTPPort and HTTPSPort are the ports served (0: not served).
	HTTPPort, HTTPSPort int
}

// Event is a problem found in an object while translating it; the controller
// records it as a Warning Event on the object.
type Event struct {
	Kind, Namespace, Name string
	UID                   types.UID
	Reason, Message       string
}

// OurIngresses returns the Ingresses served by controller: those whose class
// (spec.ingressClassName, or the legacy annotation) names an IngressClass of
// controller, and those with no class when such a class is the default
// (ingressclass.kubernetes.io/is-default-class). Oldest first, then by name,
// which is the order ties in precedence are broken in.
func OurIngresses(s *State, controller string) []*networkingv1.Ingress {
	ours, dflt := map[string]bool{}, false
	for _, c := range s.IngressClasses {
		if c.Spec.Controller != controller {
			continue
		}
		ours[c.Name] = true
		if c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			dflt = true
		}
	}
	var out []*networkingv1.Ingress
	for _, ing := range s.Ingresses {
		if ing.DeletionTimestamp != nil {
			continue
		}
		class := ing.Annotations[annotationLegacyClass]
		if ing.Spec.IngressClassName != nil {
			class = *ing.Spec.IngressClassName
		}
		if (class == "" && dflt) || (class != "" && ours[class]) {
			out = append(out, ing)
		}
	}
	slices.SortFunc(out, func(a, b *networkingv1.Ingress) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), byName(a.Namespace, a.Name, b.Namespace, b.Name))
	})
	return out
}

// entry is one route being placed, with what its precedence is decided by.
type entry struct {
	host     string
	route    *Route
	redirect *Route // on the HTTP port instead of route: the Ingress asks for HTTP->HTTPS
	fallback bool   // a defaultBackend: after every rule
	seq      int
}

// FromIngresses translates the Ingresses of opts.Controller into a Table: the
// rules' routes on both ports (on the HTTP port a redirect to HTTPS where the
// Ingress asks for one), the TLS certificates on the HTTPS port. Within a host
// the longest path wins, Exact before Prefix at equal length, older Ingresses
// first at full ties, defaultBackends last on host "". ImplementationSpecific
// is Prefix. Problems (missing Services or Secrets, resource backends) come
// back as Events; the route then answers 503.
func FromIngresses(s *State, opts IngressOptions) (*Table, []Event) {
	return fromIngresses(s, NewIndex(s), opts)
}

// fromIngresses is FromIngresses resolving Services and Secrets through ix.
func fromIngresses(s *State, ix *Index, opts IngressOptions) (*Table, []Event) {
	var events []Event
	var entries []entry
	var certs []Cert
	s.Translations.begin(opts)
	for _, ing := range OurIngresses(s, opts.Controller) {
		tr := s.Translations.lookup(ing, ix)
		if tr == nil {
			tr = translateIngress(ix, ing, opts)
			s.Translations.store(ing, ix, tr)
		}
		events = append(events, tr.events...)
		certs = append(certs, tr.certs...)
		for _, e := range tr.entries {
			e.seq = len(entries)
			entries = append(entries, e)
		}
	}
	s.Translations.prune()
	slices.SortStableFunc(entries, comparePrecedence)
	t := &Table{Ports: map[int]*Port{}}
	routes := hostsOf(entries, func(e entry) *Route { return e.route })
	if opts.HTTPPort > 0 {
		plain := routes // shared (Tables are immutable) unless some Ingress redirects
		if slices.ContainsFunc(entries, func(e entry) bool { return e.redirect != nil }) {
			plain = hostsOf(entries, func(e entry) *Route {
				if e.redirect != nil {
					return e.redirect
				}
				return e.route
			})
		}
		t.Ports[opts.HTTPPort] = &Port{Hosts: plain}
	}
	if opts.HTTPSPort > 0 {
		t.Ports[opts.HTTPSPort] = &Port{TLS: true, Certs: certs, Hosts: routes}
	}
	return t, events
}

// comparePrecedence orders entries as Kubernetes defines for Ingress paths.
func comparePrecedence(a, b entry) int {
	if a.fallback != b.fallback {
		if a.fallback {
			return 1
		}
		return -1
	}
	if la, lb := len(a.route.Value), len(b.route.Value); la != lb {
		return lb - la
	}
	if a.route.Path != b.route.Path {
		if a.route.Path == PathExact {
			return -1
		}
		return 1
	}
	return a.seq - b.seq
}

// hostsOf groups sorted entries by host, mapping each through f.
func hostsOf(entries []entry, f func(entry) *Route) map[string]*Host {
	hosts := make(map[string]*Host, len(entries))
	for _, e := range entries {
		h := hosts[e.host]
		if h == nil {
			h = &Host{}
			hosts[e.host] = h
		}
		h.Routes = append(h.Routes, f(e))
	}
	return hosts
}

// sslRedirect reads the redirect annotations (svcnet's first).
func sslRedirect(a map[string]string) bool {
	if v, ok := a[AnnotationSSLRedirect]; ok {
		return v == "true"
	}
	return a[AnnotationNginxSSLRedirect] == "true"
}

// translated is one Ingress' share of a Table: its routes (seq unset), its
// certificates and the problems found, and what it read to build them.
type translated struct {
	entries []entry
	certs   []Cert
	events  []Event
	deps    []dep
}

// translateIngress translates one Ingress; ix records what it reads.
func translateIngress(ix *Index, ing *networkingv1.Ingress, opts IngressOptions) *translated {
	tr := &translated{}
	warn := func(reason, format string, args ...any) {
		tr.events = append(tr.events, Event{Kind: "Ingress", Namespace: ing.Namespace, Name: ing.Name, UID: ing.UID,
			Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	toHTTPS := sslRedirect(ing.Annotations) && opts.HTTPSPort > 0
	redirect := func(rt *Route) *Route {
		if !toHTTPS {
			return nil
		}
		return &Route{Source: rt.Source, Path: rt.Path, Value: rt.Value, Redirect: &Redirect{Scheme: "https", Port: opts.HTTPSPort, Code: 308}}
	}
	src := "ingress " + ing.Namespace + "/" + ing.Name
	for i, t := range ing.Spec.TLS {
		if t.SecretName == "" {
			continue
		}
		name := types.NamespacedName{Namespace: ing.Namespace, Name: t.SecretName}
		tr.deps = append(tr.deps, dep{secret: true, name: name})
		c, err := ix.Certificate(name)
		if err != nil {
			warn("BadTLSSecret", "spec.tls[%d].secretName: %v", i, err)
			continue
		}
		hosts := make([]string, len(t.Hosts))
		for j, h := range t.Hosts {
			hosts[j] = strings.ToLower(h)
		}
		tr.certs = append(tr.certs, Cert{Hosts: hosts, Cert: c, Source: "secret " + ing.Namespace + "/" + t.SecretName})
	}
	backend := func(b networkingv1.IngressBackend, field string) []*Backend {
		if b.Service == nil {
			warn("ResourceBackend", "%s.resource: resource backends are not supported by %s", field, opts.Controller)
			return []*Backend{{Problem: "resource backends are not supported", Status: 503, Weight: 1}}
		}
		name := types.NamespacedName{Namespace: ing.Namespace, Name: b.Service.Name}
		tr.deps = append(tr.deps, dep{name: name})
		be, err := ix.Backend(name, b.Service.Port.Name, b.Service.Port.Number, 1)
		if err != nil {
			warn("BackendNotFound", "%s.service: %v", field, err)
		}
		return []*Backend{be}
	}
	for i, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			field := "spec.rules[" + strconv.Itoa(i) + "].http.paths[" + strconv.Itoa(j) + "].backend"
			rt := &Route{Source: src + " rule " + strconv.Itoa(i) + " path " + strconv.Itoa(j), Path: PathPrefix, Value: p.Path,
				Backends: backend(p.Backend, field)}
			if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
				rt.Path = PathExact
			} else {
				rt.Value = strings.TrimRight(rt.Value, "/")
			}
			if rt.Value == "" {
				rt.Value = "/"
			}
			tr.entries = append(tr.entries, entry{host: strings.ToLower(rule.Host), route: rt, redirect: redirect(rt)})
		}
	}
	if ing.Spec.DefaultBackend != nil {
		rt := &Route{Source: src + " defaultBackend", Path: PathPrefix, Value: "/",
			Backends: backend(*ing.Spec.DefaultBackend, "spec.defaultBackend")}
		tr.entries = append(tr.entries, entry{route: rt, redirect: redirect(rt), fallback: true})
	}
	return tr
}
