package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/rbac"
	"github.com/svcnet/svcnet/internal/registry"
)

// Authorization is, as in kube-apiserver with --authorization-mode=Node,RBAC:
// system:masters may do anything; then the Node authorizer (auth.AuthorizeNode)
// for node identities; then RBAC over the Roles and bindings in storage, read
// from a watch-fed cache. Writes of roles and bindings are checked for
// escalation; the default ClusterRoles and ClusterRoleBindings are reconciled
// at start and aggregated ClusterRoles kept up to date.

const (
	// rbacReadyWait bounds how long a request waits for the RBAC cache's first
	// list after a start; later it answers at once.
	rbacReadyWait = 10 * time.Second
	// aggregationRetry is how soon a failed aggregation write is retried.
	aggregationRetry = 5 * time.Second
)

func rbacUser(u *auth.User) rbac.User { return rbac.User{Name: u.Name, Groups: u.Groups} }

// authorize decides a request, with the reason to show when it is refused.
func (s *Server) authorize(a auth.Attributes) (bool, string) {
	if a.User.In(auth.GroupMasters) {
		return true, ""
	}
	ok, nodeReason := auth.AuthorizeNode(a)
	if ok {
		return true, ""
	}
	select {
	case <-s.rbac.ready:
	case <-time.After(rbacReadyWait):
		return false, "RBAC: the authorization cache is not ready"
	}
	authz := rbac.Authorizer{Source: s.rbac}
	ok, reason := authz.Authorize(rbac.Attributes{User: rbacUser(a.User), Verb: a.Verb, APIGroup: a.APIGroup,
		Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace, Name: a.Name, Path: a.Path})
	if !ok && reason == "" {
		reason = nodeReason
	}
	return ok, reason
}

// forbidden is Kubernetes' refusal: `pods "p" is forbidden: User "jane" cannot
// get resource "pods/log" in API group "" in the namespace "default"`.
func forbidden(a auth.Attributes, reason string) error {
	var msg string
	if a.Resource == "" {
		msg = fmt.Sprintf("User %q cannot %s path %q", a.User.Name, a.Verb, a.Path)
	} else {
		res := a.Resource
		if a.Subresource != "" {
			res += "/" + a.Subresource
		}
		scope := "at the cluster scope"
		if a.Namespace != "" {
			scope = fmt.Sprintf("in the namespace %q", a.Namespace)
		}
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q %s", a.User.Name, a.Verb, res, a.APIGroup, scope)
	}
	if reason != "" {
		msg += ": " + reason
	}
	if a.Resource == "" {
		return apierrors.NewForbidden(schema.GroupResource{}, "", errors.New(msg))
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}, a.Name, errors.New(msg))
}

// allowResource authorizes a resource request, answering 403 when refused.
func (s *Server) allowResource(q *request) bool {
	a := auth.Attributes{User: q.user, Verb: q.verb, APIGroup: q.res.Group, Resource: q.res.Resource,
		Subresource: q.sub, Namespace: q.ns, Name: q.name}
	if ok, reason := s.authorize(a); !ok {
		writeError(q.w, forbidden(a, reason))
		return false
	}
	return true
}

// allowNonResource authorizes discovery, /openapi and /metrics, answering 403
// when refused.
func (s *Server) allowNonResource(w http.ResponseWriter, user *auth.User, r *http.Request) bool {
	verb := strings.ToLower(r.Method)
	if r.Method == http.MethodHead {
		verb = "get"
	}
	a := auth.Attributes{User: user, Verb: verb, Path: r.URL.Path}
	if ok, reason := s.authorize(a); !ok {
		writeError(w, forbidden(a, reason))
		return false
	}
	return true
}

// admitRBAC refuses writes of roles and bindings that would grant more than the
// writer holds, unless the writer may escalate (roles) or bind (bindings), as
// Kubernetes' RBAC storage does. The server's own writes (no user) pass.
func (s *Server) admitRBAC(res *registry.Resource, obj runtime.Object, wo writeOptions) error {
	if wo.user == nil || res.Group != rbacv1.GroupName || obj == nil {
		return nil
	}
	u := rbacUser(wo.user)
	if rbac.EscalationAllowed(u) {
		return nil
	}
	authz := rbac.Authorizer{Source: s.rbac}
	may := func(verb, resource, ns, name string) bool {
		ok, _ := s.authorize(auth.Attributes{User: wo.user, Verb: verb, APIGroup: rbacv1.GroupName, Resource: resource, Namespace: ns, Name: name})
		return ok
	}
	name := accessor(obj).GetName()
	refuse := func(err error) error { return apierrors.NewForbidden(res.GroupResource(), name, err) }
	switch o := obj.(type) {
	case *rbacv1.Role:
		if may("escalate", "roles", o.Namespace, o.Name) {
			return nil
		}
		if err := authz.ConfirmNoEscalation(u, o.Namespace, o.Rules); err != nil {
			return refuse(err)
		}
	case *rbacv1.ClusterRole:
		if may("escalate", "clusterroles", "", o.Name) {
			return nil
		}
		if o.AggregationRule != nil {
			return refuse(errors.New("must have cluster-admin privileges to use the aggregationRule"))
		}
		if err := authz.ConfirmNoEscalation(u, "", o.Rules); err != nil {
			return refuse(err)
		}
	case *rbacv1.RoleBinding:
		return s.admitBinding(authz, u, o.RoleRef, o.Namespace, may, refuse)
	case *rbacv1.ClusterRoleBinding:
		return s.admitBinding(authz, u, o.RoleRef, "", may, refuse)
	}
	return nil
}

// admitBinding lets a user bind a role it may `bind`, or whose rules it holds.
func (s *Server) admitBinding(authz rbac.Authorizer, u rbac.User, ref rbacv1.RoleRef, ns string,
	may func(verb, resource, ns, name string) bool, refuse func(error) error) error {
	resource := "clusterroles"
	if ref.Kind == "Role" {
		resource = "roles"
	}
	if may("bind", resource, ns, ref.Name) {
		return nil
	}
	rules, err := authz.RoleRules(ref, ns)
	if err != nil {
		return apierrors.NewNotFound(schema.GroupResource{Group: rbacv1.GroupName, Resource: resource}, ref.Name)
	}
	if err := authz.ConfirmNoEscalation(u, ns, rules); err != nil {
		return refuse(err)
	}
	return nil
}

// bootstrapRBAC reconciles the default policy, starts the cache and waits for
// it, and starts the aggregation loop (until ctx ends).
func (s *Server) bootstrapRBAC(ctx context.Context) error {
	if err := s.reconcileDefaultPolicy(ctx); err != nil {
		return fmt.Errorf("default RBAC policy: %w", err)
	}
	s.rbac.start(ctx, s)
	select {
	case <-s.rbac.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Aggregate once before serving, so that admin, edit and view have their
	// rules from the first request on.
	s.aggregate(ctx)
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, rbacReadyWait, true, func(context.Context) (bool, error) {
		want, err := rbac.AggregateAll(s.rbac.allClusterRoles())
		if err != nil {
			return true, nil // logged by aggregate
		}
		for name, rules := range want {
			if cr, ok := s.rbac.ClusterRole(name); !ok || !equality.Semantic.DeepEqual(cr.Rules, rules) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		s.log.Warn("aggregated ClusterRoles not yet up to date", "err", err)
	}
	go s.runAggregation(ctx)
	return nil
}

// viewerRules grants reading every built-in resource (and its status, and
// pods/log, and GET through proxies) but Secrets: what svcnet's viewer could
// do before RBAC.
func (s *Server) viewerRules() []rbacv1.PolicyRule {
	byGroup := map[string][]string{}
	var groups []string
	for _, r := range s.reg.All() {
		if r.Group == "" && r.Resource == "secrets" {
			continue
		}
		if _, ok := byGroup[r.Group]; !ok {
			groups = append(groups, r.Group)
		}
		byGroup[r.Group] = append(byGroup[r.Group], r.Resource)
		if r.HasStatus {
			byGroup[r.Group] = append(byGroup[r.Group], r.Resource+"/status")
		}
		if r.Group == "" && r.Resource == "pods" {
			byGroup[r.Group] = append(byGroup[r.Group], "pods/log")
		}
	}
	// GET through the proxy subresources, as the viewer could before RBAC.
	rules := []rbacv1.PolicyRule{rbac.Rule([]string{"get"}, []string{""}, "pods/proxy", "services/proxy", "nodes/proxy")}
	for _, g := range groups {
		rules = append(rules, rbac.Rule([]string{"get", "list", "watch"}, []string{g}, byGroup[g]...))
	}
	return rules
}

// reconcileDefaultPolicy creates missing default ClusterRoles,
// ClusterRoleBindings, Roles and RoleBindings and updates default ones still
// annotated autoupdate=true whose rules (or aggregation, or subjects) differ
// from the defaults.
func (s *Server) reconcileDefaultPolicy(ctx context.Context) error {
	crRes, crbRes := s.res(rbacv1.GroupName, "clusterroles"), s.res(rbacv1.GroupName, "clusterrolebindings")
	for _, want := range rbac.DefaultClusterRoles(s.viewerRules()) {
		err := s.ensureDefault(ctx, crRes, "", want.Name, want, func(old runtime.Object) bool {
			have := old.(*rbacv1.ClusterRole)
			switch {
			case want.AggregationRule != nil && !equality.Semantic.DeepEqual(have.AggregationRule, want.AggregationRule):
				have.AggregationRule = want.AggregationRule
			case want.AggregationRule == nil && !equality.Semantic.DeepEqual(have.Rules, want.Rules):
				have.Rules, have.AggregationRule = want.Rules, nil
			default:
				return false
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("clusterrole %s: %w", want.Name, err)
		}
	}
	for _, want := range rbac.DefaultClusterRoleBindings() {
		err := s.ensureDefault(ctx, crbRes, "", want.Name, want, func(old runtime.Object) bool {
			have := old.(*rbacv1.ClusterRoleBinding)
			return have.RoleRef == want.RoleRef && setSubjects(&have.Subjects, want.Subjects)
		})
		if err != nil {
			return fmt.Errorf("clusterrolebinding %s: %w", want.Name, err)
		}
	}
	rRes, rbRes := s.res(rbacv1.GroupName, "roles"), s.res(rbacv1.GroupName, "rolebindings")
	for _, want := range rbac.DefaultRoles() {
		err := s.ensureDefault(ctx, rRes, want.Namespace, want.Name, want, func(old runtime.Object) bool {
			have := old.(*rbacv1.Role)
			if equality.Semantic.DeepEqual(have.Rules, want.Rules) {
				return false
			}
			have.Rules = want.Rules
			return true
		})
		if err != nil {
			return fmt.Errorf("role %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	for _, want := range rbac.DefaultRoleBindings() {
		err := s.ensureDefault(ctx, rbRes, want.Namespace, want.Name, want, func(old runtime.Object) bool {
			have := old.(*rbacv1.RoleBinding)
			return have.RoleRef == want.RoleRef && setSubjects(&have.Subjects, want.Subjects)
		})
		if err != nil {
			return fmt.Errorf("rolebinding %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	return nil
}

// setSubjects sets *have to want; false when they are already equal.
func setSubjects(have *[]rbacv1.Subject, want []rbacv1.Subject) bool {
	if equality.Semantic.DeepEqual(*have, want) {
		return false
	}
	*have = want
	return true
}

// ensureDefault creates the default object want (name in ns) when it is
// missing, and else lets fix bring the stored one in line when it is still
// annotated autoupdate=true (fix returns false when nothing is to change).
func (s *Server) ensureDefault(ctx context.Context, res *registry.Resource, ns, name string, want runtime.Object, fix func(runtime.Object) bool) error {
	_, _, err := s.modify(ctx, res, ns, name, func(old runtime.Object) (runtime.Object, error) {
		if accessor(old).GetAnnotations()[rbac.AutoUpdateAnnotation] != "true" || !fix(old) {
			return nil, errUnchanged
		}
		return old, nil
	}, writeOptions{})
	if apierrors.IsNotFound(err) {
		_, err = s.create(ctx, res, ns, want, writeOptions{})
		err = ignoreExists(err)
	}
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// errUnchanged ends an update that has nothing to write.
var errUnchanged = errors.New("unchanged")

// aggregate writes the rules of aggregated ClusterRoles that differ from what
// their selectors match; true when a write failed and should be retried.
func (s *Server) aggregate(ctx context.Context) bool {
	res := s.res(rbacv1.GroupName, "clusterroles")
	want, err := rbac.AggregateAll(s.rbac.allClusterRoles())
	if err != nil {
		s.log.Warn("clusterrole aggregation", "err", err)
	}
	retry := false
	for name, rules := range want {
		_, _, err := s.modify(ctx, res, "", name, func(old runtime.Object) (runtime.Object, error) {
			cr := old.(*rbacv1.ClusterRole)
			if cr.AggregationRule == nil || equality.Semantic.DeepEqual(cr.Rules, rules) {
				return nil, errUnchanged
			}
			cr.Rules = rules
			return cr, nil
		}, writeOptions{})
		if err != nil && !errors.Is(err, errUnchanged) && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			s.log.Warn("clusterrole aggregation: update failed", "clusterrole", name, "err", err)
			retry = true
		}
	}
	return retry
}

// runAggregation keeps the rules of aggregated ClusterRoles equal to those of
// the ClusterRoles their selectors match (Kubernetes' clusterrole-aggregation
// controller), after every ClusterRole change.
func (s *Server) runAggregation(ctx context.Context) {
	for {
		var again <-chan time.Time
		if s.aggregate(ctx) {
			again = time.After(aggregationRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.rbac.clusterRolesChanged:
		case <-again:
		}
	}
}
