package history

import (
	"bytes"
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
)

// Store reads revisions from an informer's cache and writes them to the API.
type Store struct {
	Client    kubernetes.Interface
	Revisions appslisters.ControllerRevisionLister
}

// Owned lists the revisions in ns that the object with uid controls and sel selects.
func (st Store) Owned(ns string, sel labels.Selector, owner metav1.Object) ([]*appsv1.ControllerRevision, error) {
	all, err := st.Revisions.ControllerRevisions(ns).List(sel)
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ControllerRevision
	for _, r := range all {
		if ref := metav1.GetControllerOf(r); ref != nil && ref.UID == owner.GetUID() {
			out = append(out, r)
		}
	}
	return out, nil
}

// Sync brings the history of owner (of kind gvk, selecting sel) in line with
// s and returns the current revision. relabel (may be nil) moves pods from a
// duplicate revision's hash to the current one before the duplicate goes.
func (st Store) Sync(ctx context.Context, owner metav1.Object, gvk schema.GroupVersionKind, sel labels.Selector, s Set,
	relabel func(from, to string) error) (*appsv1.ControllerRevision, error) {
	revs, err := st.Owned(owner.GetNamespace(), sel, owner)
	if err != nil {
		return nil, err
	}
	d := Plan(s, revs)
	api := st.Client.AppsV1().ControllerRevisions(owner.GetNamespace())
	cur := d.Current
	switch {
	case d.New:
		cur = cur.DeepCopy()
		cur.Namespace, cur.OwnerReferences = owner.GetNamespace(), []metav1.OwnerReference{*metav1.NewControllerRef(owner, gvk)}
		created, err := api.Create(ctx, cur, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// our own, not yet in the cache; or another template's: a collision
			got, gerr := api.Get(ctx, cur.Name, metav1.GetOptions{})
			if gerr != nil {
				return nil, gerr
			}
			if ref := metav1.GetControllerOf(got); ref == nil || ref.UID != owner.GetUID() || !bytes.Equal(got.Data.Raw, s.Data) {
				return nil, ErrCollision
			}
			created, err = got, nil
		}
		if err != nil {
			return nil, fmt.Errorf("create controller revision: %w", err)
		}
		cur = created
	case d.Renumber:
		updated, err := api.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("update controller revision %s: %w", cur.Name, err)
		}
		cur = updated
	}
	for _, dup := range d.Dups {
		if from, to := dup.Labels[HashLabel], cur.Labels[HashLabel]; relabel != nil && from != to {
			if err := relabel(from, to); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range append(d.Dups, d.Delete...) {
		uid := r.UID
		err := api.Delete(ctx, r.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete controller revision %s: %w", r.Name, err)
		}
	}
	return cur, nil
}

// DeleteHandler requeues the set of kind that controlled a deleted revision,
// so its current revision is made again.
func DeleteHandler(kind string, add func(key string)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		r, ok := obj.(*appsv1.ControllerRevision)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(r); ref != nil && ref.Kind == kind {
			add(r.Namespace + "/" + ref.Name)
		}
	}}
}

// BumpCollisions is the status.collisionCount after a collision.
func BumpCollisions(n *int32) *int32 {
	next := int32(1)
	if n != nil {
		next = *n + 1
	}
	return &next
}
