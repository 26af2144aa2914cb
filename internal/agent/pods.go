package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/cri"
	"github.com/svcnet/svcnet/internal/informer"
	"github.com/svcnet/svcnet/internal/pod"
	"github.com/svcnet/svcnet/internal/podlogs"
	"github.com/svcnet/svcnet/internal/podnet"
	"github.com/svcnet/svcnet/internal/runtime"
)

// podInformer watches the pods bound to this node.
func (a *Agent) podInformer() (informers.SharedInformerFactory, cache.SharedIndexInformer) {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTransform(informer.Strip), informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.o.NodeName).String()
	}))
	return factory, factory.Core().V1().Pods().Informer()
}

// finishDeletion confirms a pod's deletion once nothing of it runs here.
func (a *Agent) finishDeletion(ctx context.Context, uid types.UID, namespace, name string) {
	zero := int64(0)
	err := a.client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero,
		Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		a.o.Log.Warn("finishing pod deletion failed", "pod", namespace+"/"+name, "err", err)
	}
}

// finishDeletions is the agent without a pod runtime (not root): it runs no
// containers, so like a kubelet whose containers have all exited it confirms
// every deletion at once.
func (a *Agent) finishDeletions(ctx context.Context) {
	factory, inf := a.podInformer()
	finish := func(o any) {
		if p, ok := o.(*corev1.Pod); ok && p.DeletionTimestamp != nil {
			a.finishDeletion(ctx, p.UID, p.Namespace, p.Name)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: finish, UpdateFunc: func(_, o any) { finish(o) }})
	a.reportNoRun(ctx, inf) // say on each pod why it does not run (norun.go)
	factory.Start(ctx.Done())
}

// waitPodCIDR waits until the control plane has given the node its pod CIDR.
func (a *Agent) waitPodCIDR(ctx context.Context, log *slog.Logger) (string, error) {
	for i := 0; ; i++ {
		n, err := a.client.CoreV1().Nodes().Get(ctx, a.o.NodeName, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			return n.Spec.PodCIDR, nil
		}
		if i == 10 {
			log.Info("waiting for the control plane to assign this node a pod CIDR (--cluster-cidr)")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// podRuntime is what the agent needs of a pod runtime: the process runtime
// (internal/runtime) or the CRI runtime (internal/cri).
type podRuntime interface {
	Sync(p *corev1.Pod)
	Remove(uid types.UID)
	Status(uid types.UID) (corev1.PodStatus, string, bool)
	Shutdown(grace time.Duration)
	Reconcile(ctx context.Context, keep func(uid types.UID) bool) error
	Logs(ctx context.Context, namespace, podName, container string, o podlogs.Options, w io.Writer) error
}

var (
	_ podRuntime = (*runtime.Runtime)(nil)
	_ podRuntime = (*cri.Runtime)(nil)
)

// apiObjects reads ConfigMaps and Secrets for pods' env and volumes from the
// API, and requests their service account tokens.
type apiObjects struct {
	a      *Agent
	tokens *tokenCache
}

func (o apiObjects) Token(p *corev1.Pod, audience string, seconds int64) (string, error) {
	return o.tokens.token(p, audience, seconds)
}

func (o apiObjects) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return o.a.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (o apiObjects) Secret(ns, name string) (*corev1.Secret, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return o.a.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

// podRuntimeOptions are what both runtimes get from the agent.
type podRuntimeOptions struct {
	objects    apiObjects
	host       pod.HostResolv
	serviceEnv func(ns string, links bool) []corev1.EnvVar
	changed    func(uid types.UID)
	terminated func(uid types.UID, ns, name string)
	drain      func(ctx context.Context, ip string) // SIGTERM waits for it (drain.go)
}

// startPods runs the pod runtime: pods bound to this node run as containers
// (CRI) or processes in their own network namespaces, and their status goes
// back to the API. The returned function stops the runtime: the process
// runtime stops its pods, CRI pods keep running in the container runtime.
func (a *Agent) startPods(ctx context.Context, log *slog.Logger) (podRuntime, func(), error) {
	cidr, err := a.waitPodCIDR(ctx, log)
	if err != nil {
		return nil, nil, err
	}
	if a.o.ContainerRuntime != RuntimeCRI || a.o.RuntimeEndpoint == "" {
		// svcnet's pod network: its bridge is made before any pod (and the
		// proxy) starts, so the proxy sets route_localnet there in time.
		if err := podnet.EnsureBridge(podnet.DefaultBridge); err != nil {
			return nil, nil, err
		}
		a.podBridge = podnet.DefaultBridge
	}
	root := a.o.RootDir
	host, err := pod.ReadHostResolv(a.o.HostResolvConf)
	if err != nil {
		log.Warn("node resolv.conf unreadable; pods with dnsPolicy Default get no resolvers", "err", err)
	}
	a.expectDrainPaths()
	otherNodes := a.watchOtherNodes(ctx)
	factory, inf := a.podInformer()
	svcFactory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTransform(informer.Strip))
	services := svcFactory.Core().V1().Services().Lister()
	svcInf := svcFactory.Core().V1().Services().Informer()
	status := newStatusWriter(a, inf.GetStore())
	base := podRuntimeOptions{host: host, objects: apiObjects{a: a, tokens: newTokenCache(a)},
		serviceEnv: func(ns string, links bool) []corev1.EnvVar { return serviceEnv(services, ns, links) },
		changed:    status.mark,
		terminated: func(uid types.UID, ns, name string) { a.finishDeletion(ctx, uid, ns, name) },
		drain:      func(ctx context.Context, ip string) { a.drainPod(ctx, ip, otherNodes) }}
	var rt podRuntime
	var stop func()
	switch a.o.ContainerRuntime {
	case RuntimeCRI:
		svc, err := a.connectCRI(ctx, cidr, log)
		if err != nil {
			return nil, nil, err
		}
		crt, err := a.newCRIRuntime(ctx, svc, base)
		if err != nil {
			svc.stop()
			return nil, nil, err
		}
		rt = crt
		stop = func() {
			crt.Shutdown(0)
			svc.stop()
		}
	default:
		net, err := podnet.New(podnet.Config{PodCIDR: cidr, DataDir: filepath.Join(root, "cni"), PluginDirs: a.o.CNIPluginDirs})
		if err != nil {
			return nil, nil, err
		}
		binDir := filepath.Join(root, "bin")
		if err := linkSelf(binDir); err != nil {
			return nil, nil, err
		}
		prt, err := runtime.New(runtime.Options{Root: root, Net: net, ClusterDNS: a.o.ClusterDNS, Zone: a.o.DNSZone, HostResolv: host,
			ServiceEnv: base.serviceEnv, Objects: base.objects, Changed: base.changed, Terminated: base.terminated, Drain: base.drain,
			BinDir: binDir, Log: log, Now: a.o.Now})
		if err != nil {
			return nil, nil, err
		}
		rt = prt
		stop = func() { prt.Shutdown(5 * time.Second) }
	}
	status.rt = rt
	factory.Start(ctx.Done())
	svcFactory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, svcInf.HasSynced) {
		stop()
		return nil, nil, ctx.Err()
	}
	exists := map[types.UID]bool{}
	ports := newPortAdmission() // the kubelet's host port admission (hostports.go)
	for _, o := range inf.GetStore().List() {
		exists[o.(*corev1.Pod).UID] = true
		ports.seed(o.(*corev1.Pod))
	}
	if err := rt.Reconcile(ctx, func(uid types.UID) bool { return exists[uid] }); err != nil {
		stop()
		return nil, nil, fmt.Errorf("reconcile pods of a previous run: %w", err)
	}
	sync := func(o any) {
		if p, ok := o.(*corev1.Pod); ok && !isMirror(p) && a.admitPorts(ctx, ports, p) { // a mirror pod's server is the agent's own
			rt.Sync(p)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sync,
		UpdateFunc: func(_, o any) { sync(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				ports.forget(p.UID)
				rt.Remove(p.UID)
			}
		},
	})
	go status.run(ctx)
	log.Info("pod runtime started", "runtime", a.o.ContainerRuntime, "podCIDR", cidr, "root", root)
	return rt, stop, nil
}

// serviceEnv lists the Services a container gets variables for.
func serviceEnv(l listersv1.ServiceLister, ns string, links bool) []corev1.EnvVar {
	var svcs []*corev1.Service
	if links {
		svcs, _ = l.Services(ns).List(labels.Everything())
	}
	if k, err := l.Services("default").Get("kubernetes"); err == nil {
		svcs = append(svcs, k)
	}
	return pod.ServiceEnv(ns, links, svcs)
}

// linkSelf puts a `svcnet` link to this binary in dir, which containers have
// first on their PATH: manifests can run `svcnet agnhost ...` with nothing installed.
func linkSelf(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, "svcnet")
	_ = os.Remove(link)
	return os.Symlink(self, link)
}

// statusWriter writes pod status to the API as soon as the runtime reports a
// change: a few workers drain a set of dirty pods, skipping unchanged status.
type statusWriter struct {
	a       *Agent
	rt      podRuntime
	pods    cache.Store
	mu      sync.Mutex
	dirty   map[types.UID]bool
	since   map[types.UID]time.Time // first unwritten change, for the write latency log
	busy    map[types.UID]bool      // being written: one write per pod at a time, so none lands out of order
	written map[types.UID]corev1.PodStatus
	wake    chan struct{}
}

func newStatusWriter(a *Agent, pods cache.Store) *statusWriter {
	return &statusWriter{a: a, pods: pods, dirty: map[types.UID]bool{}, since: map[types.UID]time.Time{}, busy: map[types.UID]bool{}, written: map[types.UID]corev1.PodStatus{}, wake: make(chan struct{}, 1)}
}

func (s *statusWriter) mark(uid types.UID) {
	s.mu.Lock()
	s.dirty[uid] = true
	if _, ok := s.since[uid]; !ok {
		s.since[uid] = time.Now()
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *statusWriter) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				uid, ok := s.next()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-s.wake:
						continue
					}
				}
				err := s.write(ctx, uid)
				s.done(uid)
				if err != nil && ctx.Err() == nil {
					s.a.o.Log.Warn("pod status update failed, retrying", "uid", uid, "err", err)
					time.AfterFunc(time.Second, func() { s.mark(uid) })
				}
			}
		}()
	}
	wg.Wait()
}

func (s *statusWriter) next() (types.UID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid := range s.dirty {
		if s.busy[uid] {
			continue
		}
		delete(s.dirty, uid)
		s.busy[uid] = true
		if len(s.dirty) > 0 {
			select {
			case s.wake <- struct{}{}: // let another worker take the rest
			default:
			}
		}
		return uid, true
	}
	return "", false
}

// done ends a write; a change that came meanwhile is written next.
func (s *statusWriter) done(uid types.UID) {
	s.mu.Lock()
	delete(s.busy, uid)
	again := s.dirty[uid]
	s.mu.Unlock()
	if again {
		s.mark(uid)
	}
}

// write patches one pod's status if it differs from what was last written.
func (s *statusWriter) write(ctx context.Context, uid types.UID) error {
	forget := func() {
		s.mu.Lock()
		delete(s.written, uid)
		delete(s.since, uid)
		s.mu.Unlock()
	}
	st, key, ok := s.rt.Status(uid)
	if !ok {
		forget()
		return nil
	}
	o, exists, _ := s.pods.GetByKey(key)
	if !exists || o.(*corev1.Pod).UID != uid { // gone, or a new pod of the same name
		forget()
		return nil
	}
	current := o.(*corev1.Pod)
	st.HostIP = s.a.o.NodeIP
	st.HostIPs = []corev1.HostIP{{IP: s.a.o.NodeIP}}
	st.Conditions = withOthers(st.Conditions, current.Status.Conditions)
	s.mu.Lock()
	prev, seen := s.written[uid]
	s.mu.Unlock()
	if seen && apiequality.Semantic.DeepEqual(prev, st) {
		s.mu.Lock()
		delete(s.since, uid) // nothing to write: the change this was timed from is out
		s.mu.Unlock()
		return nil
	}
	body, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	_, err = s.a.client.CoreV1().Pods(current.Namespace).Patch(ctx, current.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err == nil {
		s.mu.Lock()
		s.written[uid] = st
		since := s.since[uid]
		delete(s.since, uid)
		s.mu.Unlock()
		s.a.o.Log.Debug("pod status written", "pod", current.Namespace+"/"+current.Name, "phase", st.Phase,
			"ready", pod.Ready(st), "after", time.Since(since))
	}
	return err
}

// withOthers replaces the conditions the kubelet does not own in computed by
// those the API holds now (a merge patch replaces the whole list: a readiness
// gate set meanwhile must not be written back to its older value).
func withOthers(computed, api []corev1.PodCondition) []corev1.PodCondition {
	others := pod.OthersConditions(computed)
	out := make([]corev1.PodCondition, 0, len(computed))
	for _, c := range computed {
		if !slices.ContainsFunc(others, func(o corev1.PodCondition) bool { return o.Type == c.Type }) {
			out = append(out, c)
		}
	}
	return append(out, pod.OthersConditions(api)...)
}
