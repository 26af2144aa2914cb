// Package registry describes every API resource svcnet serves: its names, its Go
// types, and its strategy (defaults and validation, as Kubernetes applies them). It
// does no I/O, so all of it is unit-tested with plain objects.
package registry

import (
	"sync/atomic"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Strategy holds the per-kind rules applied on writes. Objects passed in are the
// resource's own Go type; PrepareFor* mutate in place.
type Strategy interface {
	// PrepareForCreate applies defaults to a new object.
	PrepareForCreate(obj runtime.Object)
	// Validate checks a new object.
	Validate(obj runtime.Object) field.ErrorList
	// PrepareForUpdate applies defaults and carries over server-owned values from old.
	PrepareForUpdate(obj, old runtime.Object)
	// ValidateUpdate checks an update, including immutable fields.
	ValidateUpdate(obj, old runtime.Object) field.ErrorList
}

// Resource describes one served resource.
type Resource struct {
	Group      string
	Version    string // the storage version
	Resource   string // plural, lower case
	Singular   string
	Kind       string
	ListKind   string
	Namespaced bool
	ShortNames []string
	Categories []string
	// HasStatus says the resource has a /status subresource; then writes to the main
	// resource keep the stored status and writes to /status keep everything else.
	HasStatus bool
	// CreateOnUpdate lets PUT create a missing object (Endpoints, Events, Leases).
	CreateOnUpdate bool
	// HasSpec says metadata.generation follows changes of .spec.
	HasSpec bool
	New     func() runtime.Object
	NewList func() runtime.Object
	// Fields returns the object's selectable fields beyond metadata.name/namespace.
	Fields   func(obj runtime.Object) fields.Set
	Strategy Strategy
	// Legacy lists older group/versions served for this resource by conversion.
	Legacy []Legacy
	// Custom is set for resources served from a CustomResourceDefinition.
	Custom *Custom
}

// Legacy is an old group/version of a resource, converted on the way in and out.
type Legacy struct {
	GroupVersion schema.GroupVersion
	New          func() runtime.Object
	// ToStorage converts a decoded legacy object to the storage version.
	ToStorage func(runtime.Object) (runtime.Object, error)
	// FromStorage converts a stored object to the legacy version.
	FromStorage func(runtime.Object) (runtime.Object, error)
	Warning     string
}

// GroupVersion returns the resource's storage group/version.
func (r *Resource) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// GroupResource returns the resource's group and plural name.
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Resource}
}

// GroupKind returns the resource's group and kind.
func (r *Resource) GroupKind() schema.GroupKind {
	return schema.GroupKind{Group: r.Group, Kind: r.Kind}
}

// Registry is the set of served resources: the built-in ones, fixed, and the
// custom ones, replaced as a whole whenever the CustomResourceDefinitions change.
// Readers see one consistent snapshot without locking.
type Registry struct {
	builtin []*Resource
	snap    atomic.Pointer[snapshot]
}

type snapshot struct {
	list []*Resource
	byGR map[schema.GroupResource]*Resource
	// byName finds the resources with a plural name (several groups may share one).
	byName map[string][]*Resource
}

func newSnapshot(rs []*Resource) *snapshot {
	sn := &snapshot{list: rs, byGR: map[schema.GroupResource]*Resource{}, byName: map[string][]*Resource{}}
	for _, r := range rs {
		if r.ListKind == "" {
			r.ListKind = r.Kind + "List"
		}
		sn.byGR[r.GroupResource()] = r
		sn.byName[r.Resource] = append(sn.byName[r.Resource], r)
	}
	return sn
}

// New builds a registry of the given resources.
func New(rs ...*Resource) *Registry {
	reg := &Registry{builtin: rs}
	reg.snap.Store(newSnapshot(rs))
	return reg
}

// SetCustom replaces the custom resources. Ones that would shadow a built-in
// resource are ignored (the CRD controller refuses such names first).
func (reg *Registry) SetCustom(custom []*Resource) {
	all := append([]*Resource(nil), reg.builtin...)
	for _, r := range custom {
		if !reg.IsBuiltin(r.GroupResource()) {
			all = append(all, r)
		}
	}
	reg.snap.Store(newSnapshot(all))
}

// IsBuiltin reports whether gr is one of the built-in resources.
func (reg *Registry) IsBuiltin(gr schema.GroupResource) bool {
	for _, r := range reg.builtin {
		if r.GroupResource() == gr {
			return true
		}
	}
	return false
}

// All returns the resources in registration order, custom ones last.
func (reg *Registry) All() []*Resource { return reg.snap.Load().list }

// Lookup finds a resource served at group/version under its plural name, and the
// legacy conversion to use (nil for the storage version).
func (reg *Registry) Lookup(gv schema.GroupVersion, resource string) (*Resource, *Legacy) {
	for _, r := range reg.snap.Load().byName[resource] {
		if r.GroupVersion() == gv {
			return r, nil
		}
		for i := range r.Legacy {
			if r.Legacy[i].GroupVersion == gv {
				return r, &r.Legacy[i]
			}
		}
	}
	return nil, nil
}

// Get returns a resource by group and plural name.
func (reg *Registry) Get(gr schema.GroupResource) *Resource { return reg.snap.Load().byGR[gr] }

// GroupVersions returns every served group/version, storage versions first within
// a group, in registration order.
func (reg *Registry) GroupVersions() []schema.GroupVersion {
	var out []schema.GroupVersion
	seen := map[schema.GroupVersion]bool{}
	add := func(gv schema.GroupVersion) {
		if !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	list := reg.All()
	for _, r := range list {
		add(r.GroupVersion())
	}
	for _, r := range list {
		for _, l := range r.Legacy {
			add(l.GroupVersion)
		}
	}
	return out
}
