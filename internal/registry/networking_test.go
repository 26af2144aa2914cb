package registry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func netRes(t *testing.T, resource string) *Resource {
	t.Helper()
	r := Default().Get(schema.GroupResource{Group: "networking.k8s.io", Resource: resource})
	if r == nil {
		t.Fatalf("%s not served", resource)
	}
	return r
}

// errString joins the errors as Kubernetes prints them ("field: message").
func errString(r *Resource, obj, old runtime.Object) string {
	if old == nil {
		r.Strategy.PrepareForCreate(obj)
		return r.Strategy.Validate(obj).ToAggregate().Error()
	}
	r.Strategy.PrepareForUpdate(obj, old)
	return r.Strategy.ValidateUpdate(obj, old).ToAggregate().Error()
}

func validErr(r *Resource, obj, old runtime.Object) string {
	defer func() { _ = recover() }() // ToAggregate of no errors is nil
	return errString(r, obj, old)
}

func netpol(spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "np", Namespace: "default"}, Spec: spec}
}

func ptr[T any](v T) *T { return &v }

func TestNetworkPolicyDefaults(t *testing.T) {
	r := netRes(t, "networkpolicies")
	np := netpol(networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(80))}}}}})
	r.Strategy.PrepareForCreate(np)
	if got := np.Spec.PolicyTypes; len(got) != 1 || got[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policyTypes %v, want [Ingress]", got)
	}
	if p := np.Spec.Ingress[0].Ports[0].Protocol; p == nil || *p != corev1.ProtocolTCP {
		t.Errorf("protocol %v, want TCP", p)
	}
	np = netpol(networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{}}})
	r.Strategy.PrepareForCreate(np)
	if got := np.Spec.PolicyTypes; len(got) != 2 || got[1] != networkingv1.PolicyTypeEgress {
		t.Errorf("policyTypes %v, want [Ingress Egress]", got)
	}
	np = netpol(networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}})
	r.Strategy.PrepareForCreate(np)
	if got := np.Spec.PolicyTypes; len(got) != 1 || got[0] != networkingv1.PolicyTypeEgress {
		t.Errorf("explicit policyTypes changed: %v", got)
	}
}

func TestNetworkPolicyValidation(t *testing.T) {
	r := netRes(t, "networkpolicies")
	port := func(p networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicySpec {
		return networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{p}}}}
	}
	from := func(p networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicySpec {
		return networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{p}}}}
	}
	to := func(p networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicySpec {
		return networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{p}}}}
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
	cases := []struct {
		name string
		spec networkingv1.NetworkPolicySpec
		want string // "" = valid
	}{
		{"empty selects all pods", networkingv1.NetworkPolicySpec{}, ""},
		{"bad pod selector", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"a": "b c"}}},
			`spec.podSelector.matchLabels: Invalid value: "b c"`},
		{"bad selector operator", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Has"}}}},
			`spec.podSelector.matchExpressions[0].operator: Invalid value: "Has"`},
		{"numeric port", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(80))}), ""},
		{"named port", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromString("http"))}), ""},
		{"port zero", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(0))}), "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"},
		{"bad port name", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromString("-http"))}), `spec.ingress[0].ports[0].port: Invalid value: "-http"`},
		{"bad protocol", port(networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.Protocol("ICMP"))}), `spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP"`},
		{"endPort range", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(80)), EndPort: ptr(int32(90))}), ""},
		{"endPort equal", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(80)), EndPort: ptr(int32(80))}), ""},
		{"endPort below port", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(80)), EndPort: ptr(int32(79))}),
			"spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`"},
		{"endPort with named port", port(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromString("http")), EndPort: ptr(int32(90))}),
			"spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"},
		{"endPort without port", port(networkingv1.NetworkPolicyPort{EndPort: ptr(int32(90))}),
			"spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"},
		{"no peer", from(networkingv1.NetworkPolicyPeer{}), "spec.ingress[0].from[0]: Required value: must specify a peer"},
		{"pod and namespace selectors", from(networkingv1.NetworkPolicyPeer{PodSelector: sel, NamespaceSelector: sel}), ""},
		{"ipBlock and selector", to(networkingv1.NetworkPolicyPeer{PodSelector: sel, IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}),
			"spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer"},
		{"ipBlock with except", to(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}), ""},
		{"ipBlock no cidr", to(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{}}), "spec.egress[0].to[0].ipBlock.cidr: Required value"},
		{"ipBlock bad cidr", from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/33"}}),
			`spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value`},
		{"ipBlock legacy host bits", from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.1/8"}}), ""},
		{"except outside", from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"11.0.0.0/16"}}}),
			`spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "11.0.0.0/16": must be a strict subset of ` + "`cidr`"},
		{"except equal", from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.0.0.0/8"}}}),
			"must be a strict subset of `cidr`"},
		{"except other family", from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"10.0.0.0/8"}}}),
			"must be a strict subset of `cidr`"},
		{"bad policy type", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Both"}},
			`spec.policyTypes[0]: Unsupported value: "Both": supported values: "Ingress", "Egress"`},
		{"three policy types", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress", "Ingress"}},
			"spec.policyTypes: Invalid value"},
	}
	for _, c := range cases {
		got := validErr(r, netpol(c.spec), nil)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestNetworkPolicyUpdateKeepsLegacyValues(t *testing.T) {
	r := netRes(t, "networkpolicies")
	// A CIDR stored before stricter rules stays valid on update; a new bad one does not.
	old := netpol(networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
		{IPBlock: &networkingv1.IPBlock{CIDR: "bogus"}}}}}})
	old.ResourceVersion = "1"
	upd := old.DeepCopy()
	upd.Labels = map[string]string{"x": "y"}
	if got := validErr(r, upd, old); got != "" {
		t.Errorf("update keeping the stored CIDR: %s", got)
	}
	upd.Spec.Ingress[0].From[0].IPBlock.CIDR = "bogus2"
	if got := validErr(r, upd, old); !strings.Contains(got, "ipBlock.cidr") {
		t.Errorf("update with a new bad CIDR: %q", got)
	}
}

func TestServiceCIDRValidation(t *testing.T) {
	r := netRes(t, "servicecidrs")
	sc := func(cidrs ...string) *networkingv1.ServiceCIDR {
		return &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "extra"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}
	}
	cases := []struct {
		name  string
		cidrs []string
		want  string
	}{
		{"v4", []string{"10.0.0.0/24"}, ""},
		{"dual", []string{"10.0.0.0/24", "fd00::/120"}, ""},
		{"none", nil, "spec.cidrs: Required value: at least one CIDR required"},
		{"three", []string{"10.0.0.0/24", "fd00::/120", "10.1.0.0/24"}, "may only hold up to 2 values"},
		{"bad", []string{"10.0.0.0/33"}, `spec.cidrs[0]: Invalid value: "10.0.0.0/33"`},
		{"host bits", []string{"10.0.0.1/24"}, `spec.cidrs[0]: Invalid value: "10.0.0.1/24": must not have bits set beyond the prefix length`},
		{"same family", []string{"10.0.0.0/24", "10.1.0.0/24"}, "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"},
	}
	for _, c := range cases {
		got := validErr(r, sc(c.cidrs...), nil)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	created := sc("10.0.0.0/24")
	r.Strategy.PrepareForCreate(created)
	if len(created.Finalizers) != 1 || created.Finalizers[0] != ServiceCIDRFinalizer {
		t.Errorf("finalizers after create: %v", created.Finalizers)
	}
	updates := []struct {
		name     string
		old, new []string
		want     string
	}{
		{"unchanged", []string{"10.0.0.0/24"}, []string{"10.0.0.0/24"}, ""},
		{"changed", []string{"10.0.0.0/24"}, []string{"10.0.1.0/24"}, `spec.cidrs[0]: Invalid value: "10.0.1.0/24": field is immutable`},
		{"to dual stack", []string{"10.0.0.0/24"}, []string{"10.0.0.0/24", "fd00::/120"}, ""},
		{"to dual stack same family", []string{"10.0.0.0/24"}, []string{"10.0.0.0/24", "10.0.1.0/24"}, "may specify no more than one IP for each IP family"},
		{"dual stack first changed", []string{"10.0.0.0/24"}, []string{"10.0.1.0/24", "fd00::/120"}, `spec.cidrs[0]: Invalid value: "10.0.1.0/24": field is immutable`},
		{"dual to single", []string{"10.0.0.0/24", "fd00::/120"}, []string{"10.0.0.0/24"}, "spec.cidrs: Invalid value"},
	}
	for _, c := range updates {
		old, upd := sc(c.old...), sc(c.new...)
		old.ResourceVersion, upd.ResourceVersion = "1", "1"
		got := validErr(r, upd, old)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("update %s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestIPAddressValidation(t *testing.T) {
	r := netRes(t, "ipaddresses")
	svcRef := &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "web"}
	ip := func(name string, ref *networkingv1.ParentReference) *networkingv1.IPAddress {
		return &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IPAddressSpec{ParentRef: ref}}
	}
	cases := []struct {
		name string
		obj  *networkingv1.IPAddress
		want string
	}{
		{"v4", ip("10.96.0.10", svcRef), ""},
		{"broadcast", ip("255.255.255.255", svcRef), ""},
		{"v6", ip("fe80::42:1dff:fe84:f9e2", svcRef), ""},
		{"v6 not canonical", ip("2001:db8:0::1", svcRef), `metadata.name: Invalid value: "2001:db8:0::1": must be in canonical form ("2001:db8::1")`},
		{"leading zero", ip("10.96.0.010", svcRef), `metadata.name: Invalid value: "10.96.0.010"`},
		{"not an IP", ip("web", svcRef), `metadata.name: Invalid value: "web": must be a valid IP address`},
		{"no parentRef", ip("10.96.0.10", nil), "spec.parentRef: Required value"},
		{"no resource", ip("10.96.0.10", &networkingv1.ParentReference{Name: "x"}), "spec.parentRef.resource: Required value"},
		{"no name", ip("10.96.0.10", &networkingv1.ParentReference{Resource: "services"}), "spec.parentRef.name: Required value"},
		{"bad group", ip("10.96.0.10", &networkingv1.ParentReference{Group: "Bad_Group", Resource: "x", Name: "y"}), `spec.parentRef.group: Invalid value: "Bad_Group"`},
		{"bad name", ip("10.96.0.10", &networkingv1.ParentReference{Resource: "x", Name: "a/b"}), `spec.parentRef.name: Invalid value: "a/b": may not contain '/'`},
	}
	for _, c := range cases {
		got := validErr(r, c.obj, nil)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	old, upd := ip("10.96.0.10", svcRef), ip("10.96.0.10", &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "other"})
	old.ResourceVersion, upd.ResourceVersion = "1", "1"
	if got := validErr(r, upd, old); !strings.Contains(got, "spec.parentRef: Invalid value") || !strings.Contains(got, "field is immutable") {
		t.Errorf("parentRef change: %q", got)
	}
}
