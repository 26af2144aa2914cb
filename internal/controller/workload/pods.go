// Package workload runs the ReplicaSet, ReplicationController and Deployment
// controllers: ReplicaSets and ReplicationControllers keep their number of pods
// (one shared keeper), Deployments roll ReplicaSets over with maxSurge and
// maxUnavailable. The arithmetic is in pure functions; controllers apply it.
package workload

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// active reports whether a pod counts toward its ReplicaSet's replicas.
func active(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func ready(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// available reports whether a pod has been ready for minReady seconds at now, and
// if not yet, how long until it will be.
func available(p *corev1.Pod, minReady int32, now time.Time) (bool, time.Duration) {
	c := readyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReady <= 0 {
		return true, 0
	}
	at := c.LastTransitionTime.Add(time.Duration(minReady) * time.Second)
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

// deletionOrder sorts pods so the ones to delete first come first, as Kubernetes
// ranks them: unscheduled before scheduled, pending before running, not ready
// before ready, younger before older.
func deletionOrder(pods []*corev1.Pod) {
	rank := func(p *corev1.Pod) []int {
		r := []int{1, 2, 1}
		if p.Spec.NodeName == "" {
			r[0] = 0
		}
		switch p.Status.Phase {
		case corev1.PodPending:
			r[1] = 0
		case corev1.PodUnknown:
			r[1] = 1
		}
		if !ready(p) {
			r[2] = 0
		}
		return r
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := rank(pods[i]), rank(pods[j])
		for k := range a {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return pods[j].CreationTimestamp.Before(&pods[i].CreationTimestamp)
	})
}
