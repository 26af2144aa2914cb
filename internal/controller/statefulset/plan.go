// Package statefulset runs the StatefulSet controller: pods with stable names
// <set>-<ordinal> (hostname = pod name, subdomain = spec.serviceName, so the
// headless Service gives each a DNS name), created in order and each only when
// the ones before it are Running and Ready (OrderedReady) or all at once
// (Parallel), removed from the highest ordinal down, and rolled to a new template
// from the highest ordinal down to the partition, one Ready pod at a time.
//
// Each template is a ControllerRevision (internal/controller/history); pods
// carry its name in controller-revision-hash. A pod below the partition that
// is deleted during a rollout comes back from the current revision's template.
// The plan is a pure function of the set and its pods; the controller applies it.
package statefulset

import (
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// Labels Kubernetes puts on a StatefulSet's pods.
const (
	LabelPodName  = appsv1.StatefulSetPodNameLabel        // "statefulset.kubernetes.io/pod-name"
	LabelPodIndex = appsv1.PodIndexLabel                  // "apps.kubernetes.io/pod-index"
	LabelRevision = appsv1.ControllerRevisionHashLabelKey // "controller-revision-hash"
)

// set is what planning needs of a StatefulSet.
type set struct {
	start, replicas int // ordinals [start, start+replicas) are wanted
	parallel        bool
	rolling         bool // RollingUpdate (else OnDelete)
	partition       int  // ordinals >= start+partition are rolled
	updateRev       string
	minReady        time.Duration
}

// step is one write: create the pod of an ordinal, or delete a pod.
type step struct {
	create int // ordinal to create, when del is nil
	del    *corev1.Pod
}

func terminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// healthy is Kubernetes' isRunningAndReady, for a pod not on its way out.
func healthy(p *corev1.Pod) bool {
	return !terminating(p) && p.Status.Phase == corev1.PodRunning && pod.Ready(p.Status)
}

// plan returns the writes that move the pods (by ordinal) toward the set.
func plan(s set, pods map[int]*corev1.Pod) []step {
	monotonic := !s.parallel
	var steps []step
	end := s.start + s.replicas
	for ord := s.start; ord < end; ord++ {
		p := pods[ord]
		switch {
		case p == nil:
			steps = append(steps, step{create: ord})
			if monotonic {
				return steps
			}
			continue
		case finished(p) && !terminating(p):
			steps = append(steps, step{del: p}) // comes back with the same name
			if monotonic {
				return steps
			}
			continue
		}
		if monotonic && !healthy(p) {
			return steps // wait for this one before the next
		}
	}
	var condemned []int
	for ord := range pods {
		if ord < s.start || ord >= end {
			condemned = append(condemned, ord)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(condemned)))
	// OrderedReady scale-down halts at an unhealthy pod unless it is the first
	// unhealthy one (lowest ordinal, wanted pods before condemned), as Kubernetes does
	var firstUnhealthy *corev1.Pod
	for ord := s.start; ord < end && firstUnhealthy == nil; ord++ {
		if p := pods[ord]; p != nil && !healthy(p) {
			firstUnhealthy = p
		}
	}
	for i := len(condemned) - 1; i >= 0 && firstUnhealthy == nil; i-- {
		if p := pods[condemned[i]]; !healthy(p) {
			firstUnhealthy = p
		}
	}
	for _, ord := range condemned {
		p := pods[ord]
		if terminating(p) {
			if monotonic {
				return steps
			}
			continue
		}
		if monotonic && !healthy(p) && p != firstUnhealthy {
			return steps
		}
		steps = append(steps, step{del: p})
		if monotonic {
			return steps
		}
	}
	if !s.rolling || len(steps) > 0 {
		return steps
	}
	for ord := end - 1; ord >= s.start+s.partition; ord-- {
		p := pods[ord]
		if p == nil {
			return steps
		}
		if p.Labels[LabelRevision] != s.updateRev && !terminating(p) {
			return append(steps, step{del: p})
		}
		if !healthy(p) {
			return steps // one at a time, each Ready before the next
		}
	}
	return steps
}

// counts are the status numbers of a set's pods; wait is when the next pod
// becomes available (minReadySeconds).
type counts struct {
	replicas, ready, available, current, updated int32
	wait                                         time.Duration
}

func count(s set, currentRev string, pods map[int]*corev1.Pod, now time.Time) counts {
	var c counts
	for _, p := range pods {
		if terminating(p) {
			continue
		}
		c.replicas++
		if healthy(p) {
			c.ready++
			if ok, w := available(p, s.minReady, now); ok {
				c.available++
			} else if w > 0 && (c.wait == 0 || w < c.wait) {
				c.wait = w
			}
		}
		if p.Labels[LabelRevision] == currentRev {
			c.current++
		}
		if p.Labels[LabelRevision] == s.updateRev {
			c.updated++
		}
	}
	return c
}

func available(p *corev1.Pod, minReady time.Duration, now time.Time) (bool, time.Duration) {
	if minReady <= 0 {
		return true, 0
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			at := c.LastTransitionTime.Add(minReady)
			if now.Before(at) {
				return false, at.Sub(now)
			}
			return true, 0
		}
	}
	return false, 0
}

// podName is the name of a set's pod at ordinal.
func podName(setName string, ord int) string { return fmt.Sprintf("%s-%d", setName, ord) }
