package ingress

import (
	"cmp"
	"fmt"
	"slices"
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
	redirect bool // the Ingress asks for HTTP->HTTPS
	fallback bool // a defaultBackend: after every rule
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
	ix := NewIndex(s)
	var events []Event
	var entries []entry
	var certs []Cert
	for _, ing := range OurIngresses(s, opts.Controller) {
		warn := func(reason, format string, args ...any) {
			events = append(events, Event{Kind: "Ingress", Namespace: ing.Namespace, Name: ing.Name, UID: ing.UID,
				Reason: reason, Message: fmt.Sprintf(format, args...)})
		}
		redirect := sslRedirect(ing.Annotations)
		src := "ingress " + ing.Namespace + "/" + ing.Name
		for i, t := range ing.Spec.TLS {
			if t.SecretName == "" {
				continue
			}
			c, err := ix.Certificate(types.NamespacedName{Namespace: ing.Namespace, Name: t.SecretName})
			if err != nil {
				warn("BadTLSSecret", "spec.tls[%d].secretName: %v", i, err)
				continue
			}
			hosts := make([]string, len(t.Hosts))
			for j, h := range t.Hosts {
				hosts[j] = strings.ToLower(h)
			}
			certs = append(certs, Cert{Hosts: hosts, Cert: c, Source: "secret " + ing.Namespace + "/" + t.SecretName})
		}
		backend := func(b networkingv1.IngressBackend, field string) []*Backend {
			if b.Service == nil {
				warn("ResourceBackend", "%s.resource: resource backends are not supported by %s", field, opts.Controller)
				return []*Backend{{Problem: "resource backends are not supported", Status: 503, Weight: 1}}
			}
			be, err := ix.Backend(types.NamespacedName{Namespace: ing.Namespace, Name: b.Service.Name},
				b.Service.Port.Name, b.Service.Port.Number, 1)
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
				field := fmt.Sprintf("spec.rules[%d].http.paths[%d].backend", i, j)
				rt := &Route{Source: fmt.Sprintf("%s rule %d path %d", src, i, j), Path: PathPrefix, Value: p.Path,
					Backends: backend(p.Backend, field)}
				if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
					rt.Path = PathExact
				} else {
					rt.Value = strings.TrimRight(rt.Value, "/")
				}
				if rt.Value == "" {
					rt.Value = "/"
				}
				entries = append(entries, entry{host: strings.ToLower(rule.Host), route: rt, redirect: redirect,
					seq: len(entries)})
			}
		}
		if ing.Spec.DefaultBackend != nil {
			rt := &Route{Source: src + " defaultBackend", Path: PathPrefix, Value: "/",
				Backends: backend(*ing.Spec.DefaultBackend, "spec.defaultBackend")}
			entries = append(entries, entry{route: rt, redirect: redirect, fallback: true, seq: len(entries)})
		}
	}
	slices.SortStableFunc(entries, comparePrecedence)
	t := &Table{Ports: map[int]*Port{}}
	if opts.HTTPPort > 0 {
		t.Ports[opts.HTTPPort] = &Port{Hosts: hostsOf(entries, func(e entry) *Route {
			if e.redirect && opts.HTTPSPort > 0 {
				return &Route{Source: e.route.Source, Path: e.route.Path, Value: e.route.Value,
					Redirect: &Redirect{Scheme: "https", Port: opts.HTTPSPort, Code: 308}}
			}
			return e.route
		})}
	}
	if opts.HTTPSPort > 0 {
		t.Ports[opts.HTTPSPort] = &Port{TLS: true, Certs: certs, Hosts: hostsOf(entries, func(e entry) *Route { return e.route })}
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
	hosts := map[string]*Host{}
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
