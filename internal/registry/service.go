package registry

import (
	"net"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultClientIPTimeout is Kubernetes' default sessionAffinity ClientIP timeout (3h).
const DefaultClientIPTimeout int32 = 10800

// ServiceStrategy applies Kubernetes' Service defaults and validation. Cluster IP
// and node port allocation happen later, in the API server, against storage.
type ServiceStrategy struct{}

var _ Strategy = ServiceStrategy{}

// PrepareForCreate implements Strategy.
func (ServiceStrategy) PrepareForCreate(obj runtime.Object) {
	svc := obj.(*corev1.Service)
	svc.Status = corev1.ServiceStatus{}
	DefaultService(svc)
}

// PrepareForUpdate implements Strategy: like Kubernetes, values the user leaves empty
// on update (clusterIP, nodePorts, healthCheckNodePort) keep their allocated value.
func (ServiceStrategy) PrepareForUpdate(obj, old runtime.Object) {
	svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	dropTypeDependentFields(svc, oldSvc)
	keepAllocated(svc, oldSvc)
	DefaultService(svc)
}

// dropTypeDependentFields is Kubernetes' (pkg/registry/core/service/strategy.go): a type
// change that no longer needs a cluster IP, node ports or a health-check node port wipes
// the values the update left as they were (they are released later), so that e.g. a
// NodePort Service becomes ExternalName by changing only its type and externalName.
func dropTypeDependentFields(svc, old *corev1.Service) {
	if old.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.Type == corev1.ServiceTypeExternalName {
		if svc.Spec.ClusterIP == old.Spec.ClusterIP && slices.Equal(svc.Spec.ClusterIPs, old.Spec.ClusterIPs) {
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		}
		if slices.Equal(svc.Spec.IPFamilies, old.Spec.IPFamilies) {
			svc.Spec.IPFamilies = nil
		}
		if reflect.DeepEqual(svc.Spec.IPFamilyPolicy, old.Spec.IPFamilyPolicy) {
			svc.Spec.IPFamilyPolicy = nil
		}
	}
	nodePorts := func(s *corev1.Service) (ps []int32) {
		for _, p := range s.Spec.Ports {
			ps = append(ps, p.NodePort)
		}
		return ps
	}
	needsNodePorts := func(s *corev1.Service) bool {
		return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
	}
	if needsNodePorts(old) && !needsNodePorts(svc) && slices.Equal(nodePorts(svc), nodePorts(old)) {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	if NeedsHealthCheckNodePort(old) && !NeedsHealthCheckNodePort(svc) && svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
}

func keepAllocated(svc, old *corev1.Service) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
	}
	if svc.Spec.ClusterIP == old.Spec.ClusterIP && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
	}
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = append([]corev1.IPFamily(nil), old.Spec.IPFamilies...)
	}
	if svc.Spec.IPFamilyPolicy == nil {
		svc.Spec.IPFamilyPolicy = old.Spec.IPFamilyPolicy
	}
	if NeedsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			for _, op := range old.Spec.Ports {
				if op.NodePort != 0 && op.Port == p.Port && proto(op.Protocol) == proto(p.Protocol) {
					p.NodePort = op.NodePort
					break
				}
			}
		}
	}
	if NeedsHealthCheckNodePort(svc) && svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

func proto(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// NeedsNodePorts reports whether the Service's ports get node ports.
func NeedsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// NeedsHealthCheckNodePort reports whether the Service gets a health-check node port.
func NeedsHealthCheckNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// IsHeadless reports whether the Service has clusterIP None.
func IsHeadless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

// DefaultService sets the fields Kubernetes defaults on a Service.
func DefaultService(svc *corev1.Service) {
	s := &svc.Spec
	if s.Type == "" {
		s.Type = corev1.ServiceTypeClusterIP
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = corev1.ServiceAffinityNone
	}
	if s.SessionAffinity == corev1.ServiceAffinityClientIP {
		if s.SessionAffinityConfig == nil {
			s.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}
		if s.SessionAffinityConfig.ClientIP == nil {
			s.SessionAffinityConfig.ClientIP = &corev1.ClientIPConfig{}
		}
		if s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			t := DefaultClientIPTimeout
			s.SessionAffinityConfig.ClientIP.TimeoutSeconds = &t
		}
	} else if s.SessionAffinity == corev1.ServiceAffinityNone {
		s.SessionAffinityConfig = nil
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == (intstr.IntOrString{}) {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if s.Type == corev1.ServiceTypeExternalName {
		return
	}
	if s.ClusterIP != "" && len(s.ClusterIPs) == 0 {
		s.ClusterIPs = []string{s.ClusterIP}
	}
	if s.ClusterIP == "" && len(s.ClusterIPs) > 0 {
		s.ClusterIP = s.ClusterIPs[0]
	}
	if len(s.IPFamilies) == 0 {
		fam := corev1.IPv4Protocol
		if ip := net.ParseIP(s.ClusterIP); ip != nil && ip.To4() == nil {
			fam = corev1.IPv6Protocol
		}
		s.IPFamilies = []corev1.IPFamily{fam}
	}
	if s.IPFamilyPolicy == nil {
		p := corev1.IPFamilyPolicySingleStack
		s.IPFamilyPolicy = &p
	}
	if s.InternalTrafficPolicy == nil {
		p := corev1.ServiceInternalTrafficPolicyCluster
		s.InternalTrafficPolicy = &p
	}
	switch s.Type {
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		if s.ExternalTrafficPolicy == "" {
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}
	default:
		s.ExternalTrafficPolicy = ""
	}
	if s.Type == corev1.ServiceTypeLoadBalancer && s.AllocateLoadBalancerNodePorts == nil {
		t := true
		s.AllocateLoadBalancerNodePorts = &t
	}
}

// Validate implements Strategy.
func (ServiceStrategy) Validate(obj runtime.Object) field.ErrorList {
	svc := obj.(*corev1.Service)
	errs := apivalidation.ValidateObjectMeta(&svc.ObjectMeta, true, apivalidation.NameIsDNS1035Label, field.NewPath("metadata"))
	return append(errs, validateServiceSpec(svc)...)
}

// ValidateUpdate implements Strategy.
func (ServiceStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	errs := apivalidation.ValidateObjectMetaUpdate(&svc.ObjectMeta, &oldSvc.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateServiceSpec(svc)...)
	ext := svc.Spec.Type == corev1.ServiceTypeExternalName || oldSvc.Spec.Type == corev1.ServiceTypeExternalName
	if !ext && oldSvc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != oldSvc.Spec.ClusterIP {
		errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP, "may not change once set"))
	}
	return errs
}

var supportedTypes = sets.New(string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeNodePort),
	string(corev1.ServiceTypeLoadBalancer), string(corev1.ServiceTypeExternalName))

var supportedProtocols = sets.New(string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP))

func validateServiceSpec(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	s := &svc.Spec
	spec := field.NewPath("spec")
	if !supportedTypes.Has(string(s.Type)) {
		errs = append(errs, field.NotSupported(spec.Child("type"), s.Type, sets.List(supportedTypes)))
	}
	switch s.Type {
	case corev1.ServiceTypeExternalName:
		if s.ClusterIP != "" || len(s.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(spec.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if s.ExternalName == "" {
			errs = append(errs, field.Required(spec.Child("externalName"), ""))
		} else {
			name := strings.TrimSuffix(s.ExternalName, ".")
			for _, msg := range validation.IsDNS1123Subdomain(name) {
				errs = append(errs, field.Invalid(spec.Child("externalName"), s.ExternalName, msg))
			}
		}
	default:
		if len(s.Ports) == 0 && s.ClusterIP != corev1.ClusterIPNone {
			errs = append(errs, field.Required(spec.Child("ports"), ""))
		}
	}
	if s.ClusterIP == corev1.ClusterIPNone && (s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer) {
		errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), s.ClusterIP, "may not be set to 'None' for "+string(s.Type)+" services"))
	}
	if s.ClusterIP != "" && s.ClusterIP != corev1.ClusterIPNone && net.ParseIP(s.ClusterIP) == nil {
		errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), s.ClusterIP, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
	}
	if len(s.ClusterIPs) > 0 && s.ClusterIP != s.ClusterIPs[0] {
		errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), s.ClusterIPs, "must match clusterIP when both are specified"))
	}
	if len(s.ClusterIPs) > 1 {
		errs = append(errs, field.TooMany(spec.Child("clusterIPs"), len(s.ClusterIPs), 1))
	}
	errs = append(errs, metav1validation.ValidateLabels(s.Selector, spec.Child("selector"))...)
	errs = append(errs, validatePorts(svc)...)
	if !sets.New(string(corev1.ServiceAffinityNone), string(corev1.ServiceAffinityClientIP)).Has(string(s.SessionAffinity)) {
		errs = append(errs, field.NotSupported(spec.Child("sessionAffinity"), s.SessionAffinity, []string{"ClientIP", "None"}))
	}
	if s.SessionAffinity == corev1.ServiceAffinityClientIP {
		t := s.SessionAffinityConfig.ClientIP.TimeoutSeconds
		if *t <= 0 || *t > 86400 {
			errs = append(errs, field.Invalid(spec.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds"), *t, "must be greater than 0 and less than 86400"))
		}
	}
	if p := s.ExternalTrafficPolicy; p != "" && p != corev1.ServiceExternalTrafficPolicyCluster && p != corev1.ServiceExternalTrafficPolicyLocal {
		errs = append(errs, field.NotSupported(spec.Child("externalTrafficPolicy"), p, []string{"Cluster", "Local"}))
	}
	if p := s.InternalTrafficPolicy; p != nil && *p != corev1.ServiceInternalTrafficPolicyCluster && *p != corev1.ServiceInternalTrafficPolicyLocal {
		errs = append(errs, field.NotSupported(spec.Child("internalTrafficPolicy"), *p, []string{"Cluster", "Local"}))
	}
	for i, ip := range s.ExternalIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, field.Invalid(spec.Child("externalIPs").Index(i), ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
		}
	}
	for i, r := range s.LoadBalancerSourceRanges {
		if _, _, err := net.ParseCIDR(strings.TrimSpace(r)); err != nil {
			errs = append(errs, field.Invalid(spec.Child("loadBalancerSourceRanges").Index(i), r, "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 "))
		}
	}
	if s.Type != corev1.ServiceTypeLoadBalancer && len(s.LoadBalancerSourceRanges) > 0 {
		errs = append(errs, field.Forbidden(spec.Child("loadBalancerSourceRanges"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if s.HealthCheckNodePort != 0 && !NeedsHealthCheckNodePort(svc) {
		errs = append(errs, field.Invalid(spec.Child("healthCheckNodePort"), s.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
	}
	return errs
}

func validatePorts(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	s := &svc.Spec
	ports := field.NewPath("spec", "ports")
	names := sets.New[string]()
	type key struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[key]bool{}
	for i, p := range s.Ports {
		fp := ports.Index(i)
		if len(s.Ports) > 1 && p.Name == "" {
			errs = append(errs, field.Required(fp.Child("name"), ""))
		} else if p.Name != "" {
			for _, msg := range validation.IsDNS1123Label(p.Name) {
				errs = append(errs, field.Invalid(fp.Child("name"), p.Name, msg))
			}
			if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(fp.Child("name"), p.Name))
			}
			names.Insert(p.Name)
		}
		for _, msg := range validation.IsValidPortNum(int(p.Port)) {
			errs = append(errs, field.Invalid(fp.Child("port"), p.Port, msg))
		}
		if !supportedProtocols.Has(string(p.Protocol)) {
			errs = append(errs, field.NotSupported(fp.Child("protocol"), p.Protocol, sets.List(supportedProtocols)))
		}
		k := key{p.Port, p.Protocol}
		if seen[k] {
			errs = append(errs, field.Duplicate(fp, k))
		}
		seen[k] = true
		errs = append(errs, validateTargetPort(p.TargetPort, fp.Child("targetPort"))...)
		if p.NodePort != 0 {
			if !NeedsNodePorts(svc) {
				errs = append(errs, field.Forbidden(fp.Child("nodePort"), "may not be used when `type` is '"+string(s.Type)+"'"))
			} else {
				for _, msg := range validation.IsValidPortNum(int(p.NodePort)) {
					errs = append(errs, field.Invalid(fp.Child("nodePort"), p.NodePort, msg))
				}
			}
		}
	}
	return errs
}

func validateTargetPort(tp intstr.IntOrString, fp *field.Path) field.ErrorList {
	if tp.Type == intstr.String {
		var errs field.ErrorList
		for _, msg := range validation.IsValidPortName(tp.StrVal) {
			errs = append(errs, field.Invalid(fp, tp.StrVal, msg))
		}
		return errs
	}
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(tp.IntValue()) {
		errs = append(errs, field.Invalid(fp, tp.IntValue(), msg))
	}
	return errs
}
