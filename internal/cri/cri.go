// Package cri runs a node's pods through the Container Runtime Interface, as
// the kubelet does: each pod is a CRI sandbox (the runtime sets up its network
// through CNI) and its containers run the images they name, pulled by the
// runtime as imagePullPolicy says. A relist of the runtime's containers (the
// kubelet's PLEG) wakes a pod's worker when something changed; the worker
// computes its actions with a pure plan and carries them out. Containers
// belong to the runtime, so pods keep running while the agent restarts and a
// new agent takes them back. It knows nothing of client-go: the agent feeds it
// pods and writes the status it computes.
package cri

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// relistPeriod is how often the runtime's containers are listed to notice
// exits (the kubelet's PLEG relists every second too).
const relistPeriod = time.Second

// defaultLogMaxSize is where container logs are rotated (the kubelet's containerLogMaxSize).
const defaultLogMaxSize = 10 << 20

// resyncPeriod bounds how long a pod goes without a sync.
const resyncPeriod = 10 * time.Second

// Options configure a Runtime.
type Options struct {
	Runtime    internalapi.RuntimeService
	Images     internalapi.ImageManagerService
	Root       string // pod files (hosts) and logs: <Root>/pods/<uid>
	ClusterDNS []string
	Zone       string
	HostResolv pod.HostResolv
	// ServiceEnv returns the Service variables of a container starting in ns.
	ServiceEnv func(ns string, enableServiceLinks bool) []corev1.EnvVar
	// Objects reads the ConfigMaps and Secrets of env, volumes and imagePullSecrets.
	Objects pod.Objects
	// Event records an event on a pod (type Normal or Warning).
	Event func(p *corev1.Pod, eventType, reason, message string)
	// Changed is called (never under a lock) when a pod's status may have changed.
	Changed func(uid types.UID)
	// Terminated is called once a deleted pod's containers and sandbox are gone.
	Terminated func(uid types.UID, namespace, name string)
	// Drain, when set, blocks until the node routes no new connection to a
	// deleted pod's IP (internal/drain) or ctx ends; the pod's containers are
	// stopped only after it (and after their preStop hooks).
	Drain func(ctx context.Context, ip string)
	// LogMaxSize is the size at which a container's log is rotated (one rotation kept).
	LogMaxSize int64
	Log        *slog.Logger
	Now        func() time.Time
}

// Runtime runs the pods of one node through CRI.
type Runtime struct {
	o      Options
	mu     sync.Mutex
	pods   map[types.UID]*worker
	pulls  map[pullKey]*pullBackoff // back-off after failed pulls
	wg     sync.WaitGroup
	quit   chan struct{}
	closed bool
}

// New builds a runtime; Reconcile should run before the first Sync.
func New(o Options) (*Runtime, error) {
	if o.Root == "" || o.Runtime == nil || o.Images == nil {
		return nil, fmt.Errorf("cri: Root, Runtime and Images are required")
	}
	if o.Zone == "" {
		o.Zone = "cluster.local"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.LogMaxSize == 0 {
		o.LogMaxSize = defaultLogMaxSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ServiceEnv == nil {
		o.ServiceEnv = func(string, bool) []corev1.EnvVar { return nil }
	}
	if o.Event == nil {
		o.Event = func(*corev1.Pod, string, string, string) {}
	}
	if o.Changed == nil {
		o.Changed = func(types.UID) {}
	}
	if o.Terminated == nil {
		o.Terminated = func(types.UID, string, string) {}
	}
	if err := os.MkdirAll(filepath.Join(o.Root, "pods"), 0o750); err != nil {
		return nil, err
	}
	r := &Runtime{o: o, pods: map[types.UID]*worker{}, pulls: map[pullKey]*pullBackoff{}, quit: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.relist()
	}()
	return r, nil
}

// Sync hands the runtime the latest version of a pod bound to this node.
func (r *Runtime) Sync(p *corev1.Pod) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	w := r.pods[p.UID]
	if w == nil {
		w = newWorker(r, p)
		w.wake() // the first sync
		r.pods[p.UID] = w
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			w.run()
			r.mu.Lock()
			if r.pods[p.UID] == w {
				delete(r.pods, p.UID)
			}
			r.mu.Unlock()
		}()
	}
	r.mu.Unlock()
	w.update(p)
}

// forgetPulls drops the pull back-offs of a pod that is gone.
func (r *Runtime) forgetPulls(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.pulls {
		if k.pod == uid {
			delete(r.pulls, k)
		}
	}
}

// Remove stops a pod that is gone from the API at once (grace 0).
func (r *Runtime) Remove(uid types.UID) {
	if w := r.worker(uid); w != nil {
		w.remove()
	}
}

func (r *Runtime) worker(uid types.UID) *worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pods[uid]
}

// find returns the worker of namespace/name.
func (r *Runtime) find(namespace, name string) *worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.pods {
		if w.namespace == namespace && w.name == name {
			return w
		}
	}
	return nil
}

// Status returns the status the runtime reports for a pod, and its namespace/name.
func (r *Runtime) Status(uid types.UID) (corev1.PodStatus, string, bool) {
	w := r.worker(uid)
	if w == nil {
		return corev1.PodStatus{}, "", false
	}
	return w.status(), w.namespace + "/" + w.name, true
}

// Shutdown stops the workers. The pods keep running in the container runtime
// (as they do when a kubelet stops); the next agent takes them back.
func (r *Runtime) Shutdown(time.Duration) {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.quit)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Reconcile removes the sandboxes of pods that no longer exist (keep false);
// the others are taken back by their workers as they are synced.
func (r *Runtime) Reconcile(ctx context.Context, keep func(uid types.UID) bool) error {
	sbs, err := r.o.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: managed})
	if err != nil {
		return fmt.Errorf("list pod sandboxes: %w", err)
	}
	for _, sb := range sbs {
		uid := types.UID(sb.GetMetadata().GetUid())
		if keep(uid) {
			continue
		}
		r.o.Log.Info("removing a pod that no longer exists", "pod", sb.GetMetadata().GetNamespace()+"/"+sb.GetMetadata().GetName(), "sandbox", sb.Id)
		if err := removeSandbox(ctx, r.o.Runtime, sb.Id); err != nil {
			r.o.Log.Warn("removing a leftover sandbox failed", "sandbox", sb.Id, "err", err)
		}
		_ = os.RemoveAll(filepath.Join(r.o.Root, "pods", string(uid)))
	}
	return nil
}

// removeSandbox stops and removes a sandbox and its containers.
func removeSandbox(ctx context.Context, rs internalapi.RuntimeService, id string) error {
	if err := rs.StopPodSandbox(ctx, id); err != nil {
		return err
	}
	return rs.RemovePodSandbox(ctx, id)
}

// RemoveAll stops and removes every pod sandbox svcnet created in the runtime (svcnet agent --cleanup).
func RemoveAll(ctx context.Context, rs internalapi.RuntimeService) (int, error) {
	sbs, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: managed})
	if err != nil {
		return 0, err
	}
	for _, sb := range sbs {
		if err := removeSandbox(ctx, rs, sb.Id); err != nil {
			return 0, fmt.Errorf("remove sandbox %s: %w", sb.Id, err)
		}
	}
	return len(sbs), nil
}

// relist lists the runtime's containers every relistPeriod and wakes the
// workers of pods whose containers changed state.
func (r *Runtime) relist() {
	last := map[string]runtimeapi.ContainerState{}
	t := time.NewTicker(relistPeriod)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cs, err := r.o.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: managed})
		sbs, serr := r.o.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: managed})
		cancel()
		if err != nil || serr != nil {
			r.o.Log.Warn("listing the container runtime's containers failed", "err", err, "sandboxErr", serr)
			continue
		}
		now := map[string]runtimeapi.ContainerState{}
		changed := map[types.UID]bool{}
		for _, c := range cs {
			now[c.Id] = c.State
			if st, ok := last[c.Id]; !ok || st != c.State {
				changed[types.UID(c.Labels[labelPodUID])] = true
			}
		}
		for _, sb := range sbs {
			key := "sandbox/" + sb.Id
			st := runtimeapi.ContainerState(sb.State)
			now[key] = st
			if old, ok := last[key]; !ok || old != st {
				changed[types.UID(sb.GetMetadata().GetUid())] = true
			}
		}
		last = now
		for uid := range changed {
			if w := r.worker(uid); w != nil {
				w.wake()
			}
		}
	}
}
