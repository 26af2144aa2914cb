package registry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func svc(mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

func TestServiceDefaults(t *testing.T) {
	s := svc(func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	})
	ServiceStrategy{}.PrepareForCreate(s)
	p := s.Spec.Ports[0]
	switch {
	case p.Protocol != corev1.ProtocolTCP:
		t.Errorf("protocol = %q", p.Protocol)
	case p.TargetPort != intstr.FromInt32(80):
		t.Errorf("targetPort = %v", p.TargetPort)
	case *s.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800:
		t.Errorf("timeout = %d", *s.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds)
	case s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster:
		t.Errorf("externalTrafficPolicy = %q", s.Spec.ExternalTrafficPolicy)
	case *s.Spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster:
		t.Errorf("internalTrafficPolicy = %q", *s.Spec.InternalTrafficPolicy)
	case len(s.Spec.IPFamilies) != 1 || s.Spec.IPFamilies[0] != corev1.IPv4Protocol || *s.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack:
		t.Errorf("ip families = %v %v", s.Spec.IPFamilies, s.Spec.IPFamilyPolicy)
	}
	c := svc(nil)
	ServiceStrategy{}.PrepareForCreate(c)
	if c.Spec.Type != corev1.ServiceTypeClusterIP || c.Spec.SessionAffinity != corev1.ServiceAffinityNone || c.Spec.ExternalTrafficPolicy != "" {
		t.Errorf("ClusterIP defaults: type=%q affinity=%q etp=%q", c.Spec.Type, c.Spec.SessionAffinity, c.Spec.ExternalTrafficPolicy)
	}
}

func TestServiceValidation(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*corev1.Service)
		want string // substring of the aggregated error; "" = valid
	}{
		{"valid", nil, ""},
		{"headless without ports", func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Ports = nil }, ""},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil }, "spec.ports: Required value"},
		{"multi-port needs names", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Port: 443}}
		}, "spec.ports[1].name: Required value"},
		{"duplicate port names", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "http", Port: 443}}
		}, `spec.ports[1].name: Duplicate value: "http"`},
		{"port out of range", func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 }, "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"},
		{"bad protocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }, `spec.ports[0].protocol: Unsupported value: "ICMP"`},
		{"bad type", func(s *corev1.Service) { s.Spec.Type = "Magic" }, `spec.type: Unsupported value: "Magic"`},
		{"bad name", func(s *corev1.Service) { s.Name = "Web_1" }, "metadata.name: Invalid value: \"Web_1\": a DNS-1035 label"},
		{"externalName needs name", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName; s.Spec.Selector = nil }, "spec.externalName: Required value"},
		// Kubernetes accepts (and ignores) a selector on an ExternalName Service; the e2e
		// suite's ExternalName tests create one.
		{"externalName with selector", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.com"
		}, ""},
		{"externalName valid", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.Selector = corev1.ServiceTypeExternalName, "db.example.com", nil
		}, ""},
		{"externalName with clusterIP", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.Selector, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "db.example.com", nil, "10.96.0.5"
		}, "spec.clusterIPs: Forbidden: may not be set for ExternalName services"},
		{"headless NodePort", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort; s.Spec.ClusterIP = "None" }, "may not be set to 'None' for NodePort services"},
		{"nodePort on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30001 }, "spec.ports[0].nodePort: Forbidden"},
		{"bad clusterIP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.300" }, `spec.clusterIPs[0]: Invalid value: "10.96.0.300"`},
		{"affinity timeout too big", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			tt := int32(90000)
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &tt}}
		}, "timeoutSeconds: Invalid value: 90000"},
		{"bad target port name", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("Not_A_Name") }, "spec.ports[0].targetPort"},
		{"source ranges need LB", func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"} }, "spec.loadBalancerSourceRanges: Forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := svc(c.mut)
			ServiceStrategy{}.PrepareForCreate(s)
			errs := ServiceStrategy{}.Validate(s)
			got := errs.ToAggregate()
			switch {
			case c.want == "" && got != nil:
				t.Fatalf("unexpected error: %v", got)
			case c.want != "" && (got == nil || !strings.Contains(got.Error(), c.want)):
				t.Fatalf("error = %v, want it to contain %q", got, c.want)
			}
		})
	}
}

func TestServiceUpdateKeepsAllocations(t *testing.T) {
	old := svc(func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ClusterIP = corev1.ServiceTypeNodePort, "10.96.3.4"
		s.Spec.Ports[0].NodePort = 30123
	})
	ServiceStrategy{}.PrepareForCreate(old)
	old.ResourceVersion = "7"
	upd := svc(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }) // as in a re-applied manifest
	upd.ResourceVersion = "7"
	ServiceStrategy{}.PrepareForUpdate(upd, old)
	if upd.Spec.ClusterIP != "10.96.3.4" || upd.Spec.Ports[0].NodePort != 30123 {
		t.Fatalf("update lost allocations: clusterIP=%q nodePort=%d", upd.Spec.ClusterIP, upd.Spec.Ports[0].NodePort)
	}
	if errs := (ServiceStrategy{}).ValidateUpdate(upd, old); len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	changed := upd.DeepCopy()
	changed.Spec.ClusterIP, changed.Spec.ClusterIPs = "10.96.9.9", []string{"10.96.9.9"}
	if errs := (ServiceStrategy{}).ValidateUpdate(changed, old); len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "may not change once set") {
		t.Fatalf("clusterIP change allowed: %v", errs)
	}
}

// As in Kubernetes' "should be able to change the type from NodePort to ExternalName": the
// client changes only type and externalName; the allocated cluster IP, IP families and node
// ports are wiped, values the client changed are kept (and validated).
func TestServiceUpdateToExternalNameDropsAllocations(t *testing.T) {
	old := svc(func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ClusterIP = corev1.ServiceTypeNodePort, "10.96.3.4"
		s.Spec.Ports[0].NodePort = 30123
	})
	ServiceStrategy{}.PrepareForCreate(old)
	old.ResourceVersion = "7"
	upd := old.DeepCopy()
	upd.Spec.Type, upd.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.com"
	ServiceStrategy{}.PrepareForUpdate(upd, old)
	if upd.Spec.ClusterIP != "" || upd.Spec.ClusterIPs != nil || upd.Spec.IPFamilies != nil || upd.Spec.IPFamilyPolicy != nil || upd.Spec.Ports[0].NodePort != 0 {
		t.Fatalf("allocations kept: clusterIP=%q clusterIPs=%v families=%v policy=%v nodePort=%d",
			upd.Spec.ClusterIP, upd.Spec.ClusterIPs, upd.Spec.IPFamilies, upd.Spec.IPFamilyPolicy, upd.Spec.Ports[0].NodePort)
	}
	if errs := (ServiceStrategy{}).ValidateUpdate(upd, old); len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	changed := old.DeepCopy()
	changed.Spec.Type, changed.Spec.ExternalName, changed.Spec.ClusterIP = corev1.ServiceTypeExternalName, "db.example.com", "10.96.9.9"
	ServiceStrategy{}.PrepareForUpdate(changed, old)
	if errs := (ServiceStrategy{}).ValidateUpdate(changed, old); len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "spec.clusterIPs: Forbidden") {
		t.Fatalf("a changed clusterIP on an ExternalName update: %v", errs)
	}
}
