package rbac

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/component-helpers/auth/rbac/validation"
)

// EscalationAllowed reports whether u may grant any permission (system:masters).
func EscalationAllowed(u User) bool { return u.In(GroupMasters) }

// ConfirmNoEscalation returns nil when u holds every rule of rules in ns ("":
// cluster-wide), and otherwise an error naming the rules u lacks, as Kubernetes
// words it.
func (a *Authorizer) ConfirmNoEscalation(u User, ns string, rules []rbacv1.PolicyRule) error {
	owned, errs := a.RulesFor(u, ns)
	ok, missing := validation.Covers(owned, rules)
	if ok {
		return nil
	}
	lines := make([]string, len(missing))
	for i, r := range missing {
		lines[i] = Compact(r)
	}
	sort.Strings(lines)
	msg := fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s",
		u.Name, u.Groups, strings.Join(lines, "\n"))
	if len(errs) > 0 {
		msg += fmt.Sprintf("; resolution errors: %v", errors.Join(errs...))
	}
	return errors.New(msg)
}

// Compact formats a rule as Kubernetes' messages do:
// {APIGroups:[""], Resources:["pods"], Verbs:["get"]}.
func Compact(r rbacv1.PolicyRule) string {
	var parts []string
	add := func(name string, v []string) {
		if len(v) == 0 {
			return
		}
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = fmt.Sprintf("%q", s)
		}
		parts = append(parts, name+":["+strings.Join(q, " ")+"]")
	}
	add("APIGroups", r.APIGroups)
	add("Resources", r.Resources)
	add("ResourceNames", r.ResourceNames)
	add("NonResourceURLs", r.NonResourceURLs)
	add("Verbs", r.Verbs)
	return "{" + strings.Join(parts, ", ") + "}"
}
