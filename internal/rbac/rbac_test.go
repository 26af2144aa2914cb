package rbac

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRuleAllows(t *testing.T) {
	res := func(verb, group, resource, sub, name string) Attributes {
		return Attributes{Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name, Namespace: "ns"}
	}
	url := func(verb, path string) Attributes { return Attributes{Verb: verb, Path: path} }
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		a    Attributes
		want bool
	}{
		{"exact", Rule(read, core, "pods"), res("get", "", "pods", "", "p"), true},
		{"wrong verb", Rule(read, core, "pods"), res("create", "", "pods", "", ""), false},
		{"verb star", Rule([]string{"*"}, core, "pods"), res("deletecollection", "", "pods", "", ""), true},
		{"wrong group", Rule(read, core, "deployments"), res("get", "apps", "deployments", "", ""), false},
		{"group star", Rule(read, g("*"), "deployments"), res("get", "apps", "deployments", "", ""), true},
		{"resource star", Rule(read, core, "*"), res("get", "", "secrets", "", ""), true},
		{"resource star covers subresources", Rule(read, core, "*"), res("get", "", "pods", "log", ""), true},
		{"plain resource is not its subresource", Rule(read, core, "pods"), res("get", "", "pods", "log", ""), false},
		{"resource/subresource", Rule(read, core, "pods/log"), res("get", "", "pods", "log", ""), true},
		{"resource/subresource is not the resource", Rule(read, core, "pods/log"), res("get", "", "pods", "", ""), false},
		{"*/subresource", Rule(read, core, "*/scale"), res("get", "", "replicationcontrollers", "scale", ""), true},
		{"*/subresource other", Rule(read, core, "*/scale"), res("get", "", "pods", "status", ""), false},
		{"resourceNames match", rbacv1.PolicyRule{Verbs: read, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}},
			res("get", "", "configmaps", "", "a"), true},
		{"resourceNames other", rbacv1.PolicyRule{Verbs: read, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}},
			res("get", "", "configmaps", "", "b"), false},
		{"resourceNames never match a list", rbacv1.PolicyRule{Verbs: read, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}},
			res("list", "", "configmaps", "", ""), false},
		{"url exact", URLRule([]string{"get"}, "/version"), url("get", "/version"), true},
		{"url prefix", URLRule([]string{"get"}, "/apis/*"), url("get", "/apis/apps/v1"), true},
		{"url prefix is not the bare path", URLRule([]string{"get"}, "/apis/*"), url("get", "/apis"), false},
		{"url star", URLRule([]string{"*"}, "*"), url("post", "/anything"), true},
		{"url other", URLRule([]string{"get"}, "/version"), url("get", "/metrics"), false},
		{"url rule never grants resources", URLRule([]string{"*"}, "*"), res("get", "", "pods", "", ""), false},
		{"resource rule never grants urls", Rule([]string{"*"}, g("*"), "*"), url("get", "/version"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RuleAllows(tt.a, &tt.rule); got != tt.want {
				t.Errorf("RuleAllows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAppliesTo(t *testing.T) {
	jane := User{Name: "jane", Groups: []string{"devs", GroupAuthenticated}}
	sa := User{Name: ServiceAccountUser("web", "builder"), Groups: append(ServiceAccountGroups("web"), GroupAuthenticated)}
	tests := []struct {
		name string
		u    User
		s    rbacv1.Subject
		ns   string
		want bool
	}{
		{"user", jane, rbacv1.Subject{Kind: "User", Name: "jane"}, "", true},
		{"other user", jane, rbacv1.Subject{Kind: "User", Name: "joe"}, "", false},
		{"group", jane, rbacv1.Subject{Kind: "Group", Name: "devs"}, "", true},
		{"other group", jane, rbacv1.Subject{Kind: "Group", Name: "ops"}, "", false},
		{"user is not a group", jane, rbacv1.Subject{Kind: "Group", Name: "jane"}, "", false},
		{"service account", sa, rbacv1.Subject{Kind: "ServiceAccount", Namespace: "web", Name: "builder"}, "", true},
		{"service account defaults to the binding namespace", sa, rbacv1.Subject{Kind: "ServiceAccount", Name: "builder"}, "web", true},
		{"service account of another namespace", sa, rbacv1.Subject{Kind: "ServiceAccount", Name: "builder"}, "db", false},
		{"service account without any namespace", sa, rbacv1.Subject{Kind: "ServiceAccount", Name: "builder"}, "", false},
		{"all service accounts", sa, rbacv1.Subject{Kind: "Group", Name: "system:serviceaccounts"}, "", true},
		{"service accounts of a namespace", sa, rbacv1.Subject{Kind: "Group", Name: "system:serviceaccounts:web"}, "", true},
		{"service accounts of another namespace", sa, rbacv1.Subject{Kind: "Group", Name: "system:serviceaccounts:db"}, "", false},
		{"unknown kind", jane, rbacv1.Subject{Kind: "Robot", Name: "jane"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppliesTo(tt.u, tt.s, tt.ns); got != tt.want {
				t.Errorf("AppliesTo = %v, want %v", got, tt.want)
			}
		})
	}
}

func clusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Rules: rules}
}

func refTo(kind, name string) rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
}

// fixture: jane views "dev" via a RoleBinding to ClusterRole view-pods; the devs
// group may create configmaps named "settings" in "dev" (a Role); admins are
// cluster-admin; a dangling binding names a role that does not exist.
func fixture() *Authorizer {
	return &Authorizer{Source: &Static{
		ClusterRoleList: []*rbacv1.ClusterRole{
			clusterRole("view-pods", nil, Rule(read, core, "pods", "pods/log")),
			clusterRole("cluster-admin", nil, Rule([]string{"*"}, g("*"), "*"), URLRule([]string{"*"}, "*")),
			clusterRole("discovery", nil, URLRule([]string{"get"}, "/api", "/api/*")),
		},
		RoleList: []*rbacv1.Role{{ObjectMeta: metav1.ObjectMeta{Namespace: "dev", Name: "settings"}, Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"create", "update"}, APIGroups: core, Resources: []string{"configmaps"}},
			{Verbs: []string{"get"}, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"settings"}},
		}}},
		RoleBindingList: []*rbacv1.RoleBinding{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "dev", Name: "jane-view"}, RoleRef: refTo("ClusterRole", "view-pods"),
				Subjects: []rbacv1.Subject{{Kind: "User", Name: "jane"}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "dev", Name: "devs-settings"}, RoleRef: refTo("Role", "settings"),
				Subjects: []rbacv1.Subject{{Kind: "Group", Name: "devs"}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "dev", Name: "builder"}, RoleRef: refTo("ClusterRole", "view-pods"),
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "builder"}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "dev", Name: "dangling"}, RoleRef: refTo("Role", "gone"),
				Subjects: []rbacv1.Subject{{Kind: "User", Name: "joe"}}},
		},
		ClusterRoleBindingList: []*rbacv1.ClusterRoleBinding{
			{ObjectMeta: metav1.ObjectMeta{Name: "admins"}, RoleRef: refTo("ClusterRole", "cluster-admin"),
				Subjects: []rbacv1.Subject{{Kind: "Group", Name: GroupMasters}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "discovery"}, RoleRef: refTo("ClusterRole", "discovery"),
				Subjects: []rbacv1.Subject{{Kind: "Group", Name: GroupAuthenticated}}},
		},
	}}
}

func TestAuthorize(t *testing.T) {
	jane := User{Name: "jane", Groups: []string{"devs", GroupAuthenticated}}
	admin := User{Name: "admin", Groups: []string{GroupMasters, GroupAuthenticated}}
	builder := User{Name: ServiceAccountUser("dev", "builder"), Groups: ServiceAccountGroups("dev")}
	joe := User{Name: "joe", Groups: []string{GroupAuthenticated}}
	a := fixture()
	tests := []struct {
		name   string
		a      Attributes
		want   bool
		reason string
	}{
		{"jane lists pods in dev", Attributes{User: jane, Verb: "list", Resource: "pods", Namespace: "dev"}, true,
			`RBAC: allowed by RoleBinding "jane-view/dev" of ClusterRole "view-pods" to User "jane"`},
		{"jane reads logs in dev", Attributes{User: jane, Verb: "get", Resource: "pods", Subresource: "log", Namespace: "dev", Name: "p"}, true, ""},
		{"jane cannot exec in dev", Attributes{User: jane, Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "dev", Name: "p"}, false, ""},
		{"jane cannot list pods elsewhere", Attributes{User: jane, Verb: "list", Resource: "pods", Namespace: "prod"}, false, ""},
		{"jane cannot list pods cluster-wide", Attributes{User: jane, Verb: "list", Resource: "pods"}, false, ""},
		{"jane creates configmaps through her group", Attributes{User: jane, Verb: "create", Resource: "configmaps", Namespace: "dev"}, true,
			`RBAC: allowed by RoleBinding "devs-settings/dev" of Role "settings" to Group "devs"`},
		{"jane reads the named configmap", Attributes{User: jane, Verb: "get", Resource: "configmaps", Namespace: "dev", Name: "settings"}, true, ""},
		{"jane cannot read other configmaps", Attributes{User: jane, Verb: "get", Resource: "configmaps", Namespace: "dev", Name: "other"}, false, ""},
		{"jane discovers", Attributes{User: jane, Verb: "get", Path: "/api/v1"}, true,
			`RBAC: allowed by ClusterRoleBinding "discovery" of ClusterRole "discovery" to Group "system:authenticated"`},
		{"jane cannot read metrics", Attributes{User: jane, Verb: "get", Path: "/metrics"}, false, ""},
		{"service account by binding", Attributes{User: builder, Verb: "watch", Resource: "pods", Namespace: "dev"}, true,
			`RBAC: allowed by RoleBinding "builder/dev" of ClusterRole "view-pods" to ServiceAccount "builder/dev"`},
		{"service account gets nothing else", Attributes{User: builder, Verb: "create", Resource: "pods", Namespace: "dev"}, false, ""},
		{"admin by group", Attributes{User: admin, Verb: "delete", APIGroup: "apps", Resource: "deployments", Namespace: "x", Name: "d"}, true,
			`RBAC: allowed by ClusterRoleBinding "admins" of ClusterRole "cluster-admin" to Group "system:masters"`},
		{"dangling reference is reported", Attributes{User: joe, Verb: "get", Resource: "pods", Namespace: "dev", Name: "p"}, false,
			`RBAC: role.rbac.authorization.k8s.io "gone" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := a.Authorize(tt.a)
			if got != tt.want {
				t.Fatalf("Authorize = %v (%q), want %v", got, reason, tt.want)
			}
			if tt.reason != "" && reason != tt.reason {
				t.Errorf("reason = %q, want %q", reason, tt.reason)
			}
			if !tt.want && tt.reason == "" && reason != "" {
				t.Errorf("reason = %q, want none", reason)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	pods := Rule(read, core, "pods")
	secrets := Rule(write, core, "secrets")
	roles := []*rbacv1.ClusterRole{
		clusterRole("z-view", map[string]string{AggregateToView: "true"}, pods),
		clusterRole("a-edit", map[string]string{AggregateToEdit: "true"}, secrets),
		clusterRole("dup", map[string]string{AggregateToView: "true"}, pods),
		clusterRole("unlabelled", nil, Rule([]string{"*"}, g("*"), "*")),
	}
	agg := func(name string, labels ...string) *rbacv1.ClusterRole {
		r := clusterRole(name, nil, Rule([]string{"stale"}, core, "x"))
		r.AggregationRule = &rbacv1.AggregationRule{}
		for _, l := range labels {
			r.AggregationRule.ClusterRoleSelectors = append(r.AggregationRule.ClusterRoleSelectors, metav1.LabelSelector{MatchLabels: map[string]string{l: "true"}})
		}
		return r
	}
	tests := []struct {
		name string
		role *rbacv1.ClusterRole
		want []rbacv1.PolicyRule
	}{
		{"not aggregated keeps its rules", clusterRole("plain", nil, secrets), []rbacv1.PolicyRule{secrets}},
		{"one selector, duplicates dropped", agg("view", AggregateToView), []rbacv1.PolicyRule{pods}},
		{"two selectors in selector then name order", agg("edit", AggregateToEdit, AggregateToView), []rbacv1.PolicyRule{secrets, pods}},
		{"nothing matches: no rules", agg("none", "example.com/nothing"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Aggregate(tt.role, append(roles, tt.role))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if Compact(got[i]) != Compact(tt.want[i]) {
					t.Errorf("rule %d = %s, want %s", i, Compact(got[i]), Compact(tt.want[i]))
				}
			}
		})
	}
}

func TestConfirmNoEscalation(t *testing.T) {
	jane := User{Name: "jane", Groups: []string{"devs", GroupAuthenticated}}
	admin := User{Name: "admin", Groups: []string{GroupMasters}}
	a := fixture()
	tests := []struct {
		name    string
		u       User
		ns      string
		rules   []rbacv1.PolicyRule
		missing string // "" = allowed
	}{
		{"subset in her namespace", jane, "dev", []rbacv1.PolicyRule{Rule([]string{"get"}, core, "pods")}, ""},
		{"subresource she holds", jane, "dev", []rbacv1.PolicyRule{Rule([]string{"list"}, core, "pods/log")}, ""},
		{"named configmap she holds", jane, "dev", []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"settings"}}}, ""},
		{"a verb she lacks", jane, "dev", []rbacv1.PolicyRule{Rule([]string{"get", "delete"}, core, "pods")},
			`{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}`},
		{"another namespace", jane, "prod", []rbacv1.PolicyRule{Rule([]string{"get"}, core, "pods")},
			`{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`},
		{"wildcards she lacks", jane, "dev", []rbacv1.PolicyRule{Rule([]string{"get"}, core, "*")},
			`{APIGroups:[""], Resources:["*"], Verbs:["get"]}`},
		{"admin holds everything", admin, "", []rbacv1.PolicyRule{Rule([]string{"*"}, g("*"), "*"), URLRule([]string{"get"}, "/x")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.ConfirmNoEscalation(tt.u, tt.ns, tt.rules)
			if tt.missing == "" {
				if err != nil {
					t.Fatalf("unexpected refusal: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("escalation allowed")
			}
			want := `user "jane" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:` + "\n" + tt.missing
			if err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
	if !EscalationAllowed(admin) || EscalationAllowed(jane) {
		t.Error("EscalationAllowed: only system:masters")
	}
}

func TestDefaultPolicy(t *testing.T) {
	roles := DefaultClusterRoles([]rbacv1.PolicyRule{Rule(read, core, "nodes")})
	src := &Static{ClusterRoleList: roles}
	aggregated, err := AggregateAll(roles)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if r.Labels[BootstrapLabel] != BootstrapLabelValue || r.Annotations[AutoUpdateAnnotation] != "true" {
			t.Errorf("%s: missing bootstrap label or autoupdate annotation", r.Name)
		}
		if rules, ok := aggregated[r.Name]; ok {
			r.Rules = rules
		}
	}
	for _, b := range DefaultClusterRoleBindings() {
		if _, ok := src.ClusterRole(b.RoleRef.Name); !ok {
			t.Errorf("binding %s names missing role %s", b.Name, b.RoleRef.Name)
		}
		src.ClusterRoleBindingList = append(src.ClusterRoleBindingList, b)
	}
	src.RoleList, src.RoleBindingList = DefaultRoles(), DefaultRoleBindings()
	for _, b := range src.RoleBindingList {
		if _, ok := src.Role(b.Namespace, b.RoleRef.Name); !ok || b.RoleRef.Kind != "Role" {
			t.Errorf("rolebinding %s/%s names missing role %s", b.Namespace, b.Name, b.RoleRef.Name)
		}
	}
	a := &Authorizer{Source: src}
	viewer := User{Name: "viewer", Groups: []string{GroupViewers, GroupAuthenticated}}
	jane := User{Name: "jane", Groups: []string{GroupAuthenticated}}
	admin := User{Name: "admin", Groups: []string{GroupMasters, GroupAuthenticated}}
	bootstrapper := User{Name: "system:bootstrap:abcdef", Groups: []string{"system:bootstrappers", "system:bootstrappers:svcnet:default-node-token", GroupAuthenticated}}
	node := User{Name: "system:node:n1", Groups: []string{"system:nodes", GroupAuthenticated}}
	tests := []struct {
		name string
		a    Attributes
		want bool
	}{
		{"viewer lists pods", Attributes{User: viewer, Verb: "list", Resource: "pods", Namespace: "x"}, true},
		{"viewer lists nodes", Attributes{User: viewer, Verb: "list", Resource: "nodes"}, true},
		{"viewer cannot read secrets", Attributes{User: viewer, Verb: "get", Resource: "secrets", Namespace: "x", Name: "s"}, false},
		{"viewer cannot create pods", Attributes{User: viewer, Verb: "create", Resource: "pods", Namespace: "x"}, false},
		{"authenticated discovers", Attributes{User: jane, Verb: "get", Path: "/apis/apps/v1"}, true},
		{"authenticated reads openapi", Attributes{User: jane, Verb: "get", Path: "/openapi/v3"}, true},
		{"authenticated asks about itself", Attributes{User: jane, Verb: "create", APIGroup: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}, true},
		{"authenticated reads nothing else", Attributes{User: jane, Verb: "list", Resource: "pods", Namespace: "default"}, false},
		{"authenticated cannot read metrics", Attributes{User: jane, Verb: "get", Path: "/metrics"}, false},
		{"nodes write ingress status", Attributes{User: User{Name: "system:node:n1", Groups: []string{"system:nodes", GroupAuthenticated}}, Verb: "update", APIGroup: "networking.k8s.io", Resource: "ingresses", Subresource: "status", Namespace: "x", Name: "i"}, true},
		{"bootstrapper creates CSRs", Attributes{User: bootstrapper, Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}, true},
		{"bootstrapper reads its CSR", Attributes{User: bootstrapper, Verb: "get", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Name: "node-csr-x"}, true},
		{"bootstrapper may be auto-approved", Attributes{User: bootstrapper, Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "nodeclient"}, true},
		{"bootstrapper cannot renew a node's", Attributes{User: bootstrapper, Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "selfnodeclient"}, false},
		{"bootstrapper cannot approve", Attributes{User: bootstrapper, Verb: "update", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval", Name: "x"}, false},
		{"bootstrapper reads nothing else", Attributes{User: bootstrapper, Verb: "list", Resource: "secrets", Namespace: "kube-system"}, false},
		{"node renews its certificate", Attributes{User: node, Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "selfnodeclient"}, true},
		{"node creates CSRs", Attributes{User: node, Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}, true},
		{"node holds announcement leases", Attributes{User: node, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "svcnet-l2-default-web"}, true},
		{"node deletes stale announcement leases", Attributes{User: node, Verb: "delete", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "svcnet-l2-default-gone"}, true},
		{"node reads pools", Attributes{User: node, Verb: "watch", APIGroup: "svcnet.io", Resource: "loadbalancerpools"}, true},
		{"node creates no lease in default", Attributes{User: node, Verb: "create", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "default"}, false},
		{"node updates no lease in another namespace", Attributes{User: node, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "team-a", Name: "leader"}, false},
		{"node writes no lease cluster-wide", Attributes{User: node, Verb: "create", APIGroup: "coordination.k8s.io", Resource: "leases"}, false},
		{"jane holds no leases", Attributes{User: jane, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "x"}, false},
		{"admin edits roles", Attributes{User: admin, Verb: "create", APIGroup: "rbac.authorization.k8s.io", Resource: "clusterroles"}, true},
	}
	for _, tt := range tests {
		if got, reason := a.Authorize(tt.a); got != tt.want {
			t.Errorf("%s: Authorize = %v (%s), want %v", tt.name, got, reason, tt.want)
		}
	}
	// admin ⊇ edit ⊇ view after aggregation.
	admRole, _ := src.ClusterRole("admin")
	for _, name := range []string{"edit", "view"} {
		r, _ := src.ClusterRole(name)
		if len(r.Rules) == 0 || !strings.Contains(fmtRules(admRole.Rules), fmtRules(r.Rules[:1])) {
			t.Errorf("admin does not hold the rules of %s", name)
		}
	}
}

func fmtRules(rs []rbacv1.PolicyRule) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(Compact(r) + "\n")
	}
	return b.String()
}
