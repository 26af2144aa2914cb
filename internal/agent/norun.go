package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// noRunReason is the reason of the condition and event a pod gets when this
// node cannot run it.
const noRunReason = "PodRuntimeUnavailable"

// noRunCondition is the condition saying why p does not run here, and whether
// p needs it written: a pending pod, not being deleted, that lacks it.
func noRunCondition(p *corev1.Pod, msg string, now time.Time) (corev1.PodCondition, bool) {
	c := corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse,
		Reason: noRunReason, Message: msg, LastTransitionTime: metav1.NewTime(now)}
	if p.DeletionTimestamp != nil || (p.Status.Phase != "" && p.Status.Phase != corev1.PodPending) {
		return c, false
	}
	for _, have := range p.Status.Conditions {
		if have.Type == c.Type && have.Status == c.Status && have.Reason == c.Reason && have.Message == c.Message {
			return c, false
		}
	}
	return c, true
}

// noRunEvent is the Warning event that goes with the condition, from the
// kubelet of node as kubectl describe shows it.
func noRunEvent(p *corev1.Pod, node, msg string, now time.Time) *corev1.Event {
	t := metav1.NewTime(now)
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", p.Name, now.UnixNano()), Namespace: p.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name,
			UID: p.UID, ResourceVersion: p.ResourceVersion},
		Reason: noRunReason, Message: msg, Type: corev1.EventTypeWarning, Count: 1,
		FirstTimestamp: t, LastTimestamp: t, Source: corev1.EventSource{Component: "kubelet", Host: node},
		ReportingController: "kubelet", ReportingInstance: node,
	}
}

// reportNoRun tells each pending pod bound to this node, when the node cannot
// run pods (a.noRun), that it will not run and why: one status write (the
// condition) and one Warning event per pod.
func (a *Agent) reportNoRun(ctx context.Context, inf cache.SharedIndexInformer) {
	if a.noRun == "" {
		return
	}
	var mu sync.Mutex
	done := map[types.UID]bool{}
	report := func(o any) {
		p, ok := o.(*corev1.Pod)
		if !ok || isMirror(p) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if done[p.UID] {
			return
		}
		if a.markNoRun(ctx, p) {
			done[p.UID] = true
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: report, UpdateFunc: func(_, o any) { report(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				mu.Lock()
				delete(done, p.UID)
				mu.Unlock()
			}
		}})
}

// markNoRun writes the condition and records the event if p needs them; it
// reports whether p is done with (written, or needing nothing).
func (a *Agent) markNoRun(ctx context.Context, p *corev1.Pod) bool {
	now := a.o.Now()
	c, write := noRunCondition(p, a.noRun, now)
	if !write {
		return true
	}
	body, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{c}}})
	if err != nil {
		return false
	}
	_, err = a.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		if ctx.Err() == nil {
			a.o.Log.Warn("writing why the pod does not run failed", "pod", p.Namespace+"/"+p.Name, "err", err)
		}
		return false
	}
	_, err = a.client.CoreV1().Events(p.Namespace).Create(ctx, noRunEvent(p, a.o.NodeName, a.noRun, now), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
		a.o.Log.Warn("recording why the pod does not run failed", "pod", p.Namespace+"/"+p.Name, "err", err)
	}
	return true
}
