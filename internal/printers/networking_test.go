package printers

import (
	"reflect"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestNetworkingCells(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-90 * time.Second))
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, CreationTimestamp: created} }
	cases := []struct {
		kind string
		obj  runtime.Object
		want []any
	}{
		{"NetworkPolicy", &networkingv1.NetworkPolicy{ObjectMeta: meta("deny-all")}, []any{"deny-all", "<none>", "90s"}},
		{"NetworkPolicy", &networkingv1.NetworkPolicy{ObjectMeta: meta("web"), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}, []any{"web", "app=web", "90s"}},
		{"ServiceCIDR", &networkingv1.ServiceCIDR{ObjectMeta: meta("kubernetes"), Spec: networkingv1.ServiceCIDRSpec{
			CIDRs: []string{"10.96.0.0/12", "fd00::/108"}}}, []any{"kubernetes", "10.96.0.0/12,fd00::/108", "90s"}},
		{"IPAddress", &networkingv1.IPAddress{ObjectMeta: meta("10.96.0.1"), Spec: networkingv1.IPAddressSpec{
			ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "kubernetes"}}},
			[]any{"10.96.0.1", "services/default/kubernetes"}},
		{"IPAddress", &networkingv1.IPAddress{ObjectMeta: meta("fe80::1"), Spec: networkingv1.IPAddressSpec{
			ParentRef: &networkingv1.ParentReference{Group: "mygroup", Resource: "MyResources", Name: "bar"}}},
			[]any{"fe80::1", "myresources.mygroup/bar"}},
	}
	for _, c := range cases {
		if got := cells(t, c.kind, c.obj); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: cells %v, want %v", c.kind, got, c.want)
		}
		if n := len(Columns(c.kind)); n != len(c.want) {
			t.Errorf("%s: %d columns for %d cells", c.kind, n, len(c.want))
		}
	}
}
