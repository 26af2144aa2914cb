package apiserver

import (
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// handleBinding serves POST pods/<name>/binding: a scheduler assigns an unbound
// pod to a node. Binding a pod twice is a conflict, as in Kubernetes.
func (s *Server) handleBinding(q *request) error {
	if q.verb != "create" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), q.r.Method)
	}
	body, err := readBody(q.r)
	if err != nil {
		return err
	}
	b := &corev1.Binding{}
	if _, err := decodeInto(body, mediaType(q.r), corev1.SchemeGroupVersion.WithKind("Binding"), b, q.r.URL.Query().Get("fieldValidation")); err != nil {
		return err
	}
	if b.Target.Name == "" {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), q.name,
			field.ErrorList{field.Required(field.NewPath("target", "name"), "")})
	}
	wo := writeOpts(q)
	wo.sub = ""
	_, _, err = s.update(q.r.Context(), q.res, q.ns, q.name, func(old runtime.Object) (runtime.Object, error) {
		if old == nil {
			return nil, apierrors.NewNotFound(q.res.GroupResource(), q.name)
		}
		pod := old.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(q.res.GroupResource(), q.name, errors.New("the pod's UID does not match the binding"))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(q.res.GroupResource(), q.name, fmt.Errorf("pod %s is already assigned to node %q", q.name, pod.Spec.NodeName))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(q.res.GroupResource(), q.name, errors.New("pod is being deleted, cannot be assigned to a host"))
		}
		pod.Spec.NodeName = b.Target.Name
		return pod, nil
	}, wo)
	if err != nil {
		return err
	}
	writeEncoded(q.w, http.StatusCreated, q.accept, statusSuccess(&metav1.StatusDetails{Name: q.name, Kind: "pods"}))
	return nil
}
