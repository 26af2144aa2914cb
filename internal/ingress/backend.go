package ingress

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// State is the cluster objects the translations read, as the controller's
// informers hold them at one moment. Translations must not modify them.
type State struct {
	Ingresses      []*networkingv1.Ingress
	IngressClasses []*networkingv1.IngressClass
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Secrets        []*corev1.Secret // kubernetes.io/tls only
	// Certs caches parsed certificates across builds (nil: parse every time).
	Certs *CertCache
	// Translations caches translated Ingresses across builds (nil: translate all).
	Translations *IngressCache
}

// Index looks up Services, their endpoints and TLS Secrets by name; both the
// Ingress and the Gateway API translations resolve backends through it.
type Index struct {
	services map[types.NamespacedName]*corev1.Service
	slices   map[types.NamespacedName][]*discoveryv1.EndpointSlice
	secrets  map[types.NamespacedName]*corev1.Secret
	certs    *CertCache
	fps      map[types.NamespacedName]string // fingerprints computed so far
}

// NewIndex indexes s's Services, EndpointSlices and Secrets.
func NewIndex(s *State) *Index {
	ix := &Index{services: map[types.NamespacedName]*corev1.Service{},
		slices:  map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
		secrets: map[types.NamespacedName]*corev1.Secret{}, certs: s.Certs}
	for _, svc := range s.Services {
		ix.services[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = svc
	}
	for _, es := range s.EndpointSlices {
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		key := types.NamespacedName{Namespace: es.Namespace, Name: name}
		ix.slices[key] = append(ix.slices[key], es)
	}
	for _, sec := range s.Secrets {
		ix.secrets[types.NamespacedName{Namespace: sec.Namespace, Name: sec.Name}] = sec
	}
	return ix
}

// Service returns a Service by name, or nil.
func (ix *Index) Service(name types.NamespacedName) *corev1.Service { return ix.services[name] }

// Backend resolves a Service port, named (portName) or by number, to the
// endpoints its targetPort reaches: ready ones, else serving-terminating
// ones. A named targetPort may differ per endpoint; EndpointSlices carry the
// resolved number. Problems come back as a Backend with Problem and Status
// 503 (what ingress-nginx answers) and as the error.
func (ix *Index) Backend(svc types.NamespacedName, portName string, portNumber int32, weight int32) (*Backend, error) {
	b := &Backend{Service: svc, Weight: weight, Port: portName}
	if portName == "" {
		b.Port = strconv.Itoa(int(portNumber))
	}
	fail := func(format string, args ...any) (*Backend, error) {
		b.Problem, b.Status = fmt.Sprintf(format, args...), http.StatusServiceUnavailable
		return b, fmt.Errorf("%s", b.Problem)
	}
	s := ix.services[svc]
	if s == nil {
		return fail("service %s not found", svc)
	}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return fail("service %s is of type ExternalName, which is not supported as a backend", svc)
	}
	var sp *corev1.ServicePort
	for i := range s.Spec.Ports {
		p := &s.Spec.Ports[i]
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if (portName != "" && p.Name == portName) || (portName == "" && p.Port == portNumber) {
			sp = p
			break
		}
	}
	if sp == nil {
		return fail("service %s has no TCP port %s", svc, b.Port)
	}
	var ready, terminating []netip.AddrPort
	for _, es := range ix.slices[svc] {
		if es.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		port := slicePort(es, sp.Name)
		if port == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			isReady := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			serving := isReady
			if ep.Conditions.Serving != nil {
				serving = *ep.Conditions.Serving
			}
			isTerm := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ap := netip.AddrPortFrom(ip, uint16(port))
				switch {
				case isReady && !isTerm:
					ready = append(ready, ap)
				case serving && isTerm:
					terminating = append(terminating, ap)
				}
			}
		}
	}
	if len(ready) == 0 {
		ready = terminating
	}
	slices.SortFunc(ready, func(a, b netip.AddrPort) int { return a.Compare(b) })
	b.Endpoints = slices.Compact(ready)
	return b, nil
}

// slicePort is the TCP port number of the slice's port named name (0: none).
func slicePort(es *discoveryv1.EndpointSlice, name string) int32 {
	for _, p := range es.Ports {
		n := ""
		if p.Name != nil {
			n = *p.Name
		}
		if n != name || p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		return *p.Port
	}
	return 0
}

// Certificate returns the key pair of a kubernetes.io/tls Secret.
func (ix *Index) Certificate(name types.NamespacedName) (*tls.Certificate, error) {
	sec := ix.secrets[name]
	if sec == nil {
		return nil, fmt.Errorf("secret %s not found (or not of type %s)", name, corev1.SecretTypeTLS)
	}
	if sec.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("secret %s is of type %s, not %s", name, sec.Type, corev1.SecretTypeTLS)
	}
	return ix.certs.get(sec)
}

// CertCache keeps parsed key pairs by Secret and resourceVersion, so a build
// parses only the Secrets that changed. It is used by one builder at a time.
type CertCache struct {
	m map[types.UID]cachedCert
}

type cachedCert struct {
	rv   string
	cert *tls.Certificate
	err  error
}

func (c *CertCache) get(sec *corev1.Secret) (*tls.Certificate, error) {
	if c != nil {
		if e, ok := c.m[sec.UID]; ok && e.rv == sec.ResourceVersion && sec.UID != "" {
			return e.cert, e.err
		}
	}
	cert, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	var cp *tls.Certificate
	if err != nil {
		err = fmt.Errorf("secret %s/%s: %w", sec.Namespace, sec.Name, err)
	} else {
		cp = &cert
	}
	if c != nil && sec.UID != "" {
		if c.m == nil {
			c.m = map[types.UID]cachedCert{}
		}
		c.m[sec.UID] = cachedCert{rv: sec.ResourceVersion, cert: cp, err: err}
	}
	return cp, err
}

// Prune forgets the Secrets that are no longer in secrets.
func (c *CertCache) Prune(secrets []*corev1.Secret) {
	if c == nil {
		return
	}
	keep := map[types.UID]bool{}
	for _, s := range secrets {
		keep[s.UID] = true
	}
	for uid := range c.m {
		if !keep[uid] {
			delete(c.m, uid)
		}
	}
}

// byName orders objects by namespace and name.
func byName(ans, an, bns, bn string) int {
	return cmp.Or(cmp.Compare(ans, bns), cmp.Compare(an, bn))
}

// readyIPs counts the ready endpoints' addresses of slices (ready and not
// terminating, the ones Backend prefers).
func readyIPs(slices []*discoveryv1.EndpointSlice) map[netip.Addr]int {
	out := map[netip.Addr]int{}
	for _, es := range slices {
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready || ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					out[ip]++
				}
			}
		}
	}
	return out
}
