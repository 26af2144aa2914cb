package printers

import (
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func init() {
	register("NetworkPolicy", []column{{"Name", "string", false}, {"Pod-Selector", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			np := o.(*networkingv1.NetworkPolicy)
			return []any{np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), age(np.CreationTimestamp, now)}
		})
	register("ServiceCIDR", []column{{"Name", "string", false}, {"CIDRs", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			sc := o.(*networkingv1.ServiceCIDR)
			return []any{sc.Name, strings.Join(sc.Spec.CIDRs, ","), age(sc.CreationTimestamp, now)}
		})
	// Kubernetes declares only these two columns for IPAddress (its printer adds an
	// age cell that kubectl never shows).
	register("IPAddress", []column{{"Name", "string", false}, {"ParentRef", "string", false}},
		func(o runtime.Object, _ time.Time) []any {
			ip := o.(*networkingv1.IPAddress)
			return []any{ip.Name, parentRef(ip.Spec.ParentRef)}
		})
}

// parentRef renders resource[.group][/namespace]/name, lower case as Kubernetes does.
func parentRef(ref *networkingv1.ParentReference) string {
	if ref == nil {
		return none
	}
	out := strings.ToLower(schema.GroupResource{Group: ref.Group, Resource: ref.Resource}.String())
	if ref.Namespace != "" {
		out += "/" + ref.Namespace
	}
	return out + "/" + ref.Name
}
