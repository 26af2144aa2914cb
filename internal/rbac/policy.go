package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations of the default policy, as Kubernetes sets them.
const (
	BootstrapLabel       = "kubernetes.io/bootstrapping"
	BootstrapLabelValue  = "rbac-defaults"
	AutoUpdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
	AggregateToAdmin     = "rbac.authorization.k8s.io/aggregate-to-admin"
	AggregateToEdit      = "rbac.authorization.k8s.io/aggregate-to-edit"
	AggregateToView      = "rbac.authorization.k8s.io/aggregate-to-view"
	// GroupViewers is svcnet's read-only identity group (user "viewer").
	GroupViewers = "svcnet:viewers"
	// ViewerRole reads every served resource but Secrets, as svcnet's viewer did
	// before RBAC (view reads only namespaced, non-escalating resources).
	ViewerRole = "svcnet:viewer"
)

var (
	read      = []string{"get", "list", "watch"}
	write     = []string{"create", "update", "patch", "delete", "deletecollection"}
	readWrite = append(append([]string{}, read...), write...)
)

// Rule builds a resource rule.
func Rule(verbs []string, groups []string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

// URLRule builds a non-resource rule.
func URLRule(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: urls}
}

func g(groups ...string) []string { return groups }

var core = g("")

func viewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		Rule(read, core, "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"),
		Rule(read, core, "limitranges", "resourcequotas", "bindings", "events", "pods/status", "resourcequotas/status",
			"namespaces/status", "replicationcontrollers/status", "pods/log"),
		Rule(read, core, "namespaces"),
		Rule(read, g("discovery.k8s.io"), "endpointslices"),
		Rule(read, g("apps"), "controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
			"daemonsets", "daemonsets/status", "deployments", "deployments/status", "deployments/scale",
			"replicasets", "replicasets/status", "replicasets/scale"),
		Rule(read, g("autoscaling"), "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
		Rule(read, g("batch"), "jobs", "cronjobs", "cronjobs/status", "jobs/status"),
		Rule(read, g("extensions"), "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
			"ingresses", "ingresses/status", "replicasets", "replicasets/scale", "replicasets/status", "replicationcontrollers/scale",
			"networkpolicies"),
		Rule(read, g("policy"), "poddisruptionbudgets", "poddisruptionbudgets/status"),
		Rule(read, g("networking.k8s.io"), "networkpolicies", "ingresses", "ingresses/status"),
	}
}

func editRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		Rule(read, core, "pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"),
		Rule([]string{"impersonate"}, core, "serviceaccounts"),
		Rule(write, core, "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
		Rule([]string{"create"}, core, "pods/eviction"),
		Rule(write, core, "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
		Rule([]string{"create"}, core, "serviceaccounts/token"),
		Rule(write, g("apps"), "statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale",
			"deployments/rollback", "replicasets", "replicasets/scale"),
		Rule(write, g("autoscaling"), "horizontalpodautoscalers"),
		Rule(write, g("batch"), "jobs", "cronjobs"),
		Rule(write, g("extensions"), "daemonsets", "deployments", "deployments/scale", "deployments/rollback", "ingresses",
			"replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies"),
		Rule(write, g("policy"), "poddisruptionbudgets"),
		Rule(write, g("networking.k8s.io"), "networkpolicies", "ingresses"),
		Rule(readWrite, g("coordination.k8s.io"), "leases"),
	}
}

// IngressRole lets node agents write Ingress status (their ingress edge, internal/ingress).
const IngressRole = "svcnet:ingress"

// nodeRules are what a node agent needs; svcnet's Node authorizer narrows them
// to the node's own objects, as Kubernetes' does for the system:node role.
func nodeRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		Rule([]string{"create"}, g("authentication.k8s.io"), "tokenreviews"),
		Rule([]string{"create"}, g("authorization.k8s.io"), "subjectaccessreviews", "localsubjectaccessreviews"),
		Rule(read, core, "services"),
		Rule([]string{"create", "get", "list", "watch"}, core, "nodes"),
		Rule([]string{"update", "patch"}, core, "nodes/status"),
		Rule([]string{"update", "patch"}, core, "nodes"),
		Rule([]string{"create", "update", "patch"}, core, "events"),
		Rule(read, core, "pods"),
		Rule([]string{"create", "delete"}, core, "pods"),
		Rule([]string{"update", "patch"}, core, "pods/status"),
		Rule([]string{"create"}, core, "pods/eviction"),
		Rule(read, core, "secrets", "configmaps"),
		Rule([]string{"get"}, core, "persistentvolumeclaims", "persistentvolumes", "endpoints"),
		Rule([]string{"get", "create", "update", "patch", "delete"}, g("coordination.k8s.io"), "leases"),
		Rule([]string{"create"}, core, "serviceaccounts/token"),
	}
}

// DefaultClusterRoles returns the ClusterRoles an API server creates at start:
// Kubernetes' defaults that matter to svcnet, plus svcnet:viewer over the given
// readable rules. Aggregated roles (admin, edit, view) carry no rules here; the
// aggregation fills them.
func DefaultClusterRoles(viewer []rbacv1.PolicyRule) []*rbacv1.ClusterRole {
	agg := func(label string) *rbacv1.AggregationRule {
		return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "true"}}}}
	}
	roles := []*rbacv1.ClusterRole{
		{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"*"}, g("*"), "*"), URLRule([]string{"*"}, "*")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:discovery"}, Rules: []rbacv1.PolicyRule{
			URLRule([]string{"get"}, "/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*",
				"/api", "/api/*", "/apis", "/apis/*")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:monitoring"}, Rules: []rbacv1.PolicyRule{
			URLRule([]string{"get"}, "/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*"),
			Rule([]string{"get"}, core, "nodes/metrics")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:basic-user"}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"create"}, g("authorization.k8s.io"), "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
			Rule([]string{"create"}, g("authentication.k8s.io"), "selfsubjectreviews")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:public-info-viewer"}, Rules: []rbacv1.PolicyRule{
			URLRule([]string{"get"}, "/livez", "/readyz", "/healthz", "/version", "/version/")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "admin"}, AggregationRule: agg(AggregateToAdmin)},
		{ObjectMeta: metav1.ObjectMeta{Name: "edit", Labels: map[string]string{AggregateToAdmin: "true"}}, AggregationRule: agg(AggregateToEdit)},
		{ObjectMeta: metav1.ObjectMeta{Name: "view", Labels: map[string]string{AggregateToEdit: "true"}}, AggregationRule: agg(AggregateToView)},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-admin", Labels: map[string]string{AggregateToAdmin: "true"}}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"create"}, g("authorization.k8s.io"), "localsubjectaccessreviews"),
			Rule(readWrite, g("rbac.authorization.k8s.io"), "roles", "rolebindings")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-edit", Labels: map[string]string{AggregateToEdit: "true"}}, Rules: editRules()},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-view", Labels: map[string]string{AggregateToView: "true"}}, Rules: viewRules()},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:node"}, Rules: nodeRules()},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:node-proxier"}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"list", "watch"}, core, "services", "endpoints"),
			Rule([]string{"get", "list", "watch"}, core, "nodes"),
			Rule([]string{"create", "update", "patch"}, g("", "events.k8s.io"), "events"),
			Rule([]string{"list", "watch"}, g("discovery.k8s.io"), "endpointslices"),
			Rule([]string{"list", "watch"}, g("networking.k8s.io"), "servicecidrs")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:kube-dns"}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"list", "watch"}, core, "endpoints", "services"),
			// CoreDNS' kubernetes plugin also watches these (its own ClusterRole).
			Rule([]string{"list", "watch"}, core, "namespaces", "pods"),
			Rule([]string{"list", "watch"}, g("discovery.k8s.io"), "endpointslices")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:auth-delegator"}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"create"}, g("authentication.k8s.io"), "tokenreviews"),
			Rule([]string{"create"}, g("authorization.k8s.io"), "subjectaccessreviews")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:service-account-issuer-discovery"}, Rules: []rbacv1.PolicyRule{
			URLRule([]string{"get"}, "/.well-known/openid-configuration", "/.well-known/openid-configuration/",
				"/openid/v1/jwks", "/openid/v1/jwks/")}},
		{ObjectMeta: metav1.ObjectMeta{Name: ViewerRole}, Rules: viewer},
		// Every agent runs the ingress edge: it reads Ingresses and TLS Secrets (the Node authorizer lets nodes read) and writes status.loadBalancer.
		{ObjectMeta: metav1.ObjectMeta{Name: IngressRole}, Rules: []rbacv1.PolicyRule{Rule([]string{"update", "patch"}, g("networking.k8s.io"), "ingresses/status"),
			// and the Gateway API conditions of its GatewayClasses, Gateways and HTTPRoutes
			Rule([]string{"update", "patch"}, g("gateway.networking.k8s.io"), "gatewayclasses/status", "gateways/status", "httproutes/status")}},
	}
	roles = append(roles, joinRoles()...)
	for _, r := range roles {
		defaultMeta(&r.ObjectMeta)
	}
	return roles
}

// Roles of nodes joining with a bootstrap token (svcnet join) and of the
// load-balancer IP announcements of every node.
const (
	NodeBootstrapperRole  = "system:node-bootstrapper"
	NodeClientRole        = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	SelfNodeClientRole    = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	L2AnnouncerRole       = "svcnet:l2-announcer"
	GroupBootstrappers    = "system:bootstrappers"
	certificatesAPIGroup  = "certificates.k8s.io"
	csrResource           = "certificatesigningrequests"
	coordinationAPIGroup  = "coordination.k8s.io"
	loadBalancerPoolGroup = "svcnet.io"
)

// joinRoles are kubeadm's roles for TLS bootstrapping: bootstrappers create and
// read CSRs, and the CSR approver checks nodeclient (a new node's first
// certificate) and selfnodeclient (a node renewing its own) by
// SubjectAccessReview; nodes read the load-balancer IP pools (their Leases
// are DefaultRoles').
func joinRoles() []*rbacv1.ClusterRole {
	return []*rbacv1.ClusterRole{
		{ObjectMeta: metav1.ObjectMeta{Name: NodeBootstrapperRole}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"create", "get", "list", "watch"}, g(certificatesAPIGroup), csrResource)}},
		{ObjectMeta: metav1.ObjectMeta{Name: NodeClientRole}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"create"}, g(certificatesAPIGroup), csrResource+"/nodeclient")}},
		{ObjectMeta: metav1.ObjectMeta{Name: SelfNodeClientRole}, Rules: []rbacv1.PolicyRule{
			Rule([]string{"create"}, g(certificatesAPIGroup), csrResource+"/selfnodeclient")}},
		{ObjectMeta: metav1.ObjectMeta{Name: L2AnnouncerRole}, Rules: []rbacv1.PolicyRule{
			Rule(read, g(loadBalancerPoolGroup), "loadbalancerpools")}},
	}
}

// AnnouncerNamespace holds the Leases electing the announcer of each
// load-balancer IP (internal/announce); nodes may write Leases there and, by
// the Node authorizer, their own in kube-node-lease, nowhere else.
const AnnouncerNamespace = "kube-system"

// DefaultRoles returns the namespaced Roles an API server creates at start:
// the announcer's Leases, in AnnouncerNamespace only.
func DefaultRoles() []*rbacv1.Role {
	r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: L2AnnouncerRole, Namespace: AnnouncerNamespace}, Rules: []rbacv1.PolicyRule{
		Rule([]string{"get", "list", "watch", "create", "update", "delete"}, g(coordinationAPIGroup), "leases")}}
	defaultMeta(&r.ObjectMeta)
	return []*rbacv1.Role{r}
}

// DefaultRoleBindings grant DefaultRoles: every node holds announcement Leases.
func DefaultRoleBindings() []*rbacv1.RoleBinding {
	b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: L2AnnouncerRole, Namespace: AnnouncerNamespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: L2AnnouncerRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}}}
	defaultMeta(&b.ObjectMeta)
	return []*rbacv1.RoleBinding{b}
}

// joinBindings grant joinRoles: bootstrappers may ask for a node certificate
// and have it approved; nodes may renew theirs and announce IPs.
func joinBindings(bind func(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding, group func(string) rbacv1.Subject) []*rbacv1.ClusterRoleBinding {
	return []*rbacv1.ClusterRoleBinding{
		bind("kubeadm:kubelet-bootstrap", NodeBootstrapperRole, group(GroupBootstrappers)),
		bind("kubeadm:node-autoapprove-bootstrap", NodeClientRole, group(GroupBootstrappers)),
		bind("kubeadm:node-autoapprove-certificate-rotation", SelfNodeClientRole, group("system:nodes")),
		bind("svcnet:node-csr", NodeBootstrapperRole, group("system:nodes")),
		bind(L2AnnouncerRole, L2AnnouncerRole, group("system:nodes")),
	}
}

// DefaultClusterRoleBindings returns the ClusterRoleBindings an API server
// creates at start.
func DefaultClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	bind := func(role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: subjects}
		defaultMeta(&b.ObjectMeta)
		return b
	}
	group := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
	}
	user := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
	}
	viewers := bind("view", group(GroupViewers))
	viewers.Name = "svcnet:viewers"
	return append([]*rbacv1.ClusterRoleBinding{
		bind("cluster-admin", group(GroupMasters)),
		bind("system:monitoring", group("system:monitoring")),
		bind("system:discovery", group(GroupAuthenticated)),
		bind("system:basic-user", group(GroupAuthenticated)),
		bind("system:public-info-viewer", group(GroupAuthenticated), group(GroupUnauthenticated)),
		bind("system:node-proxier", user("system:kube-proxy")),
		bind("system:kube-dns", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "kube-system", Name: "kube-dns"}),
		bind("system:service-account-issuer-discovery", group(GroupServiceAccounts)),
		viewers,
		bind(ViewerRole, group(GroupViewers)),
		bind(IngressRole, group("system:nodes")),
	}, joinBindings(func(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		b := bind(role, subjects...)
		b.Name = name
		return b
	}, group)...)
}

func defaultMeta(m *metav1.ObjectMeta) {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[BootstrapLabel] = BootstrapLabelValue
	m.Annotations = map[string]string{AutoUpdateAnnotation: "true"}
}
