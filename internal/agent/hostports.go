package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The kubelet's words for a pod rejected over its host ports.
const (
	reasonNodePorts  = "NodePorts"
	messageNodePorts = "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
)

// hostPort is one host port a pod asks for; ip "0.0.0.0" is every address.
type hostPort struct {
	proto corev1.Protocol
	ip    string
	port  int32
}

func (a hostPort) conflicts(b hostPort) bool {
	return a.proto == b.proto && a.port == b.port && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
}

// hostPorts lists the host ports of p's containers and sidecar (restartable
// init) containers, as the kubelet's admission counts them.
func hostPorts(p *corev1.Pod) []hostPort {
	var out []hostPort
	add := func(c corev1.Container) {
		for _, cp := range c.Ports {
			if cp.HostPort <= 0 {
				continue
			}
			hp := hostPort{proto: cp.Protocol, ip: cp.HostIP, port: cp.HostPort}
			if hp.proto == "" {
				hp.proto = corev1.ProtocolTCP
			}
			if hp.ip == "" {
				hp.ip = "0.0.0.0"
			}
			out = append(out, hp)
		}
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for _, c := range p.Spec.Containers {
		add(c)
	}
	return out
}

// verdict is what the agent does with a pod it is told about.
type verdict int

const (
	admitPod  verdict = iota // run it (or let the runtime stop it)
	rejectPod                // fail it: it asks for a host port another pod holds
	skipPod                  // rejected before: nothing to run
)

// portAdmission is the kubelet's NodePorts admission: a pod that asks for a
// host port (protocol, address) an admitted pod of this node still holds is
// not run but failed, as the kubelet rejects it. A pod holds its ports from
// its admission until it finishes or goes away.
type portAdmission struct {
	mu       sync.Mutex
	admitted map[types.UID][]hostPort
	rejected map[types.UID]bool
}

func newPortAdmission() *portAdmission {
	return &portAdmission{admitted: map[types.UID][]hostPort{}, rejected: map[types.UID]bool{}}
}

// seed admits a pod that was running before the agent started, whatever it holds.
func (h *portAdmission) seed(p *corev1.Pod) {
	if p.Status.Phase == corev1.PodRunning {
		h.mu.Lock()
		h.admitted[p.UID] = hostPorts(p)
		h.mu.Unlock()
	}
}

// decide admits, rejects or skips p.
func (h *portAdmission) decide(p *corev1.Pod) verdict {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.rejected[p.UID]:
		return skipPod
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		delete(h.admitted, p.UID)
		return admitPod
	}
	if _, ok := h.admitted[p.UID]; ok || p.DeletionTimestamp != nil {
		return admitPod
	}
	want := hostPorts(p)
	for _, held := range h.admitted {
		for _, a := range held {
			for _, b := range want {
				if a.conflicts(b) {
					h.rejected[p.UID] = true
					return rejectPod
				}
			}
		}
	}
	h.admitted[p.UID] = want
	return admitPod
}

// forget drops a pod that went away.
func (h *portAdmission) forget(uid types.UID) {
	h.mu.Lock()
	delete(h.admitted, uid)
	delete(h.rejected, uid)
	h.mu.Unlock()
}

// rejectForPorts writes p's rejection as the kubelet does: phase Failed,
// reason NodePorts, and a Warning event.
func (a *Agent) rejectForPorts(ctx context.Context, p *corev1.Pod) {
	a.o.Log.Info("pod rejected: host port in use", "pod", p.Namespace+"/"+p.Name)
	now := metav1.Now()
	ev := noRunEvent(p, a.o.NodeName, messageNodePorts, now.Time)
	ev.Reason = reasonNodePorts
	if _, err := a.client.CoreV1().Events(p.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		a.o.Log.Warn("pod rejection event not written", "pod", p.Namespace+"/"+p.Name, "err", err)
	}
	for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
		cur, err := a.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && cur.UID != p.UID {
			return
		}
		if err == nil {
			cur.Status = rejectedStatus(cur.Status, now)
			if _, err = a.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err == nil {
				return
			}
		}
		a.o.Log.Warn("pod rejection not written", "pod", p.Namespace+"/"+p.Name, "err", err)
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// rejectedStatus is the status the kubelet gives a pod it rejects: Failed,
// with the reason and message, keeping the conditions others wrote.
func rejectedStatus(st corev1.PodStatus, now metav1.Time) corev1.PodStatus {
	out := corev1.PodStatus{Phase: corev1.PodFailed, Reason: reasonNodePorts, Message: messageNodePorts, QOSClass: st.QOSClass,
		StartTime: st.StartTime, Conditions: st.Conditions}
	if out.StartTime == nil {
		out.StartTime = &now
	}
	return out
}

// admitPorts says whether the runtime gets p: a pod rejected over its host
// ports is failed instead (once), and its deletion confirmed.
func (a *Agent) admitPorts(ctx context.Context, h *portAdmission, p *corev1.Pod) bool {
	switch h.decide(p) {
	case rejectPod:
		go a.rejectForPorts(ctx, p)
		return false
	case skipPod:
		if p.DeletionTimestamp != nil {
			a.finishDeletion(ctx, p.UID, p.Namespace, p.Name)
		}
		return false
	}
	return true
}
