package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Scheduler binds unscheduled pods of the default scheduler.
type Scheduler struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	loop     *queue.Loop
	recorder record.EventRecorder
	mu       sync.Mutex
	assumed  map[types.UID]string // bound by us, not yet seen bound in the cache
}

func mine(p *corev1.Pod) bool {
	return p.Spec.NodeName == "" && p.DeletionTimestamp == nil &&
		(p.Spec.SchedulerName == "" || p.Spec.SchedulerName == corev1.DefaultSchedulerName) &&
		p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// New wires the scheduler to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Scheduler {
	s := &Scheduler{client: client, recorder: recorder, assumed: map[types.UID]string{}}
	s.loop = queue.New("scheduler", s.sync, log)
	podInf, nodeInf := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	s.pods, s.nodes = podInf.Lister(), nodeInf.Lister()
	s.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced}
	onPod := func(o any) {
		if p, ok := o.(*corev1.Pod); ok {
			if p.Spec.NodeName != "" {
				s.mu.Lock()
				delete(s.assumed, p.UID)
				s.mu.Unlock()
			}
			if mine(p) {
				s.loop.AddObject(p)
			}
		}
	}
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }})
	retry := func(any) { s.retryPending() }
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: retry, UpdateFunc: func(_, o any) { retry(o) }})
	return s
}

// Run runs the scheduler until ctx ends.
func (s *Scheduler) Run(ctx context.Context, workers int) { s.loop.Run(ctx, workers, s.synced...) }

func (s *Scheduler) retryPending() {
	pods, _ := s.pods.List(labels.Everything())
	for _, p := range pods {
		if mine(p) {
			s.loop.AddObject(p)
		}
	}
}

// load counts the pods each node runs, including bindings not yet in the cache,
// and the host ports they hold.
func (s *Scheduler) load() (map[string]int, map[string][]HostPort) {
	out, ports := map[string]int{}, map[string][]HostPort{}
	pods, _ := s.pods.List(labels.Everything())
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		node := p.Spec.NodeName
		if node == "" {
			node = s.assumed[p.UID] // bound, not in the cache yet
		} else {
			out[node]++
		}
		if node != "" {
			ports[node] = append(ports[node], HostPorts(p)...)
		}
	}
	for _, n := range s.assumed {
		out[n]++
	}
	return out, ports
}

func (s *Scheduler) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	p, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !mine(p) {
		return err
	}
	s.mu.Lock()
	_, pending := s.assumed[p.UID]
	s.mu.Unlock()
	if pending {
		return nil
	}
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	load, ports := s.load()
	node, why := Pick(p, nodes, load, ports)
	if node == "" {
		s.recorder.Event(p, corev1.EventTypeWarning, "FailedScheduling", why)
		s.loop.AddAfter(key, 5*time.Second)
		return nil
	}
	err = s.client.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: p.UID},
		Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound by someone else, or gone
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.assumed[p.UID] = node
	s.mu.Unlock()
	s.recorder.Eventf(p, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", ns, name, node)
	return nil
}
