package registry

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// Names and labels of the ServiceCIDR and IPAddress APIs, as Kubernetes spells them.
const (
	// DefaultServiceCIDRName names the ServiceCIDR made from --service-cluster-ip-range.
	DefaultServiceCIDRName = "kubernetes"
	// ServiceCIDRFinalizer holds a ServiceCIDR while IPs allocated from it would be orphaned.
	ServiceCIDRFinalizer = "networking.k8s.io/service-cidr-finalizer"
	// IPAllocatorName is the managed-by label value of IPAddresses the cluster IP allocator owns.
	IPAllocatorName = "ipallocator.k8s.io"
)

// networkingResources lists NetworkPolicy, ServiceCIDR and IPAddress (networking.k8s.io/v1).
func networkingResources() []*Resource {
	return []*Resource{
		{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies", Singular: "networkpolicy", Kind: "NetworkPolicy",
			Namespaced: true, ShortNames: []string{"netpol"}, HasSpec: true,
			New:      func() runtime.Object { return &networkingv1.NetworkPolicy{} },
			NewList:  func() runtime.Object { return &networkingv1.NetworkPolicyList{} },
			Strategy: networkPolicyStrategy{Generic{Namespaced: true, Name: apivalidation.NameIsDNSSubdomain, Default: defaultNetworkPolicy, Check: validateNetworkPolicy}}},
		{Group: "networking.k8s.io", Version: "v1", Resource: "servicecidrs", Singular: "servicecidr", Kind: "ServiceCIDR",
			HasStatus: true, HasSpec: true,
			New:      func() runtime.Object { return &networkingv1.ServiceCIDR{} },
			NewList:  func() runtime.Object { return &networkingv1.ServiceCIDRList{} },
			Strategy: serviceCIDRStrategy{}},
		{Group: "networking.k8s.io", Version: "v1", Resource: "ipaddresses", Singular: "ipaddress", Kind: "IPAddress",
			ShortNames: []string{"ip"},
			New:        func() runtime.Object { return &networkingv1.IPAddress{} },
			NewList:    func() runtime.Object { return &networkingv1.IPAddressList{} },
			Strategy:   Generic{Name: ValidateIPAddressName, Check: validateIPAddress, CheckUpdate: validateIPAddressUpdate}},
	}
}

func defaultNetworkPolicy(obj runtime.Object) {
	np := obj.(*networkingv1.NetworkPolicy)
	ports := func(ps []networkingv1.NetworkPolicyPort) {
		for i := range ps {
			if ps[i].Protocol == nil {
				p := corev1.ProtocolTCP
				ps[i].Protocol = &p
			}
		}
	}
	for i := range np.Spec.Ingress {
		ports(np.Spec.Ingress[i].Ports)
	}
	for i := range np.Spec.Egress {
		ports(np.Spec.Egress[i].Ports)
	}
	if len(np.Spec.PolicyTypes) == 0 {
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
}

// netpolOptions relax validation for values an update keeps from the stored object,
// as Kubernetes does so that objects stored under older rules stay editable.
type netpolOptions struct {
	selectors metav1validation.LabelSelectorValidationOptions
	oldCIDRs  []string
}

func validateNetworkPolicy(obj runtime.Object) field.ErrorList {
	return validateNetworkPolicySpec(&obj.(*networkingv1.NetworkPolicy).Spec, netpolOptions{})
}

// networkPolicyStrategy is Generic with Kubernetes' relaxed update rules: values an
// update keeps from the stored object (selectors with old-style label values, CIDRs)
// stay valid, so objects stored under older rules remain editable.
type networkPolicyStrategy struct{ Generic }

// ValidateUpdate implements Strategy.
func (networkPolicyStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	np, oldNP := obj.(*networkingv1.NetworkPolicy), old.(*networkingv1.NetworkPolicy)
	var opts netpolOptions
	if len(metav1validation.ValidateLabelSelector(&oldNP.Spec.PodSelector, opts.selectors, field.NewPath("spec"))) > 0 {
		opts.selectors.AllowInvalidLabelValueInSelector = true
	}
	forPeers(&oldNP.Spec, func(p networkingv1.NetworkPolicyPeer) {
		if p.IPBlock != nil {
			opts.oldCIDRs = append(append(opts.oldCIDRs, p.IPBlock.CIDR), p.IPBlock.Except...)
		}
	})
	errs := apivalidation.ValidateObjectMetaUpdate(&np.ObjectMeta, &oldNP.ObjectMeta, field.NewPath("metadata"))
	return append(errs, validateNetworkPolicySpec(&np.Spec, opts)...)
}

func forPeers(spec *networkingv1.NetworkPolicySpec, fn func(networkingv1.NetworkPolicyPeer)) {
	for _, r := range spec.Ingress {
		for _, p := range r.From {
			fn(p)
		}
	}
	for _, r := range spec.Egress {
		for _, p := range r.To {
			fn(p)
		}
	}
}

func validateNetworkPolicySpec(spec *networkingv1.NetworkPolicySpec, opts netpolOptions) field.ErrorList {
	sp := field.NewPath("spec")
	errs := metav1validation.ValidateLabelSelector(&spec.PodSelector, opts.selectors, sp.Child("podSelector"))
	for i, r := range spec.Ingress {
		rp := sp.Child("ingress").Index(i)
		for j := range r.Ports {
			errs = append(errs, validateNetworkPolicyPort(&r.Ports[j], rp.Child("ports").Index(j))...)
		}
		for j := range r.From {
			errs = append(errs, validateNetworkPolicyPeer(&r.From[j], opts, rp.Child("from").Index(j))...)
		}
	}
	for i, r := range spec.Egress {
		rp := sp.Child("egress").Index(i)
		for j := range r.Ports {
			errs = append(errs, validateNetworkPolicyPort(&r.Ports[j], rp.Child("ports").Index(j))...)
		}
		for j := range r.To {
			errs = append(errs, validateNetworkPolicyPeer(&r.To[j], opts, rp.Child("to").Index(j))...)
		}
	}
	allowed := []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}
	if len(spec.PolicyTypes) > len(allowed) {
		return append(errs, field.Invalid(sp.Child("policyTypes"), spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			errs = append(errs, field.NotSupported(sp.Child("policyTypes").Index(i), t, allowed))
		}
	}
	return errs
}

func validateNetworkPolicyPort(p *networkingv1.NetworkPolicyPort, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p.Protocol != nil {
		switch *p.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			errs = append(errs, field.NotSupported(fp.Child("protocol"), *p.Protocol, []string{"TCP", "UDP", "SCTP"}))
		}
	}
	switch {
	case p.Port == nil:
		if p.EndPort != nil {
			errs = append(errs, field.Invalid(fp.Child("endPort"), *p.EndPort, "may not be specified when `port` is not specified"))
		}
	case p.Port.Type == intstr.Int:
		for _, msg := range validation.IsValidPortNum(int(p.Port.IntVal)) {
			errs = append(errs, field.Invalid(fp.Child("port"), p.Port.IntVal, msg))
		}
		if p.EndPort != nil {
			if *p.EndPort < p.Port.IntVal {
				errs = append(errs, field.Invalid(fp.Child("endPort"), p.Port.IntVal, "must be greater than or equal to `port`"))
			}
			for _, msg := range validation.IsValidPortNum(int(*p.EndPort)) {
				errs = append(errs, field.Invalid(fp.Child("endPort"), *p.EndPort, msg))
			}
		}
	default:
		if p.EndPort != nil {
			errs = append(errs, field.Invalid(fp.Child("endPort"), *p.EndPort, "may not be specified when `port` is non-numeric"))
		}
		for _, msg := range validation.IsValidPortName(p.Port.StrVal) {
			errs = append(errs, field.Invalid(fp.Child("port"), p.Port.StrVal, msg))
		}
	}
	return errs
}

func validateNetworkPolicyPeer(p *networkingv1.NetworkPolicyPeer, opts netpolOptions, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	if p.PodSelector != nil {
		n++
		errs = append(errs, metav1validation.ValidateLabelSelector(p.PodSelector, opts.selectors, fp.Child("podSelector"))...)
	}
	if p.NamespaceSelector != nil {
		n++
		errs = append(errs, metav1validation.ValidateLabelSelector(p.NamespaceSelector, opts.selectors, fp.Child("namespaceSelector"))...)
	}
	if p.IPBlock != nil {
		n++
		errs = append(errs, validateIPBlock(p.IPBlock, opts, fp.Child("ipBlock"))...)
	}
	switch {
	case n == 0:
		errs = append(errs, field.Required(fp, "must specify a peer"))
	case n > 1 && p.IPBlock != nil:
		errs = append(errs, field.Forbidden(fp, "may not specify both ipBlock and another peer"))
	}
	return errs
}

// validateIPBlock checks cidr and that each except is a strict subset of it. Like
// Kubernetes 1.34 (StrictIPCIDRValidation off) it accepts legacy forms such as
// leading zeros and host bits set.
func validateIPBlock(b *networkingv1.IPBlock, opts netpolOptions, fp *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(fp.Child("cidr"), "")}
	}
	errs := validation.IsValidCIDRForLegacyField(fp.Child("cidr"), b.CIDR, false, opts.oldCIDRs)
	outer, ok := parseLegacyCIDR(b.CIDR)
	if !ok {
		return errs
	}
	for i, ex := range b.Except {
		ep := fp.Child("except").Index(i)
		errs = append(errs, validation.IsValidCIDRForLegacyField(ep, ex, false, opts.oldCIDRs)...)
		inner, ok := parseLegacyCIDR(ex)
		if !ok {
			continue
		}
		if !outer.Contains(inner.Addr()) || outer.Bits() >= inner.Bits() || outer.Addr().Is4() != inner.Addr().Is4() {
			errs = append(errs, field.Invalid(ep, ex, "must be a strict subset of `cidr`"))
		}
	}
	return errs
}

// parseLegacyCIDR parses a CIDR as Kubernetes' legacy fields accept it (IPv4 octets
// with leading zeros, host bits set) and returns it masked.
func parseLegacyCIDR(s string) (netip.Prefix, bool) {
	_, n, err := netutils.ParseCIDRSloppy(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	addr, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones), true
}

// serviceCIDRStrategy: spec.cidrs fixed at create except a single-stack to
// dual-stack upgrade; the status starts empty and the finalizer is set at once.
type serviceCIDRStrategy struct{}

var _ Strategy = serviceCIDRStrategy{}

// PrepareForCreate implements Strategy.
func (serviceCIDRStrategy) PrepareForCreate(obj runtime.Object) {
	sc := obj.(*networkingv1.ServiceCIDR)
	sc.Status = networkingv1.ServiceCIDRStatus{}
	hasFinalizer := false
	for _, f := range sc.Finalizers {
		hasFinalizer = hasFinalizer || f == ServiceCIDRFinalizer
	}
	if !hasFinalizer {
		sc.Finalizers = append(sc.Finalizers, ServiceCIDRFinalizer)
	}
}

// PrepareForUpdate implements Strategy.
func (serviceCIDRStrategy) PrepareForUpdate(_, _ runtime.Object) {}

// Validate implements Strategy.
func (serviceCIDRStrategy) Validate(obj runtime.Object) field.ErrorList {
	sc := obj.(*networkingv1.ServiceCIDR)
	errs := apivalidation.ValidateObjectMeta(&sc.ObjectMeta, false, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(errs, validateServiceCIDRs(sc.Spec.CIDRs)...)
}

// ValidateUpdate implements Strategy.
func (serviceCIDRStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	sc, oldSC := obj.(*networkingv1.ServiceCIDR), old.(*networkingv1.ServiceCIDR)
	errs := apivalidation.ValidateObjectMetaUpdate(&sc.ObjectMeta, &oldSC.ObjectMeta, field.NewPath("metadata"))
	return append(errs, validateServiceCIDRUpdate(sc.Spec.CIDRs, oldSC.Spec.CIDRs)...)
}

func validateServiceCIDRs(cidrs []string) field.ErrorList {
	fp := field.NewPath("spec", "cidrs")
	switch {
	case len(cidrs) == 0:
		return field.ErrorList{field.Required(fp, "at least one CIDR required")}
	case len(cidrs) > 2:
		return field.ErrorList{field.Invalid(fp, networkingv1.ServiceCIDRSpec{CIDRs: cidrs}, "may only hold up to 2 values")}
	}
	var errs field.ErrorList
	for i, c := range cidrs {
		errs = append(errs, validation.IsValidCIDR(fp.Index(i), c)...)
	}
	if len(cidrs) == 2 {
		a, errA := netip.ParsePrefix(cidrs[0])
		b, errB := netip.ParsePrefix(cidrs[1])
		if errA == nil && errB == nil && a.Addr().Is4() == b.Addr().Is4() {
			errs = append(errs, field.Invalid(fp, cidrs, "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"))
		}
	}
	return errs
}

// validateServiceCIDRUpdate keeps spec.cidrs as created, except that one CIDR may
// gain a second of the other family (Kubernetes issue 131261).
func validateServiceCIDRUpdate(cidrs, old []string) field.ErrorList {
	fp := field.NewPath("spec", "cidrs")
	switch {
	case len(cidrs) == len(old):
		var errs field.ErrorList
		for i := range old {
			if cidrs[i] != old[i] {
				errs = append(errs, field.Invalid(fp.Index(i), cidrs[i], apivalidation.FieldImmutableErrorMsg))
			}
		}
		return errs
	case len(old) == 1 && len(cidrs) == 2:
		var errs field.ErrorList
		if cidrs[0] != old[0] {
			errs = append(errs, field.Invalid(fp.Index(0), cidrs[0], apivalidation.FieldImmutableErrorMsg))
		}
		return append(errs, validateServiceCIDRs(cidrs)...)
	default:
		return field.ErrorList{field.Invalid(fp, cidrs, apivalidation.FieldImmutableErrorMsg)}
	}
}

// ValidateIPAddressName accepts only an IP address in canonical form (the
// IPAddress object's name); prefix is ignored, IPAddresses have no generated names.
func ValidateIPAddressName(name string, _ bool) []string {
	var out []string
	for _, e := range validation.IsValidIP(&field.Path{}, name) {
		out = append(out, e.Detail)
	}
	return out
}

func validateIPAddress(obj runtime.Object) field.ErrorList {
	ref := obj.(*networkingv1.IPAddress).Spec.ParentRef
	fp := field.NewPath("spec", "parentRef")
	if ref == nil {
		return field.ErrorList{field.Required(fp, "")}
	}
	var errs field.ErrorList
	if ref.Group != "" { // the core group is "", so group cannot be required
		for _, msg := range validation.IsDNS1123Subdomain(ref.Group) {
			errs = append(errs, field.Invalid(fp.Child("group"), ref.Group, msg))
		}
	}
	segment := func(name, v string, required bool) {
		if v == "" {
			if required {
				errs = append(errs, field.Required(fp.Child(name), ""))
			}
			return
		}
		for _, msg := range path.IsValidPathSegmentName(v) {
			errs = append(errs, field.Invalid(fp.Child(name), v, msg))
		}
	}
	segment("resource", ref.Resource, true)
	segment("name", ref.Name, true)
	segment("namespace", ref.Namespace, false)
	return errs
}

func validateIPAddressUpdate(obj, old runtime.Object) field.ErrorList {
	return apivalidation.ValidateImmutableField(obj.(*networkingv1.IPAddress).Spec.ParentRef, old.(*networkingv1.IPAddress).Spec.ParentRef,
		field.NewPath("spec", "parentRef"))
}
