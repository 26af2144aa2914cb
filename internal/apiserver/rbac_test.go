package apiserver

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/svcnet/svcnet/internal/rbac"
)

const rbacAPI = "/apis/rbac.authorization.k8s.io/v1"

// waitRBAC polls until cond holds on the server's RBAC cache (it is fed by a watch).
func (h *harness) waitRBAC(what string, cond func(c *rbacCache) bool) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(h.srv.rbac), nil })
	if err != nil {
		h.t.Fatalf("RBAC cache never saw %s", what)
	}
}

// bind creates a RoleBinding in ns and waits until the cache has it.
func (h *harness) bind(ns, name, roleKind, role, subjects string) {
	h.t.Helper()
	h.must(201, h.do("POST", rbacAPI+"/namespaces/"+ns+"/rolebindings", `{"metadata":{"name":"`+name+`"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"`+
		roleKind+`","name":"`+role+`"},"subjects":`+subjects+`}`))
	h.waitRBAC("rolebinding "+ns+"/"+name, func(c *rbacCache) bool {
		for _, b := range c.RoleBindings(ns) {
			if b.Name == name {
				return true
			}
		}
		return false
	})
}

// bindView gives service account ns/sa the view ClusterRole in ns.
func (h *harness) bindView(ns, sa string) {
	h.bind(ns, sa+"-view", "ClusterRole", "view", `[{"kind":"ServiceAccount","name":"`+sa+`"}]`)
}

func as(user string, groups ...string) []string {
	out := []string{"Impersonate-User", user}
	for _, g := range groups {
		out = append(out, "Impersonate-Group", g)
	}
	return out
}

func TestRBACDefaultPolicy(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user", "system:public-info-viewer", "system:node", "svcnet:viewer"} {
		r := h.must(200, h.do("GET", rbacAPI+"/clusterroles/"+name, ""))
		if r.str("metadata", "labels", "kubernetes.io/bootstrapping") != "rbac-defaults" ||
			r.str("metadata", "annotations", "rbac.authorization.kubernetes.io/autoupdate") != "true" {
			t.Errorf("%s: %s", name, r.body)
		}
	}
	for _, name := range []string{"cluster-admin", "system:discovery", "system:basic-user", "system:public-info-viewer", "svcnet:viewers"} {
		h.must(200, h.do("GET", rbacAPI+"/clusterrolebindings/"+name, ""))
	}
	// Aggregation fills admin, edit and view.
	h.waitRBAC("aggregated admin", func(c *rbacCache) bool {
		r, ok := c.ClusterRole("admin")
		return ok && strings.Contains(fmtRules(r.Rules), `"rolebindings"`) && strings.Contains(fmtRules(r.Rules), `"pods/log"`)
	})
	// A new labelled ClusterRole is aggregated into view.
	h.must(201, h.do("POST", rbacAPI+"/clusterroles", `{"metadata":{"name":"widgets-view","labels":{"rbac.authorization.k8s.io/aggregate-to-view":"true"}},
		"rules":[{"apiGroups":["example.com"],"resources":["widgets"],"verbs":["get"]}]}`))
	h.waitRBAC("widgets in view", func(c *rbacCache) bool {
		r, ok := c.ClusterRole("view")
		return ok && strings.Contains(fmtRules(r.Rules), `"widgets"`)
	})
	// A default role edited away from its defaults is restored at the next start.
	h.must(200, h.do("PATCH", rbacAPI+"/clusterroles/system:basic-user", `{"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}]}`,
		"Content-Type", "application/merge-patch+json"))
	if err := h.srv.reconcileDefaultPolicy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := h.must(200, h.do("GET", rbacAPI+"/clusterroles/system:basic-user", "")); !strings.Contains(r.body, "selfsubjectaccessreviews") {
		t.Errorf("not reconciled: %s", r.body)
	}
}

func TestRBACAuthorization(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces", `{"metadata":{"name":"dev"}}`))
	jane := as("jane", "devs")
	// Authenticated users discover, nothing more.
	h.must(200, h.do("GET", "/apis", "", jane...))
	f := h.must(403, h.do("GET", "/api/v1/namespaces/default/pods", "", jane...))
	if want := `pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default"`; f.str("message") != want {
		t.Errorf("message %q, want %q", f.str("message"), want)
	}
	f = h.must(403, h.do("GET", "/metrics", "", jane...))
	if want := `forbidden: User "jane" cannot get path "/metrics"`; f.str("message") != want {
		t.Errorf("message %q, want %q", f.str("message"), want)
	}
	h.bind("dev", "jane-view", "ClusterRole", "view", `[{"kind":"User","name":"jane"}]`)
	h.must(200, h.do("GET", "/api/v1/namespaces/dev/pods", "", jane...))
	h.must(403, h.do("GET", "/api/v1/namespaces/default/pods", "", jane...))
	h.must(403, h.do("POST", "/api/v1/namespaces/dev/configmaps", `{"metadata":{"name":"c"}}`, jane...))
	h.must(403, h.do("GET", "/api/v1/namespaces/dev/secrets", "", jane...))

	// A Role and a RoleBinding to her group grant create.
	h.must(201, h.do("POST", rbacAPI+"/namespaces/dev/roles", `{"metadata":{"name":"cm"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["create","get"]}]}`))
	h.bind("dev", "devs-cm", "Role", "cm", `[{"kind":"Group","name":"devs"}]`)
	h.must(201, h.do("POST", "/api/v1/namespaces/dev/configmaps", `{"metadata":{"name":"c"}}`, jane...))

	// Escalation: she may not grant what she does not hold, nor bind roles beyond her.
	h.bind("dev", "jane-rbac", "ClusterRole", "admin", `[{"kind":"User","name":"jane"}]`) // admin: may write roles and bindings
	f = h.must(403, h.do("POST", rbacAPI+"/namespaces/dev/roles", `{"metadata":{"name":"more"},"rules":[{"apiGroups":[""],"resources":["nodes"],"verbs":["get"]}]}`, jane...))
	if want := `roles.rbac.authorization.k8s.io "more" is forbidden: user "jane" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:` +
		"\n" + `{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}`; f.str("message") != want {
		t.Errorf("escalation message %q, want %q", f.str("message"), want)
	}
	h.must(201, h.do("POST", rbacAPI+"/namespaces/dev/roles", `{"metadata":{"name":"less"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get"]}]}`, jane...))
	h.must(403, h.do("POST", rbacAPI+"/namespaces/dev/rolebindings", `{"metadata":{"name":"x"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"joe"}]}`, jane...))
	h.must(201, h.do("POST", rbacAPI+"/namespaces/dev/rolebindings", `{"metadata":{"name":"x"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},"subjects":[{"kind":"User","name":"joe"}]}`, jane...))
	// roleRef is immutable.
	h.must(422, h.do("PATCH", rbacAPI+"/namespaces/dev/rolebindings/x", `{"roleRef":{"name":"edit"}}`, "Content-Type", "application/merge-patch+json"))

	// The viewer reads everything but secrets.
	viewer := []string{"Authorization", "Bearer " + viewerToken}
	h.must(200, h.do("GET", "/api/v1/nodes", "", viewer...))
	h.must(200, h.do("GET", "/api/v1/namespaces/dev/configmaps", "", viewer...))
	h.must(200, h.do("GET", rbacAPI+"/clusterroles", "", viewer...))
	h.must(403, h.do("GET", "/api/v1/namespaces/dev/secrets", "", viewer...))
	h.must(403, h.do("POST", "/api/v1/namespaces/dev/configmaps", `{"metadata":{"name":"v"}}`, viewer...))
	// Nodes keep the Node authorizer.
	node := []string{"Authorization", "Bearer " + nodeToken}
	h.must(200, h.do("GET", "/api/v1/namespaces/dev/secrets", "", node...))
	h.must(403, h.do("POST", "/api/v1/namespaces/dev/configmaps", `{"metadata":{"name":"n"}}`, node...))
}

func TestImpersonation(t *testing.T) {
	h := newHarness(t)
	// The viewer may not impersonate.
	f := h.must(403, h.do("GET", "/api/v1/namespaces/default/pods", "", "Authorization", "Bearer "+viewerToken, "Impersonate-User", "jane"))
	if want := `users "jane" is forbidden: User "viewer" cannot impersonate resource "users" in API group "" at the cluster scope`; f.str("message") != want {
		t.Errorf("message %q, want %q", f.str("message"), want)
	}
	h.must(400, h.do("GET", "/api/v1/namespaces/default/pods", "", "Impersonate-Group", "devs"))
	// Who am I when impersonating: groups given plus system:authenticated;
	// service accounts get their groups.
	w := h.must(201, h.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{}`, as("jane", "devs")...))
	if w.str("status", "userInfo", "username") != "jane" || w.str("status", "userInfo", "groups") != `["devs","system:authenticated"]` {
		t.Errorf("whoami: %s", w.body)
	}
	w = h.must(201, h.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{}`, as("system:serviceaccount:default:default")...))
	if w.str("status", "userInfo", "groups") != `["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"]` {
		t.Errorf("whoami: %s", w.body)
	}
	// A user allowed to impersonate one group only.
	h.must(201, h.do("POST", rbacAPI+"/clusterroles", `{"metadata":{"name":"as-devs"},"rules":[{"apiGroups":[""],"resources":["users"],"verbs":["impersonate"]},{"apiGroups":[""],"resources":["groups"],"verbs":["impersonate"],"resourceNames":["devs"]}]}`))
	h.must(201, h.do("POST", rbacAPI+"/clusterrolebindings", `{"metadata":{"name":"as-devs"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"as-devs"},"subjects":[{"kind":"User","name":"viewer"}]}`))
	h.waitRBAC("as-devs", func(c *rbacCache) bool {
		_, ok := c.ClusterRole("as-devs")
		return ok && len(c.ClusterRoleBindings()) > 0
	})
	viewer := []string{"Authorization", "Bearer " + viewerToken}
	h.waitRBAC("binding as-devs", func(*rbacCache) bool {
		return h.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{}`, append(viewer, as("jane", "devs")...)...).code == 201
	})
	h.must(403, h.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{}`, append(viewer, as("jane", "ops")...)...))
}

func TestAccessReviews(t *testing.T) {
	h := newHarness(t)
	h.bindView("default", "robot")
	sar := func(path, spec string, headers ...string) resp {
		return h.must(201, h.do("POST", "/apis/authorization.k8s.io/v1/"+path, `{"spec":`+spec+`}`, headers...))
	}
	robot := `"user":"system:serviceaccount:default:robot","groups":["system:serviceaccounts","system:serviceaccounts:default"]`
	r := sar("subjectaccessreviews", `{`+robot+`,"resourceAttributes":{"verb":"list","resource":"pods","namespace":"default"}}`)
	if r.str("status", "allowed") != "true" || r.str("status", "reason") != `RBAC: allowed by RoleBinding "robot-view/default" of ClusterRole "view" to ServiceAccount "robot/default"` {
		t.Errorf("SAR: %s", r.body)
	}
	r = sar("subjectaccessreviews", `{`+robot+`,"resourceAttributes":{"verb":"create","resource":"pods","namespace":"default"}}`)
	if r.str("status", "allowed") == "true" {
		t.Errorf("SAR create: %s", r.body)
	}
	r = sar("subjectaccessreviews", `{"user":"jane","groups":["system:authenticated"],"nonResourceAttributes":{"verb":"get","path":"/version"}}`)
	if r.str("status", "allowed") != "true" {
		t.Errorf("SAR non-resource: %s", r.body)
	}
	h.must(422, h.do("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", `{"spec":{"resourceAttributes":{"verb":"get","resource":"pods"}}}`))
	r = sar("namespaces/default/localsubjectaccessreviews", `{`+robot+`,"resourceAttributes":{"verb":"get","resource":"pods","namespace":"default"}}`)
	if r.str("status", "allowed") != "true" || r.str("metadata", "namespace") != "default" {
		t.Errorf("LSAR: %s", r.body)
	}
	h.must(422, h.do("POST", "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews", `{"spec":{`+robot+`,"resourceAttributes":{"verb":"get","resource":"pods","namespace":"other"}}}`))
	// The viewer may not ask about others.
	h.must(403, h.do("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", `{"spec":{`+robot+`,"resourceAttributes":{"verb":"get","resource":"pods"}}}`, "Authorization", "Bearer "+viewerToken))
	// can-i --list
	r = sar("selfsubjectrulesreviews", `{"namespace":"default"}`, as("system:serviceaccount:default:robot")...)
	if !strings.Contains(r.body, `"resources":["pods"`) || !strings.Contains(r.body, `"nonResourceURLs":["/livez"`) || !strings.Contains(r.body, `"selfsubjectaccessreviews"`) {
		t.Errorf("SSRR: %s", r.body)
	}
	d := h.must(200, h.do("GET", "/apis/authorization.k8s.io/v1", ""))
	for _, want := range []string{"subjectaccessreviews", "localsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectaccessreviews"} {
		if !strings.Contains(d.body, `"name":"`+want+`"`) {
			t.Errorf("discovery lacks %s", want)
		}
	}
}

func fmtRules(rs []rbacv1.PolicyRule) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(rbac.Compact(r) + "\n")
	}
	return b.String()
}
