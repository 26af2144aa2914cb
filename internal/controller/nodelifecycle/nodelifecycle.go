// Package nodelifecycle watches node heartbeats (coordination.k8s.io Leases in
// kube-node-lease, or the Ready condition's heartbeat): a node silent for longer
// than the grace period gets Ready=Unknown and its pods Ready=False, so endpoints
// move away within seconds; pods bound to a deleted node are deleted.
//
// Silence is measured on the controller's own clock from when it saw a heartbeat
// change (Kubernetes' probeTimestamp), not from the heartbeat's timestamp: a
// restarted controller gives every node a full grace period, and clock skew
// between nodes does not matter. Time the controller could not reach the API does
// not count either: a node is only marked after a live read of its Lease, and the
// grace period starts again when the API answers after failing, so an API or etcd
// outage longer than the grace period does not turn every node NotReady at its end.
package nodelifecycle

import (
	"context"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// LeaseNamespace holds node heartbeat Leases.
const LeaseNamespace = corev1.NamespaceNodeLease

// Controller is the node lifecycle controller.
type Controller struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	leases   coordinationlisters.LeaseLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	grace    time.Duration
	now      func() time.Time

	mu      sync.Mutex
	seen    map[string]observed // by node name
	apiDown bool                // the last live read failed
	contact time.Time           // when the API answered again after failing
}

// observed is a node's last heartbeat as the controller saw it, and when.
type observed struct {
	beat, at time.Time
}

// New wires the controller; grace is --node-monitor-grace-period.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, grace time.Duration, log *slog.Logger) *Controller {
	c := &Controller{client: client, recorder: recorder, grace: grace, now: time.Now, seen: map[string]observed{}}
	c.loop = queue.New("node-lifecycle", c.sync, log)
	nInf, lInf, pInf := factory.Core().V1().Nodes(), factory.Coordination().V1().Leases(), factory.Core().V1().Pods()
	c.nodes, c.leases, c.pods = nInf.Lister(), lInf.Lister(), pInf.Lister()
	c.synced = []cache.InformerSynced{nInf.Informer().HasSynced, lInf.Informer().HasSynced, pInf.Informer().HasSynced}
	byName := func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		switch x := o.(type) {
		case *corev1.Node:
			c.loop.Add(x.Name)
		case *coordinationv1.Lease:
			if x.Namespace == LeaseNamespace {
				c.loop.Add(x.Name)
			}
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: byName, UpdateFunc: func(_, o any) { byName(o) }, DeleteFunc: byName}
	_, _ = nInf.Informer().AddEventHandler(h)
	_, _ = lInf.Informer().AddEventHandler(h)
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced...) }

// LastHeartbeat is when a node was last heard of: its Lease's renewTime, its Ready
// condition's heartbeat, or (never heard of) its creation.
func LastHeartbeat(n *corev1.Node, l *coordinationv1.Lease) time.Time {
	t := n.CreationTimestamp.Time
	if l != nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(t) {
		t = l.Spec.RenewTime.Time
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.LastHeartbeatTime.After(t) {
			t = cond.LastHeartbeatTime.Time
		}
	}
	return t
}

func (c *Controller) podsOn(node string) []*corev1.Pod {
	all, _ := c.pods.List(labels.Everything())
	var out []*corev1.Pod
	for _, p := range all {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out
}

// silence is how long the node has been silent as this controller can tell: since
// it saw a newer beat, or since the API answered again after an outage. An older
// beat (the cache behind a live read) changes nothing.
func (c *Controller) silence(name string, beat, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.seen[name]
	if !ok || beat.After(o.beat) {
		o = observed{beat: beat, at: now}
		c.seen[name] = o
	}
	since := o.at
	if c.contact.After(since) {
		since = c.contact
	}
	return now.Sub(since)
}

// reached records whether a live read of the API worked.
func (c *Controller) reached(ok bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok && c.apiDown {
		c.contact = now
	}
	c.apiDown = !ok
}

func (c *Controller) sync(ctx context.Context, name string) error {
	n, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.seen, name)
		c.mu.Unlock()
		// The node is gone: its pods cannot run anywhere.
		for _, p := range c.podsOn(name) {
			zero := int64(0)
			if err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	lease, _ := c.leases.Leases(LeaseNamespace).Get(name)
	if c.wait(name, LastHeartbeat(n, lease)) {
		return nil
	}
	// The cache says silent; the cache may be behind (a watch resuming after an
	// outage), so ask the API itself before marking.
	live, err := c.client.CoordinationV1().Leases(LeaseNamespace).Get(ctx, name, metav1.GetOptions{})
	c.reached(err == nil || apierrors.IsNotFound(err), c.now())
	switch {
	case err == nil:
		lease = live
	case !apierrors.IsNotFound(err):
		return err
	}
	if c.wait(name, LastHeartbeat(n, lease)) {
		return nil
	}
	if err := c.markUnknown(ctx, n); err != nil {
		return err
	}
	for _, p := range c.podsOn(name) {
		if err := c.markPodNotReady(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// wait reports whether the node is still within its grace period, and if so
// looks at it again when the period would end.
func (c *Controller) wait(name string, beat time.Time) bool {
	silent := c.silence(name, beat, c.now())
	if silent > c.grace {
		return false
	}
	c.loop.AddAfter(name, c.grace-silent+10*time.Millisecond)
	return true
}

func (c *Controller) markUnknown(ctx context.Context, n *corev1.Node) error {
	cp := n.DeepCopy()
	now := metav1.NewTime(c.now())
	found := false
	for i := range cp.Status.Conditions {
		cond := &cp.Status.Conditions[i]
		if cond.Type != corev1.NodeReady {
			continue
		}
		found = true
		if cond.Status == corev1.ConditionUnknown {
			return nil
		}
		cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", now
	}
	if !found {
		cp.Status.Conditions = append(cp.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.", LastTransitionTime: now})
	}
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: n.Name, UID: n.UID}, corev1.EventTypeNormal, "NodeNotReady",
		"Node %s status is now: NodeNotReady", n.Name)
	return nil
}

func (c *Controller) markPodNotReady(ctx context.Context, p *corev1.Pod) error {
	cp := p.DeepCopy()
	changed := false
	for i := range cp.Status.Conditions {
		cond := &cp.Status.Conditions[i]
		if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionFalse {
			cond.Status, cond.LastTransitionTime = corev1.ConditionFalse, metav1.NewTime(c.now())
			changed = true
		}
	}
	if !changed {
		return nil
	}
	_, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
