package registry

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func rbacStrategy(t *testing.T, resource string) Strategy {
	t.Helper()
	for _, r := range rbacResources() {
		if r.Resource == resource {
			return r.Strategy
		}
	}
	t.Fatalf("no resource %s", resource)
	return nil
}

func TestRBACValidation(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "system:x", Namespace: "ns"}
	cmeta := metav1.ObjectMeta{Name: "system:x"}
	ref := func(kind, name string) rbacv1.RoleRef { return rbacv1.RoleRef{Kind: kind, Name: name} }
	tests := []struct {
		name     string
		resource string
		obj      runtime.Object
		want     string // "" = valid; else a substring of the errors
	}{
		{"role", "roles", &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}, ""},
		{"role without verbs", "roles", &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}},
			"rules[0].verbs: Required value: verbs must contain at least one value"},
		{"role without groups", "roles", &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, Resources: []string{"pods"}}}},
			"rules[0].apiGroups: Required value: resource rules must supply at least one api group"},
		{"role without resources", "roles", &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}}}},
			"rules[0].resources: Required value"},
		{"role with urls", "roles", &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/x"}}}},
			"namespaced rules cannot apply to non-resource URLs"},
		{"clusterrole with urls", "clusterroles", &rbacv1.ClusterRole{ObjectMeta: cmeta, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/x"}}}}, ""},
		{"clusterrole mixing urls and resources", "clusterroles", &rbacv1.ClusterRole{ObjectMeta: cmeta, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, Resources: []string{"pods"}, NonResourceURLs: []string{"/x"}}}},
			"rules cannot apply to both regular resources and non-resource URLs"},
		{"empty aggregation", "clusterroles", &rbacv1.ClusterRole{ObjectMeta: cmeta, AggregationRule: &rbacv1.AggregationRule{}},
			"aggregationRule.clusterRoleSelectors: Required value"},
		{"bad name", "clusterroles", &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "a/b"}}, "metadata.name"},
		{"rolebinding", "rolebindings", &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref("Role", "r"),
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "jane"}, {Kind: "ServiceAccount", Name: "default"}}}, ""},
		{"rolebinding to a kind", "rolebindings", &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref("Pod", "r")},
			`roleRef.kind: Unsupported value: "Pod": supported values: "Role", "ClusterRole"`},
		{"clusterrolebinding to a role", "clusterrolebindings", &rbacv1.ClusterRoleBinding{ObjectMeta: cmeta, RoleRef: ref("Role", "r")},
			`roleRef.kind: Unsupported value: "Role"`},
		{"roleRef group", "rolebindings", &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: rbacv1.RoleRef{APIGroup: "x", Kind: "Role", Name: "r"}},
			`roleRef.apiGroup: Unsupported value: "x"`},
		{"roleRef name", "rolebindings", &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref("Role", "")}, "roleRef.name: Required value"},
		{"cluster binding of a service account needs its namespace", "clusterrolebindings", &rbacv1.ClusterRoleBinding{ObjectMeta: cmeta, RoleRef: ref("ClusterRole", "r"),
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default"}}}, "subjects[0].namespace: Required value"},
		{"service account with a group", "rolebindings", &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref("Role", "r"),
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", APIGroup: "rbac.authorization.k8s.io"}}}, "subjects[0].apiGroup: Unsupported value"},
		{"subject kind", "rolebindings", &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref("Role", "r"),
			Subjects: []rbacv1.Subject{{Kind: "Robot", Name: "x"}}}, `subjects[0].kind: Unsupported value: "Robot"`},
		{"subject name", "rolebindings", &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref("Role", "r"),
			Subjects: []rbacv1.Subject{{Kind: "User"}}}, "subjects[0].name: Required value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := rbacStrategy(t, tt.resource)
			s.PrepareForCreate(tt.obj)
			errs := s.Validate(tt.obj)
			if tt.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if !strings.Contains(errs.ToAggregate().Error(), tt.want) {
				t.Fatalf("errors %v, want %q", errs, tt.want)
			}
		})
	}
}

func TestRoleRefImmutable(t *testing.T) {
	s := rbacStrategy(t, "rolebindings")
	old := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns", ResourceVersion: "1"}, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "a"}}
	s.PrepareForCreate(old)
	obj := old.DeepCopy()
	obj.RoleRef.Name = "b"
	if errs := s.ValidateUpdate(obj, old); !strings.Contains(errs.ToAggregate().Error(), "roleRef: Invalid value") ||
		!strings.Contains(errs.ToAggregate().Error(), "cannot change roleRef") {
		t.Fatalf("errors = %v", errs)
	}
	obj = old.DeepCopy()
	obj.Subjects = []rbacv1.Subject{{Kind: "Group", Name: "devs"}}
	s.PrepareForUpdate(obj, old)
	if errs := s.ValidateUpdate(obj, old); len(errs) > 0 {
		t.Fatalf("subjects may change: %v", errs)
	}
	if obj.Subjects[0].APIGroup != rbacv1.GroupName {
		t.Errorf("subject apiGroup not defaulted: %q", obj.Subjects[0].APIGroup)
	}
}
