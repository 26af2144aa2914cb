// Package rbac decides requests by rbac.authorization.k8s.io/v1 Roles, ClusterRoles
// and their bindings, as Kubernetes' RBAC authorizer does: rule and subject
// matching, the rules a user holds (SelfSubjectRulesReview), ClusterRole
// aggregation, the escalation check on role and binding writes, and the default
// policy an API server bootstraps. It does no I/O: the objects come through a
// small read interface, so everything is tested with plain values.
package rbac

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Well-known groups of the default policy and of service account identities.
const (
	GroupMasters              = "system:masters"
	GroupAuthenticated        = "system:authenticated"
	GroupUnauthenticated      = "system:unauthenticated"
	GroupServiceAccounts      = "system:serviceaccounts"
	ServiceAccountUserPrefix  = "system:serviceaccount:"
	serviceAccountGroupPrefix = GroupServiceAccounts + ":"
)

// User is who makes a request, as far as RBAC cares.
type User struct {
	Name   string
	Groups []string
}

// In reports whether the user belongs to group.
func (u User) In(group string) bool { return slices.Contains(u.Groups, group) }

// Attributes describe one request: a resource request (Resource set) or a
// non-resource one (Path set).
type Attributes struct {
	User        User
	Verb        string
	APIGroup    string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	Path        string
}

// ResourceRequest reports whether the request is for an API resource.
func (a Attributes) ResourceRequest() bool { return a.Resource != "" }

// ServiceAccountUser returns the user name of service account ns/name.
func ServiceAccountUser(ns, name string) string { return ServiceAccountUserPrefix + ns + ":" + name }

// ServiceAccountGroups returns the groups Kubernetes gives service accounts of ns.
func ServiceAccountGroups(ns string) []string {
	return []string{GroupServiceAccounts, serviceAccountGroupPrefix + ns}
}

// RuleAllows reports whether rule grants the request described by a.
func RuleAllows(a Attributes, rule *rbacv1.PolicyRule) bool {
	if !hasOrStar(rule.Verbs, a.Verb) {
		return false
	}
	if !a.ResourceRequest() {
		return urlMatches(rule.NonResourceURLs, a.Path)
	}
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	return hasOrStar(rule.APIGroups, a.APIGroup) &&
		resourceMatches(rule.Resources, resource, a.Subresource) &&
		(len(rule.ResourceNames) == 0 || slices.Contains(rule.ResourceNames, a.Name))
}

func hasOrStar(set []string, v string) bool {
	for _, s := range set {
		if s == rbacv1.VerbAll || s == v {
			return true
		}
	}
	return false
}

// resourceMatches matches "pods", "pods/log", "*" and "*/scale" against the
// requested resource (with its subresource joined by "/"). A plain "pods" does
// not grant "pods/log".
func resourceMatches(rules []string, resource, subresource string) bool {
	for _, r := range rules {
		switch {
		case r == rbacv1.ResourceAll, r == resource:
			return true
		case subresource != "" && r == "*/"+subresource:
			return true
		}
	}
	return false
}

// urlMatches matches exact paths, "*", and prefixes written with a trailing "*".
func urlMatches(rules []string, path string) bool {
	for _, u := range rules {
		switch {
		case u == rbacv1.NonResourceAll, u == path:
			return true
		case strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimSuffix(u, "*")):
			return true
		}
	}
	return false
}

// AppliesTo reports whether subject names the user; ns is the binding's
// namespace, which a ServiceAccount subject without a namespace defaults to.
func AppliesTo(u User, s rbacv1.Subject, ns string) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return u.Name == s.Name
	case rbacv1.GroupKind:
		return u.In(s.Name)
	case rbacv1.ServiceAccountKind:
		saNS := s.Namespace
		if saNS == "" {
			saNS = ns
		}
		return saNS != "" && u.Name == ServiceAccountUser(saNS, s.Name)
	}
	return false
}

// firstSubject returns the first subject that names the user.
func firstSubject(u User, subjects []rbacv1.Subject, ns string) (*rbacv1.Subject, bool) {
	for i := range subjects {
		if AppliesTo(u, subjects[i], ns) {
			return &subjects[i], true
		}
	}
	return nil, false
}
