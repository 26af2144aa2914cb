package printers

import (
	"fmt"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Roles print as Kubernetes' default table (NAME, CREATED AT); bindings with
// ROLE and AGE, and their subjects with -o wide.
func init() {
	registerCreatedAt("Role", "ClusterRole")
	binding := []column{{"Name", "string", false}, {"Role", "string", false}, {"Age", "string", false},
		{"Users", "string", true}, {"Groups", "string", true}, {"ServiceAccounts", "string", true}}
	register("RoleBinding", binding, func(o runtime.Object, now time.Time) []any {
		b := o.(*rbacv1.RoleBinding)
		return bindingCells(b.Name, b.RoleRef, b.Subjects, age(b.CreationTimestamp, now))
	})
	register("ClusterRoleBinding", binding, func(o runtime.Object, now time.Time) []any {
		b := o.(*rbacv1.ClusterRoleBinding)
		return bindingCells(b.Name, b.RoleRef, b.Subjects, age(b.CreationTimestamp, now))
	})
}

func bindingCells(name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, age string) []any {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		}
	}
	return []any{name, fmt.Sprintf("%s/%s", ref.Kind, ref.Name), age,
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", ")}
}
