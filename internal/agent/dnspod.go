package agent

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// The agent's cluster DNS server shows in the API as a mirror pod, as a
// kubelet shows its static pods: kube-system/svcnet-dns-NODE, labelled
// k8s-app=kube-dns like the DNS pods of other clusters (`kubectl get pods -n
// kube-system -l k8s-app=kube-dns`), host network, Running and Ready while the
// agent serves DNS. The agent never runs it from the API; deleted, it comes back.

const (
	// mirrorAnnotation marks a pod the API only mirrors (kubelet's kubernetes.io/config.mirror).
	mirrorAnnotation = "kubernetes.io/config.mirror"
	// dnsPodPeriod is how often the agent checks its DNS pod is there and current.
	dnsPodPeriod = 10 * time.Second
	// dnsPodImage names what runs the DNS server: the agent itself.
	dnsPodImage = "svcnet/agent:" + Version
)

// isMirror says whether a pod is a mirror of something the agent runs itself.
func isMirror(p *corev1.Pod) bool {
	_, ok := p.Annotations[mirrorAnnotation]
	return ok
}

// dnsPodName is the name of the node's DNS mirror pod.
func dnsPodName(node string) string { return "svcnet-dns-" + node }

// dnsPod is the mirror pod of the node's DNS server listening on listen.
func dnsPod(node string, nodeUID types.UID, listen string) *corev1.Pod {
	port := int32(53)
	if _, p, err := net.SplitHostPort(listen); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			port = int32(n)
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: dnsPodName(node), Namespace: metav1.NamespaceSystem,
			Labels:          map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "svcnet-dns"},
			Annotations:     map[string]string{mirrorAnnotation: Version, "kubernetes.io/config.source": "svcnet-agent"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node, UID: nodeUID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: node, HostNetwork: true, DNSPolicy: corev1.DNSDefault,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "dns", Image: dnsPodImage, ImagePullPolicy: corev1.PullIfNotPresent,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile, TerminationMessagePath: corev1.TerminationMessagePathDefault,
				Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: port, Protocol: corev1.ProtocolUDP},
					{Name: "dns-tcp", ContainerPort: port, Protocol: corev1.ProtocolTCP}}}}},
	}
}

// dnsPodStatus is the status of the DNS mirror pod serving since started.
func dnsPodStatus(nodeIP string, started time.Time, prev corev1.PodStatus) corev1.PodStatus {
	at := metav1.NewTime(started.Truncate(time.Second))
	st := corev1.PodStatus{Phase: corev1.PodRunning, HostIP: nodeIP, HostIPs: []corev1.HostIP{{IP: nodeIP}},
		PodIP: nodeIP, PodIPs: []corev1.PodIP{{IP: nodeIP}}, StartTime: &at, QOSClass: corev1.PodQOSBestEffort,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "dns", Image: dnsPodImage, ImageID: dnsPodImage, Ready: true, Started: ptr.To(true),
			ContainerID: "svcnet://dns", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}}}}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: at}
		for _, old := range prev.Conditions {
			if old.Type == t && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	return st
}

// keepDNSPod keeps the node's DNS mirror pod in the API until ctx ends, then
// deletes it (the DNS server stops with the agent).
func (a *Agent) keepDNSPod(ctx context.Context, log *slog.Logger) {
	started := a.o.Now()
	pods := a.client.CoreV1().Pods(metav1.NamespaceSystem)
	name := dnsPodName(a.o.NodeName)
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := a.syncDNSPod(ctx, started); err != nil && ctx.Err() == nil {
			log.Warn("the DNS mirror pod could not be written", "pod", metav1.NamespaceSystem+"/"+name, "err", err)
		}
	}, dnsPodPeriod)
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	zero := int64(0)
	if err := pods.Delete(dctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		log.Warn("deleting the DNS mirror pod failed", "err", err)
	}
}

// syncDNSPod creates the DNS mirror pod, confirms its deletion (it comes back
// at the next sync) or brings its status up to date.
func (a *Agent) syncDNSPod(ctx context.Context, started time.Time) error {
	pods := a.client.CoreV1().Pods(metav1.NamespaceSystem)
	p, err := pods.Get(ctx, dnsPodName(a.o.NodeName), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.o.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p, err = pods.Create(ctx, dnsPod(a.o.NodeName, node.UID, a.o.DNSListen), metav1.CreateOptions{}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if p.DeletionTimestamp != nil {
		a.finishDeletion(ctx, p.UID, p.Namespace, p.Name)
		return nil
	}
	st := dnsPodStatus(a.o.NodeIP, started, p.Status)
	if apiequality.Semantic.DeepEqual(st, p.Status) {
		return nil
	}
	p.Status = st
	_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}
