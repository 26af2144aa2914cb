// Package owned finds and tracks the objects a controller owns (the controller
// owner reference with its UID), shared by the pod- and job-making controllers.
package owned

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Controlled returns the objects of all whose controller has uid, in order.
func Controlled[T metav1.Object](all []T, uid types.UID) []T {
	var out []T
	for _, o := range all {
		if r := metav1.GetControllerOf(o); r != nil && r.UID == uid {
			out = append(out, o)
		}
	}
	return out
}

// Pods returns the cached pods in ns matching sel whose controller has uid.
func Pods(pods corelisters.PodLister, ns string, sel labels.Selector, uid types.UID) ([]*corev1.Pod, error) {
	all, err := pods.Pods(ns).List(sel)
	if err != nil {
		return nil, err
	}
	return Controlled(all, uid), nil
}

// OwnerKey returns the namespace/name key of o's controller if it is of kind;
// o may be a tombstone.
func OwnerKey(o any, kind string) (string, bool) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return "", false
	}
	if r := metav1.GetControllerOf(m); r != nil && r.Kind == kind {
		return m.GetNamespace() + "/" + r.Name, true
	}
	return "", false
}

// Handler queues the controller (of kind) of every added, updated or deleted
// object; added, if not nil, is told of each added one's owner first.
func Handler(kind string, queue func(key string), added func(key string)) cache.ResourceEventHandlerFuncs {
	on := func(o any, add bool) {
		if key, ok := OwnerKey(o, kind); ok {
			if add && added != nil {
				added(key)
			}
			queue(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: func(o any) { on(o, true) },
		UpdateFunc: func(_, o any) { on(o, false) }, DeleteFunc: func(o any) { on(o, false) }}
}

// Expectations count the creations and deletions each owner (by key) waits to
// see in its cache, so a lagging cache never makes it act twice; after Timeout
// an owner stops waiting.
type Expectations struct {
	Timeout time.Duration

	mu sync.Mutex
	m  map[string]expected
}

type expected struct {
	adds, dels int
	at         time.Time
}

// Expect records that key waits for adds creations and dels deletions from now.
func (e *Expectations) Expect(key string, adds, dels int, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]expected{}
	}
	e.m[key] = expected{adds: adds, dels: dels, at: now}
}

// Observe counts adds creations and dels deletions of key as seen (or given up).
func (e *Expectations) Observe(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.adds -= adds
		x.dels -= dels
		e.m[key] = x
	}
}

// Satisfied reports whether key waits for nothing (any more) at now, and then
// forgets it.
func (e *Expectations) Satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || (x.adds <= 0 && x.dels <= 0) || now.Sub(x.at) > e.Timeout {
		delete(e.m, key)
		return true
	}
	return false
}
