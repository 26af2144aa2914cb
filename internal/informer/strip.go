// Package informer holds what svcnet's informers share.
package informer

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// LastApplied is the annotation kubectl apply keeps the whole applied object in.
const LastApplied = corev1.LastAppliedConfigAnnotation

// Strip is an informer transform that drops what no svcnet component reads
// and what makes up much of a cached object: managedFields and kubectl's
// last-applied configuration. With thousands of Services they are most of an
// informer cache.
func Strip(o any) (any, error) {
	m, err := meta.Accessor(o)
	if err != nil {
		return o, nil // a tombstone or another type: left as it is
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a[LastApplied] != "" {
		delete(a, LastApplied)
		if len(a) == 0 {
			m.SetAnnotations(nil)
		}
	}
	return o, nil
}

// Chain applies transforms in order.
func Chain(fs ...func(any) (any, error)) func(any) (any, error) {
	return func(o any) (any, error) {
		for _, f := range fs {
			var err error
			if o, err = f(o); err != nil {
				return nil, err
			}
		}
		return o, nil
	}
}
