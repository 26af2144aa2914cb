package printers

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func containersAndImages(cs []corev1.Container) (string, string) {
	names, images := make([]string, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		names[i], images[i] = c.Name, c.Image
	}
	return strings.Join(names, ","), strings.Join(images, ",")
}

func selectorString(s *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return "<error>"
	}
	if sel.Empty() {
		return none
	}
	return sel.String()
}

func init() {
	workloadCols := func(head ...column) []column {
		return append(head, column{"Age", "string", false}, column{"Containers", "string", true},
			column{"Images", "string", true}, column{"Selector", "string", true})
	}
	register("Deployment", workloadCols(column{"Name", "string", false}, column{"Ready", "string", false},
		column{"Up-to-date", "integer", false}, column{"Available", "integer", false}),
		func(o runtime.Object, now time.Time) []any {
			d := o.(*appsv1.Deployment)
			want := int32(0)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			c, i := containersAndImages(d.Spec.Template.Spec.Containers)
			return []any{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want), int64(d.Status.UpdatedReplicas),
				int64(d.Status.AvailableReplicas), age(d.CreationTimestamp, now), c, i, selectorString(d.Spec.Selector)}
		})
	register("ReplicaSet", workloadCols(column{"Name", "string", false}, column{"Desired", "integer", false},
		column{"Current", "integer", false}, column{"Ready", "integer", false}),
		func(o runtime.Object, now time.Time) []any {
			rs := o.(*appsv1.ReplicaSet)
			want := int32(0)
			if rs.Spec.Replicas != nil {
				want = *rs.Spec.Replicas
			}
			c, i := containersAndImages(rs.Spec.Template.Spec.Containers)
			return []any{rs.Name, int64(want), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas),
				age(rs.CreationTimestamp, now), c, i, selectorString(rs.Spec.Selector)}
		})
	register("EndpointSlice", []column{{"Name", "string", false}, {"AddressType", "string", false}, {"Ports", "string", false},
		{"Endpoints", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			es := o.(*discoveryv1.EndpointSlice)
			return []any{es.Name, string(es.AddressType), slicePorts(es.Ports), sliceEndpoints(es.Endpoints), age(es.CreationTimestamp, now)}
		})
	register("Lease", []column{{"Name", "string", false}, {"Holder", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			l := o.(*coordinationv1.Lease)
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return []any{l.Name, holder, age(l.CreationTimestamp, now)}
		})
	register("Ingress", []column{{"Name", "string", false}, {"Class", "string", false}, {"Hosts", "string", false},
		{"Address", "string", false}, {"Ports", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			ing := o.(*networkingv1.Ingress)
			class := none
			if ing.Spec.IngressClassName != nil {
				class = *ing.Spec.IngressClassName
			}
			var hosts []string
			for _, r := range ing.Spec.Rules {
				h := r.Host
				if h == "" {
					h = "*"
				}
				hosts = append(hosts, h)
			}
			if len(hosts) == 0 {
				hosts = []string{"*"}
			}
			var addrs []string
			for _, a := range ing.Status.LoadBalancer.Ingress {
				if a.IP != "" {
					addrs = append(addrs, a.IP)
				} else if a.Hostname != "" {
					addrs = append(addrs, a.Hostname)
				}
			}
			ports := "80"
			if len(ing.Spec.TLS) > 0 {
				ports = "80, 443"
			}
			return []any{ing.Name, class, strings.Join(hosts, ","), strings.Join(addrs, ","), ports, age(ing.CreationTimestamp, now)}
		})
	register("IngressClass", []column{{"Name", "string", false}, {"Controller", "string", false}, {"Parameters", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			ic := o.(*networkingv1.IngressClass)
			params := none
			if p := ic.Spec.Parameters; p != nil {
				g := ""
				if p.APIGroup != nil {
					g = "." + *p.APIGroup
				}
				params = p.Kind + g + "/" + p.Name
			}
			return []any{ic.Name, ic.Spec.Controller, params, age(ic.CreationTimestamp, now)}
		})
}

func slicePorts(ports []discoveryv1.EndpointPort) string {
	if len(ports) == 0 {
		return "<unset>"
	}
	var out []string
	for _, p := range ports {
		if p.Port == nil {
			out = append(out, "<unset>")
		} else {
			out = append(out, strconv.Itoa(int(*p.Port)))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func sliceEndpoints(eps []discoveryv1.Endpoint) string {
	const limit = 3
	var list []string
	count := 0
	for _, e := range eps {
		for _, a := range e.Addresses {
			count++
			if len(list) < limit {
				list = append(list, a)
			}
		}
	}
	if count == 0 {
		return "<unset>"
	}
	out := strings.Join(list, ",")
	if count > limit {
		out = fmt.Sprintf("%s + %d more...", out, count-limit)
	}
	return out
}
