package owned

import (
	"context"
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Claim decides, as Kubernetes' ControllerRefManager does, which of the
// namespace's pods the controller ref (its owner) keeps: its own pods that
// sel still matches, plus orphans sel matches (adopted); its own pods sel no
// longer matches are released. Pods of other controllers are left alone.
// adopting is false while the owner is being deleted (it only releases then).
func Claim[T metav1.Object](objs []T, sel labels.Selector, ref metav1.OwnerReference, adopting bool) (keep, adopt, release []T) {
	for _, o := range objs {
		c := metav1.GetControllerOf(o)
		matches := sel.Matches(labels.Set(o.GetLabels()))
		switch {
		case c != nil && c.UID == ref.UID && c.Name == ref.Name:
			if matches {
				keep = append(keep, o)
			} else {
				release = append(release, o)
			}
		case c == nil && matches && adopting && o.GetDeletionTimestamp() == nil:
			adopt = append(adopt, o)
		}
	}
	return keep, adopt, release
}

// SetOwner adopts (ref added) or releases (ref removed) a pod with one merge
// patch, guarded by its uid and resourceVersion; a pod that changed or went
// away meanwhile is skipped (its event syncs the owner again).
func SetOwner(ctx context.Context, client kubernetes.Interface, p *corev1.Pod, ref metav1.OwnerReference, adopt bool) error {
	return setOwner(p, ref, adopt, func(patch []byte) error {
		_, err := client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// SetReplicaSetOwner is SetOwner for a Deployment's ReplicaSet.
func SetReplicaSetOwner(ctx context.Context, client kubernetes.Interface, rs *appsv1.ReplicaSet, ref metav1.OwnerReference, adopt bool) error {
	return setOwner(rs, ref, adopt, func(patch []byte) error {
		_, err := client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

func setOwner(o metav1.Object, ref metav1.OwnerReference, adopt bool, apply func(patch []byte) error) error {
	var refs []metav1.OwnerReference
	for _, r := range o.GetOwnerReferences() {
		if r.UID != ref.UID {
			refs = append(refs, r)
		}
	}
	if adopt {
		refs = append(refs, ref)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "uid": o.GetUID(), "resourceVersion": o.GetResourceVersion()}})
	if err != nil {
		return err
	}
	err = apply(patch)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsInvalid(err) {
		return nil
	}
	return err
}

// ClaimPods applies Claim to pods: orphans adopted, non-matching own pods
// released; it returns the pods the owner keeps (the adopted ones included).
func ClaimPods(ctx context.Context, client kubernetes.Interface, pods []*corev1.Pod, sel labels.Selector, ref metav1.OwnerReference) ([]*corev1.Pod, error) {
	keep, adopt, release := Claim(pods, sel, ref, true)
	for _, p := range release {
		if err := SetOwner(ctx, client, p, ref, false); err != nil {
			return nil, err
		}
	}
	for _, p := range adopt {
		if err := SetOwner(ctx, client, p, ref, true); err != nil {
			return nil, err
		}
		keep = append(keep, p)
	}
	return keep, nil
}
