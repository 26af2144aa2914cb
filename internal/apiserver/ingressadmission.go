package apiserver

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
)

// admitIngressClass sets a new Ingress' spec.ingressClassName to the default
// IngressClass when it names none (and no legacy class annotation), as
// kube-apiserver's DefaultIngressClass admission does; with several default
// classes the newest wins.
func (s *Server) admitIngressClass(ctx context.Context, ing *networkingv1.Ingress) error {
	if ing.Spec.IngressClassName != nil || ing.Annotations["kubernetes.io/ingress.class"] != "" {
		return nil
	}
	res := s.res(networkingv1.GroupName, "ingressclasses")
	kvs, _, err := listAll(ctx, s.store, s.listPrefix(res, ""), 0)
	if err != nil {
		return err
	}
	var chosen *networkingv1.IngressClass
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv)
		if err != nil {
			continue
		}
		ic := obj.(*networkingv1.IngressClass)
		if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
			continue
		}
		if chosen == nil || ic.CreationTimestamp.After(chosen.CreationTimestamp.Time) {
			chosen = ic
		}
	}
	if chosen != nil {
		name := chosen.Name
		ing.Spec.IngressClassName = &name
	}
	return nil
}
