package apiserver

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/svcnet/svcnet/internal/registry"
)

// The scale subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets,
// StatefulSets and ReplicationControllers, which `kubectl scale` reads and patches.

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// hasScale reports whether a resource serves /scale: the built-in workloads, and
// custom resources whose CRD declares the scale subresource.
func hasScale(res *registry.Resource) bool {
	if res.Custom != nil {
		return res.Custom.Scale != nil
	}
	switch res.Resource {
	case "deployments", "replicasets", "statefulsets", "replicationcontrollers":
		return true
	}
	return false
}

// jsonPathFields splits a CRD scale path (".spec.replicas") into fields.
func jsonPathFields(p string) []string { return strings.Split(strings.TrimPrefix(p, "."), ".") }

func toScale(res *registry.Resource, obj runtime.Object) (*autoscalingv1.Scale, error) {
	var replicas, current int32
	var sel *metav1.LabelSelector
	selector := ""
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		sc := res.Custom.Scale
		n, _, _ := unstructured.NestedInt64(o.Object, jsonPathFields(sc.SpecReplicasPath)...)
		c, _, _ := unstructured.NestedInt64(o.Object, jsonPathFields(sc.StatusReplicasPath)...)
		replicas, current = int32(n), int32(c)
		if sc.LabelSelectorPath != nil {
			selector, _, _ = unstructured.NestedString(o.Object, jsonPathFields(*sc.LabelSelectorPath)...)
		}
	case *appsv1.Deployment:
		replicas, current, sel = derefInt32(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		replicas, current, sel = derefInt32(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.StatefulSet:
		replicas, current, sel = derefInt32(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *corev1.ReplicationController:
		replicas, current = derefInt32(o.Spec.Replicas), o.Status.Replicas
		sel = &metav1.LabelSelector{MatchLabels: o.Spec.Selector}
	default:
		return nil, apierrors.NewBadRequest("no scale subresource")
	}
	if sel != nil {
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			selector = s.String()
		}
	}
	m := accessor(obj)
	sc := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
		ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
		Spec: autoscalingv1.ScaleSpec{Replicas: replicas}, Status: autoscalingv1.ScaleStatus{Replicas: current, Selector: selector}}
	setKind(sc, scaleGVK)
	return sc, nil
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func setReplicas(res *registry.Resource, obj runtime.Object, n int32) error {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return unstructured.SetNestedField(o.Object, int64(n), jsonPathFields(res.Custom.Scale.SpecReplicasPath)...)
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	case *corev1.ReplicationController:
		o.Spec.Replicas = &n
	}
	return nil
}

func (s *Server) handleScale(q *request) error {
	if q.verb == "get" {
		obj, _, err := s.get(q.r.Context(), q.res, q.ns, q.name)
		if err != nil {
			return err
		}
		sc, err := toScale(q.res, obj)
		if err != nil {
			return err
		}
		writeEncoded(q.w, http.StatusOK, q.accept, sc)
		return nil
	}
	if q.verb != "update" && q.verb != "patch" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), q.r.Method)
	}
	body, err := readBody(q.r)
	if err != nil {
		return err
	}
	validation := q.r.URL.Query().Get("fieldValidation")
	wo := writeOpts(q)
	wo.sub = ""
	out, _, err := s.update(q.r.Context(), q.res, q.ns, q.name, func(old runtime.Object) (runtime.Object, error) {
		if old == nil {
			return nil, apierrors.NewNotFound(q.res.GroupResource(), q.name)
		}
		cur, err := toScale(q.res, old)
		if err != nil {
			return nil, err
		}
		want := &autoscalingv1.Scale{}
		if q.verb == "patch" {
			curJSON, _ := json.Marshal(cur)
			patched, err := applyPatch(types.PatchType(mediaType(q.r)), curJSON, body, &autoscalingv1.Scale{})
			if err != nil {
				return nil, err
			}
			if _, err := decodeInto(patched, "application/json", scaleGVK, want, validation); err != nil {
				return nil, err
			}
		} else if _, err := decodeInto(body, mediaType(q.r), scaleGVK, want, validation); err != nil {
			return nil, err
		}
		if want.Spec.Replicas < 0 {
			return nil, apierrors.NewBadRequest("spec.replicas: Invalid value: " + strconv.Itoa(int(want.Spec.Replicas)) + ": must be greater than or equal to 0")
		}
		if rv := want.ResourceVersion; rv != "" && rv != cur.ResourceVersion {
			return nil, apierrors.NewConflict(q.res.GroupResource(), q.name, errConflict)
		}
		return old, setReplicas(q.res, old, want.Spec.Replicas)
	}, wo)
	if err != nil {
		return err
	}
	sc, err := toScale(q.res, out)
	if err != nil {
		return err
	}
	writeEncoded(q.w, http.StatusOK, q.accept, sc)
	return nil
}
