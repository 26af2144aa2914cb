package registry

import (
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func defaultNamespace(obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
	if len(ns.Spec.Finalizers) == 0 && ns.DeletionTimestamp == nil {
		ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
}

func defaultSecret(obj runtime.Object) {
	s := obj.(*corev1.Secret)
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
}

func validateDataKeys[V any](data map[string]V, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k := range data {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(fp.Key(k), k, msg))
		}
	}
	return errs
}

func validateSecret(obj runtime.Object) field.ErrorList {
	s := obj.(*corev1.Secret)
	errs := validateDataKeys(s.Data, field.NewPath("data"))
	if s.Type == corev1.SecretTypeTLS {
		for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
			if _, ok := s.Data[k]; !ok {
				errs = append(errs, field.Required(field.NewPath("data").Key(k), ""))
			}
		}
	}
	return errs
}

func validateSecretUpdate(obj, old runtime.Object) field.ErrorList {
	if obj.(*corev1.Secret).Type != old.(*corev1.Secret).Type {
		return field.ErrorList{field.Invalid(field.NewPath("type"), obj.(*corev1.Secret).Type, "field is immutable")}
	}
	return nil
}

func validateConfigMap(obj runtime.Object) field.ErrorList {
	cm := obj.(*corev1.ConfigMap)
	return append(validateDataKeys(cm.Data, field.NewPath("data")), validateDataKeys(cm.BinaryData, field.NewPath("binaryData"))...)
}

func defaultEndpoints(obj runtime.Object) {
	ep := obj.(*corev1.Endpoints)
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

func defaultEndpointSlice(obj runtime.Object) {
	es := obj.(*discoveryv1.EndpointSlice)
	for i := range es.Ports {
		if es.Ports[i].Protocol == nil {
			p := corev1.ProtocolTCP
			es.Ports[i].Protocol = &p
		}
	}
}

func validateEndpointSlice(obj runtime.Object) field.ErrorList {
	es := obj.(*discoveryv1.EndpointSlice)
	switch es.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN:
	default:
		return field.ErrorList{field.NotSupported(field.NewPath("addressType"), es.AddressType, []string{"FQDN", "IPv4", "IPv6"})}
	}
	var errs field.ErrorList
	if len(es.Endpoints) > 1000 {
		errs = append(errs, field.TooMany(field.NewPath("endpoints"), len(es.Endpoints), 1000))
	}
	for i, ep := range es.Endpoints {
		if len(ep.Addresses) == 0 {
			errs = append(errs, field.Required(field.NewPath("endpoints").Index(i).Child("addresses"), ""))
		}
	}
	return errs
}

var pathTypes = sets.New(string(networkingv1.PathTypeExact), string(networkingv1.PathTypePrefix), string(networkingv1.PathTypeImplementationSpecific))

func validateBackend(b *networkingv1.IngressBackend, fp *field.Path) field.ErrorList {
	switch {
	case b.Service != nil && b.Resource != nil:
		return field.ErrorList{field.Invalid(fp, "", "cannot set both service and resource backends")}
	case b.Service != nil:
		var errs field.ErrorList
		if b.Service.Name == "" {
			errs = append(errs, field.Required(fp.Child("service", "name"), ""))
		}
		if b.Service.Port.Name == "" && b.Service.Port.Number == 0 {
			errs = append(errs, field.Required(fp.Child("service", "port"), "port name or number is required"))
		}
		return errs
	case b.Resource == nil:
		return field.ErrorList{field.Invalid(fp, "", "resource or service backend is required")}
	}
	return nil
}

func validateIngress(obj runtime.Object) field.ErrorList {
	ing := obj.(*networkingv1.Ingress)
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if ing.Spec.DefaultBackend != nil {
		errs = append(errs, validateBackend(ing.Spec.DefaultBackend, spec.Child("defaultBackend"))...)
	}
	if len(ing.Spec.Rules) == 0 && ing.Spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(spec, ing.Spec, "either `defaultBackend` or `rules` must be specified"))
	}
	for i, r := range ing.Spec.Rules {
		rp := spec.Child("rules").Index(i)
		if r.Host != "" {
			for _, msg := range validation.IsDNS1123Subdomain(strings.TrimPrefix(r.Host, "*.")) {
				errs = append(errs, field.Invalid(rp.Child("host"), r.Host, msg))
			}
		}
		if r.HTTP == nil {
			continue
		}
		for j, p := range r.HTTP.Paths {
			pp := rp.Child("http", "paths").Index(j)
			if p.PathType == nil {
				errs = append(errs, field.Required(pp.Child("pathType"), "pathType must be specified"))
			} else if !pathTypes.Has(string(*p.PathType)) {
				errs = append(errs, field.NotSupported(pp.Child("pathType"), *p.PathType, sets.List(pathTypes)))
			} else if *p.PathType != networkingv1.PathTypeImplementationSpecific && !strings.HasPrefix(p.Path, "/") {
				errs = append(errs, field.Invalid(pp.Child("path"), p.Path, "must be an absolute path"))
			}
			errs = append(errs, validateBackend(&p.Backend, pp.Child("backend"))...)
		}
	}
	return errs
}

func validateIngressClass(obj runtime.Object) field.ErrorList {
	ic := obj.(*networkingv1.IngressClass)
	if ic.Spec.Controller == "" {
		return field.ErrorList{field.Required(field.NewPath("spec", "controller"), "")}
	}
	return nil
}

func validateLease(obj runtime.Object) field.ErrorList {
	l := obj.(*coordinationv1.Lease)
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "leaseDurationSeconds"), *d, "must be greater than 0")}
	}
	return nil
}
