package ingress

import (
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// IngressCache keeps each Ingress' translation across builds, keyed by its
// resourceVersion and the resourceVersions of the Services (with their
// EndpointSlices) and Secrets it read, so a build translates only the
// Ingresses that changed or whose backends or certificates did. Objects
// without a resourceVersion are never cached. One builder uses it at a time.
type IngressCache struct {
	opts IngressOptions
	m    map[types.UID]*cachedIngress
	seen map[types.UID]bool // looked up in the current build
}

type cachedIngress struct {
	rv  string
	fps []string // fingerprints of tr.deps, in order
	tr  *translated
}

// dep is an object a translation read: a Service (and its EndpointSlices) or
// a Secret.
type dep struct {
	secret bool
	name   types.NamespacedName
}

// begin starts a build with opts (a change of options forgets everything).
func (c *IngressCache) begin(opts IngressOptions) {
	if c == nil {
		return
	}
	if c.m == nil || c.opts != opts {
		c.m = map[types.UID]*cachedIngress{}
	}
	c.opts, c.seen = opts, map[types.UID]bool{}
}

// lookup returns ing's translation when neither it nor what it read changed.
func (c *IngressCache) lookup(ing *networkingv1.Ingress, ix *Index) *translated {
	if c == nil || ing.UID == "" {
		return nil
	}
	c.seen[ing.UID] = true
	e := c.m[ing.UID]
	if e == nil || ing.ResourceVersion == "" || e.rv != ing.ResourceVersion {
		return nil
	}
	for i, d := range e.tr.deps {
		if fp, ok := ix.fingerprint(d); !ok || fp != e.fps[i] {
			return nil
		}
	}
	return e.tr
}

// store remembers tr as ing's translation (unless something it read has no
// resourceVersion).
func (c *IngressCache) store(ing *networkingv1.Ingress, ix *Index, tr *translated) {
	if c == nil || ing.UID == "" || ing.ResourceVersion == "" {
		return
	}
	fps := make([]string, len(tr.deps))
	for i, d := range tr.deps {
		fp, ok := ix.fingerprint(d)
		if !ok {
			delete(c.m, ing.UID)
			return
		}
		fps[i] = fp
	}
	c.m[ing.UID] = &cachedIngress{rv: ing.ResourceVersion, fps: fps, tr: tr}
}

// prune forgets the Ingresses the current build did not look up.
func (c *IngressCache) prune() {
	if c == nil {
		return
	}
	for uid := range c.m {
		if !c.seen[uid] {
			delete(c.m, uid)
		}
	}
}

// fingerprint identifies the version of what d names: the resourceVersions of
// a Service and its EndpointSlices, or of a Secret ("-" when absent); false
// when one has no resourceVersion (then it cannot be cached).
func (ix *Index) fingerprint(d dep) (string, bool) {
	if d.secret {
		sec := ix.secrets[d.name]
		if sec == nil {
			return "-", true
		}
		return sec.ResourceVersion, sec.ResourceVersion != ""
	}
	if fp, ok := ix.fps[d.name]; ok {
		return fp, fp != ""
	}
	var b strings.Builder
	ok := true
	if svc := ix.services[d.name]; svc != nil {
		b.WriteString(svc.ResourceVersion)
		ok = svc.ResourceVersion != ""
	} else {
		b.WriteString("-")
	}
	parts := make([]string, 0, len(ix.slices[d.name]))
	for _, es := range ix.slices[d.name] { // in the listers' (random) order
		parts = append(parts, string(es.UID)+"="+es.ResourceVersion)
		ok = ok && es.ResourceVersion != ""
	}
	slices.Sort(parts)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(p)
	}
	fp := b.String()
	if !ok {
		fp = ""
	}
	if ix.fps == nil {
		ix.fps = map[types.NamespacedName]string{}
	}
	ix.fps[d.name] = fp
	return fp, ok
}
