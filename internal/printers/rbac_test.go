package printers

import (
	"fmt"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestRBACTables(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC))
	subjects := []rbacv1.Subject{{Kind: "User", Name: "jane"}, {Kind: "User", Name: "joe"}, {Kind: "Group", Name: "devs"},
		{Kind: "ServiceAccount", Namespace: "dev", Name: "builder"}}
	tests := []struct {
		kind, cols, cells string
		obj               runtime.Object
	}{
		{"Role", "Name Created At", "[cm 2026-11-29T18:00:00Z]",
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cm", CreationTimestamp: created}}},
		{"ClusterRole", "Name Created At", "[view 2026-11-29T18:00:00Z]",
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "view", CreationTimestamp: created}}},
		{"RoleBinding", "Name Role Age Users(wide) Groups(wide) ServiceAccounts(wide)", "[b ClusterRole/view 60m jane, joe devs dev/builder]",
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b", CreationTimestamp: created},
				RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}, Subjects: subjects}},
		{"ClusterRoleBinding", "Name Role Age Users(wide) Groups(wide) ServiceAccounts(wide)", "[c ClusterRole/cluster-admin 60m   ]",
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "c", CreationTimestamp: created},
				RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}}},
	}
	for _, tt := range tests {
		var cols string
		for i, c := range Columns(tt.kind) {
			if i > 0 {
				cols += " "
			}
			cols += c.Name
			if c.Priority == 1 {
				cols += "(wide)"
			}
		}
		if cols != tt.cols {
			t.Errorf("%s columns %q, want %q", tt.kind, cols, tt.cols)
		}
		row, err := Row(tt.kind, tt.obj, "None", created.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(row.Cells); got != tt.cells {
			t.Errorf("%s cells %q, want %q", tt.kind, got, tt.cells)
		}
	}
}
