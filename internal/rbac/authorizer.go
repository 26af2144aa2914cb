package rbac

import (
	"errors"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Source reads the RBAC objects. The API server implements it with a
// watch-fed cache; Static is the in-memory version for tests and tools.
type Source interface {
	// Role returns Role ns/name.
	Role(ns, name string) (*rbacv1.Role, bool)
	// ClusterRole returns ClusterRole name.
	ClusterRole(name string) (*rbacv1.ClusterRole, bool)
	// RoleBindings returns the RoleBindings of namespace ns.
	RoleBindings(ns string) []*rbacv1.RoleBinding
	// ClusterRoleBindings returns every ClusterRoleBinding.
	ClusterRoleBindings() []*rbacv1.ClusterRoleBinding
}

// Authorizer decides requests from the objects of a Source.
type Authorizer struct {
	Source Source
}

// visitor sees each rule a user holds with where it comes from; false stops.
type visitor func(source string, rule *rbacv1.PolicyRule, err error) bool

// RoleRules returns the rules of the role a binding in ns refers to (ns ""
// for a ClusterRoleBinding).
func (a *Authorizer) RoleRules(ref rbacv1.RoleRef, ns string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "Role":
		if r, ok := a.Source.Role(ns, ref.Name); ok {
			return r.Rules, nil
		}
		return nil, fmt.Errorf("role.rbac.authorization.k8s.io %q not found", ref.Name)
	case "ClusterRole":
		if r, ok := a.Source.ClusterRole(ref.Name); ok {
			return r.Rules, nil
		}
		return nil, fmt.Errorf("clusterrole.rbac.authorization.k8s.io %q not found", ref.Name)
	}
	return nil, fmt.Errorf("unsupported role reference kind: %q", ref.Kind)
}

// describe names a subject the way Kubernetes' reasons do.
func describe(s *rbacv1.Subject, ns string) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		if s.Namespace != "" {
			ns = s.Namespace
		}
		return fmt.Sprintf("%s %q", s.Kind, s.Name+"/"+ns)
	}
	return fmt.Sprintf("%s %q", s.Kind, s.Name)
}

// visit walks the rules that apply to u in ns: those of ClusterRoleBindings,
// then those of the RoleBindings of ns (none when ns is "").
func (a *Authorizer) visit(u User, ns string, fn visitor) {
	for _, b := range a.Source.ClusterRoleBindings() {
		if !a.visitBinding(u, "ClusterRoleBinding", b.Name, "", b.Subjects, b.RoleRef, fn) {
			return
		}
	}
	if ns == "" {
		return
	}
	for _, b := range a.Source.RoleBindings(ns) {
		if !a.visitBinding(u, "RoleBinding", b.Name, ns, b.Subjects, b.RoleRef, fn) {
			return
		}
	}
}

// visitBinding hands fn the rules of one binding (in ns, "" for a
// ClusterRoleBinding) when it names u; false when fn stopped.
func (a *Authorizer) visitBinding(u User, kind, name, ns string, subjects []rbacv1.Subject, ref rbacv1.RoleRef, fn visitor) bool {
	s, ok := firstSubject(u, subjects, ns)
	if !ok {
		return true
	}
	rules, err := a.RoleRules(ref, ns)
	if err != nil {
		return fn("", nil, err)
	}
	if ns != "" {
		name += "/" + ns
	}
	src := fmt.Sprintf("%s %q of %s %q to %s", kind, name, ref.Kind, ref.Name, describe(s, ns))
	for i := range rules {
		if !fn(src, &rules[i], nil) {
			return false
		}
	}
	return true
}

// Authorize reports whether some binding grants the request, with Kubernetes'
// reason: "RBAC: allowed by ClusterRoleBinding ..." when allowed, empty when
// denied unless a binding could not be resolved.
func (a *Authorizer) Authorize(attrs Attributes) (bool, string) {
	var reason string
	var errs []error
	allowed := false
	a.visit(attrs.User, attrs.Namespace, func(src string, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
			return true
		}
		if RuleAllows(attrs, rule) {
			allowed, reason = true, "RBAC: allowed by "+src
			return false
		}
		return true
	})
	if allowed {
		return true, reason
	}
	if len(errs) > 0 {
		return false, "RBAC: " + errors.Join(errs...).Error()
	}
	return false, ""
}

// RulesFor returns every rule u holds in ns (cluster-wide ones included) and
// the errors met resolving role references.
func (a *Authorizer) RulesFor(u User, ns string) ([]rbacv1.PolicyRule, []error) {
	var rules []rbacv1.PolicyRule
	var errs []error
	a.visit(u, ns, func(_ string, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
		} else {
			rules = append(rules, *rule)
		}
		return true
	})
	return rules, errs
}

// Static is a Source over fixed lists (for tests and the bootstrap policy).
type Static struct {
	RoleList               []*rbacv1.Role
	ClusterRoleList        []*rbacv1.ClusterRole
	RoleBindingList        []*rbacv1.RoleBinding
	ClusterRoleBindingList []*rbacv1.ClusterRoleBinding
}

var _ Source = (*Static)(nil)

// Role implements Source.
func (s *Static) Role(ns, name string) (*rbacv1.Role, bool) {
	for _, r := range s.RoleList {
		if r.Namespace == ns && r.Name == name {
			return r, true
		}
	}
	return nil, false
}

// ClusterRole implements Source.
func (s *Static) ClusterRole(name string) (*rbacv1.ClusterRole, bool) {
	for _, r := range s.ClusterRoleList {
		if r.Name == name {
			return r, true
		}
	}
	return nil, false
}

// RoleBindings implements Source.
func (s *Static) RoleBindings(ns string) []*rbacv1.RoleBinding {
	var out []*rbacv1.RoleBinding
	for _, b := range s.RoleBindingList {
		if b.Namespace == ns {
			out = append(out, b)
		}
	}
	return out
}

// ClusterRoleBindings implements Source.
func (s *Static) ClusterRoleBindings() []*rbacv1.ClusterRoleBinding { return s.ClusterRoleBindingList }
