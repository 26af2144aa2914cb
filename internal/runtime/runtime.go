// Package runtime runs a node's pods: one network namespace per pod through
// CNI, containers as processes in it (each in a private mount and UTS
// namespace with the pod's own /etc/resolv.conf, /etc/hosts, hostname and
// volumes), init containers first, restart policy with back-off, probes,
// graceful termination, logs on disk, exec and attach. It computes each pod's status; the caller writes it to the
// API. It knows nothing of client-go: the agent feeds it pods.
package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/svcnet/svcnet/internal/pod"
)

// Network gives pods their network namespace and IP (podnet.Network is the real one).
type Network interface {
	Setup(ctx context.Context, id, nsName string) (netip.Addr, error)
	Teardown(ctx context.Context, id, nsName string) error
}

// Options configure a Runtime.
type Options struct {
	Root       string // state, pod files and logs
	Net        Network
	ClusterDNS []string
	Zone       string
	HostResolv pod.HostResolv
	// ServiceEnv returns the Service variables of a container starting in ns.
	ServiceEnv func(ns string, enableServiceLinks bool) []corev1.EnvVar
	// Objects reads the ConfigMaps and Secrets containers' env refers to.
	Objects pod.Objects
	// Changed is called (never under a lock) when a pod's status may have changed.
	Changed func(uid types.UID)
	// Terminated is called once a deleted pod's containers and network are gone.
	Terminated func(uid types.UID, namespace, name string)
	// Drain, when set, blocks until the node routes no new connection to a
	// deleted pod's IP (internal/drain) or ctx ends; the pod's containers get
	// SIGTERM only after it (and after their preStop hooks).
	Drain func(ctx context.Context, ip string)
	// BinDir is put first on containers' PATH (the agent links svcnet there).
	BinDir     string
	LogMaxSize int64
	Log        *slog.Logger
	Now        func() time.Time
}

// Runtime runs the pods of one node.
type Runtime struct {
	o    Options
	mu   sync.Mutex
	pods map[types.UID]*podWorker
	wg   sync.WaitGroup
}

// New builds a runtime; Reconcile should run before the first Sync.
func New(o Options) (*Runtime, error) {
	if o.Root == "" || o.Net == nil {
		return nil, fmt.Errorf("runtime: Root and Net are required")
	}
	if o.Zone == "" {
		o.Zone = "cluster.local"
	}
	if o.LogMaxSize == 0 {
		o.LogMaxSize = 10 << 20
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ServiceEnv == nil {
		o.ServiceEnv = func(string, bool) []corev1.EnvVar { return nil }
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
	return &Runtime{o: o, pods: map[types.UID]*podWorker{}}, nil
}

// Sync hands the runtime the latest version of a pod bound to this node: a new
// pod starts, a pod with a deletion timestamp is stopped within its grace period.
func (r *Runtime) Sync(p *corev1.Pod) {
	r.mu.Lock()
	w := r.pods[p.UID]
	if w == nil {
		if p.DeletionTimestamp != nil && isFinished(p) {
			r.mu.Unlock()
			r.o.Terminated(p.UID, p.Namespace, p.Name) // nothing of it runs here
			return
		}
		w = newPodWorker(r, p)
		r.pods[p.UID] = w
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			w.run()
			r.mu.Lock()
			delete(r.pods, p.UID)
			r.mu.Unlock()
		}()
	}
	r.mu.Unlock()
	w.update(p)
}

// isFinished reports whether the API says a pod has ended for good.
func isFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// Remove stops a pod that is gone from the API at once (grace 0).
func (r *Runtime) Remove(uid types.UID) {
	if w := r.worker(uid); w != nil {
		w.stop(0)
	}
}

func (r *Runtime) worker(uid types.UID) *podWorker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pods[uid]
}

// find returns the worker of namespace/name.
func (r *Runtime) find(namespace, name string) *podWorker {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.pods {
		if w.namespace == namespace && w.name == name {
			return w
		}
	}
	return nil
}

// Status returns the status the runtime reports for a pod it runs, and the
// pod's namespace/name.
func (r *Runtime) Status(uid types.UID) (corev1.PodStatus, string, bool) {
	w := r.worker(uid)
	if w == nil {
		return corev1.PodStatus{}, "", false
	}
	return w.status(), w.namespace + "/" + w.name, true
}

// Shutdown stops every pod (SIGTERM, then SIGKILL after grace) and releases
// their networks, so nothing outlives the agent.
func (r *Runtime) Shutdown(grace time.Duration) {
	r.mu.Lock()
	for _, w := range r.pods {
		w.shutdown(grace)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// podState is what a pod leaves on disk so a restarted agent can clean up after it.
type podState struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Netns     string `json:"netns"`
	Procs     []proc `json:"procs,omitempty"`
}

// proc identifies a process across pid reuse by its start time.
type proc struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Reconcile cleans up what a previous run of the agent left: it kills the
// processes it recorded, releases their networks and deletes the files of pods
// for which keep is false (logs of the others stay, for --previous).
func (r *Runtime) Reconcile(ctx context.Context, keep func(uid types.UID) bool) error {
	dir := filepath.Join(r.o.Root, "pods")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		uid := types.UID(e.Name())
		pdir := filepath.Join(dir, e.Name())
		var st podState
		if data, err := os.ReadFile(filepath.Join(pdir, "state.json")); err == nil {
			_ = json.Unmarshal(data, &st)
		}
		for _, p := range st.Procs {
			killRecorded(p)
		}
		if st.Netns != "" {
			if err := r.o.Net.Teardown(ctx, string(uid), st.Netns); err != nil {
				r.o.Log.Warn("releasing a leftover pod network failed", "pod", st.Namespace+"/"+st.Name, "err", err)
				continue
			}
		}
		if st.Netns != "" || len(st.Procs) > 0 {
			r.o.Log.Info("cleaned up after a previous run", "pod", st.Namespace+"/"+st.Name, "uid", uid)
		}
		if keep(uid) {
			_ = os.Remove(filepath.Join(pdir, "state.json"))
		} else {
			_ = os.RemoveAll(pdir)
		}
	}
	return nil
}
