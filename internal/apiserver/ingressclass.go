package apiserver

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The IngressClass of svcnet's built-in edge (internal/ingress), created at
// start as the default class so Ingresses without a class are served.
const (
	ingressClassName       = "svcnet"
	ingressClassController = "svcnet.io/ingress"
)

// ensureIngressClass creates the svcnet IngressClass unless one by that name
// exists (a user's edits, e.g. dropping the default annotation, are kept).
func (s *Server) ensureIngressClass(ctx context.Context) {
	res := s.res(networkingv1.GroupName, "ingressclasses")
	if res == nil {
		return
	}
	if _, _, err := s.get(ctx, res, "", ingressClassName); !apierrors.IsNotFound(err) {
		return
	}
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: ingressClassName,
			Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: ingressClassController},
	}
	if _, err := s.create(ctx, res, "", ic, writeOptions{}); ignoreExists(err) != nil {
		s.log.Warn("cannot create the svcnet IngressClass", "err", err)
	}
}
