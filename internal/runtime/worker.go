package runtime

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/svcnet/svcnet/internal/drain"
	"github.com/svcnet/svcnet/internal/pod"
)

// podWorker runs one pod from network setup to teardown.
type podWorker struct {
	r         *Runtime
	uid       types.UID
	namespace string
	name      string
	dir       string
	netns     string

	mu           sync.Mutex
	pod          *corev1.Pod
	ip           netip.Addr
	sandboxReady bool
	sandboxMsg   string
	startTime    time.Time
	inits        []*container // spec.initContainers, run one at a time first
	containers   []*container
	procs        map[string]proc

	volMu sync.Mutex // one writer of the pod's volume files at a time

	stopOnce sync.Once
	stopCh   chan struct{}
	// drainOnce starts the wait for the node to stop routing to the pod (or,
	// when no deletion started it, just closes drained).
	drainOnce sync.Once
	drained   chan struct{}
	grace     time.Duration
	keepLogs  bool // agent shutdown: the pod lives on in the API
}

func newPodWorker(r *Runtime, p *corev1.Pod) *podWorker {
	w := &podWorker{r: r, uid: p.UID, namespace: p.Namespace, name: p.Name, pod: p.DeepCopy(),
		dir: filepath.Join(r.o.Root, "pods", string(p.UID)), netns: "svcnet-" + string(p.UID),
		startTime: r.o.Now(), stopCh: make(chan struct{}), drained: make(chan struct{}), procs: map[string]proc{}}
	waiting := "ContainerCreating"
	if len(p.Spec.InitContainers) > 0 {
		waiting = "PodInitializing" // as the kubelet: kubectl prints Init:N/M
	}
	for _, cs := range p.Spec.InitContainers {
		w.inits = append(w.inits, newContainer(w, cs, true, "PodInitializing", p.Status.InitContainerStatuses))
	}
	for _, cs := range p.Spec.Containers {
		w.containers = append(w.containers, newContainer(w, cs, false, waiting, p.Status.ContainerStatuses))
	}
	return w
}

// newContainer is container cs waiting to start; a restarted agent counts on
// from the status the API has (statuses).
func newContainer(w *podWorker, cs corev1.Container, init bool, waiting string, statuses []corev1.ContainerStatus) *container {
	c := &container{w: w, spec: cs, init: init, running: -1}
	c.state.Waiting = &corev1.ContainerStateWaiting{Reason: waiting}
	for _, st := range statuses {
		if st.Name == cs.Name && (st.State.Running != nil || st.State.Terminated != nil || st.RestartCount > 0) {
			c.restarts = st.RestartCount + 1
			if st.State.Terminated != nil {
				c.last.Terminated = st.State.Terminated
			} else if st.State.Running != nil {
				c.last.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error",
					Message: "the node agent restarted", StartedAt: st.State.Running.StartedAt}
			}
		}
	}
	return c
}

// update takes a newer version of the pod.
func (w *podWorker) update(p *corev1.Pod) {
	w.mu.Lock()
	old := w.pod
	w.pod = p.DeepCopy()
	w.mu.Unlock()
	if pod.OthersChanged(old, p) {
		w.changed() // a readiness gate's condition: Ready is computed again
	}
	if p.DeletionTimestamp != nil {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if p.DeletionGracePeriodSeconds != nil {
			grace = *p.DeletionGracePeriodSeconds
		} else if p.Spec.TerminationGracePeriodSeconds != nil {
			grace = *p.Spec.TerminationGracePeriodSeconds
		}
		w.startDrain(time.Duration(grace) * time.Second)
		w.stop(time.Duration(grace) * time.Second)
	}
}

// startDrain begins, at the pod's deletion, the wait until the node routes no
// new connection to its IP, bounded by drain.Limit of its grace period.
func (w *podWorker) startDrain(grace time.Duration) {
	w.drainOnce.Do(func() {
		w.mu.Lock()
		ip := ""
		if w.ip.IsValid() && !w.pod.Spec.HostNetwork { // a host-network pod's IP is the node's
			ip = w.ip.String()
		}
		w.mu.Unlock()
		drain.Begin(w.r.o.Drain, ip, grace, w.drained)
	})
}

// waitDrained waits (until deadline at most) for the wait startDrain began;
// without one (an agent shutdown, a pod gone from the API) it returns at once.
func (w *podWorker) waitDrained(deadline time.Time) {
	w.drainOnce.Do(func() { close(w.drained) })
	select {
	case <-w.drained:
	case <-time.After(time.Until(deadline)):
	}
}

// stop begins graceful termination (the first call's grace counts).
func (w *podWorker) stop(grace time.Duration) {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.grace = grace
		w.mu.Unlock()
		close(w.stopCh)
	})
}

// shutdown stops the pod for an agent shutdown: its logs stay for the next run.
func (w *podWorker) shutdown(grace time.Duration) {
	w.mu.Lock()
	w.keepLogs = true
	w.mu.Unlock()
	w.stop(grace)
}

func (w *podWorker) stopping() bool {
	select {
	case <-w.stopCh:
		return true
	default:
		return false
	}
}

func (w *podWorker) changed() { w.r.o.Changed(w.uid) }

// saveState records what a restarted agent must clean up.
func (w *podWorker) saveState() {
	w.mu.Lock()
	st := podState{Namespace: w.namespace, Name: w.name, Netns: w.netns}
	for _, p := range w.procs {
		st.Procs = append(st.Procs, p)
	}
	w.mu.Unlock()
	data, _ := json.Marshal(st)
	tmp := filepath.Join(w.dir, "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o640); err == nil {
		_ = os.Rename(tmp, filepath.Join(w.dir, "state.json"))
	}
}

func (w *podWorker) log() *slog.Logger {
	return w.r.o.Log.With("pod", w.namespace+"/"+w.name)
}

// run sets up the pod's network, runs its containers until they end for good
// or the pod is deleted, then releases everything.
func (w *podWorker) run() {
	log := w.log()
	if err := os.MkdirAll(filepath.Join(w.dir, "logs"), 0o750); err != nil {
		log.Error("pod directory", "err", err)
	}
	w.saveState() // before the namespace exists, so a crash cannot leak it
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-w.stopCh
		cancel()
	}()
	ip, ok := w.setupNetwork(ctx)
	refreshCtx, stopRefresh := context.WithCancel(ctx)
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		if ok {
			w.refreshVolumes(refreshCtx)
		}
	}()
	if ok && w.runInits() {
		var wg sync.WaitGroup
		for _, c := range w.containers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.loop()
			}()
		}
		wg.Wait()
		log.Debug("containers ended", "ip", ip)
	}
	stopRefresh()
	<-refreshed // no volume file is written once the pod's directory may go
	// Every container has ended for good (or was stopped): release the IP,
	// as the kubelet kills a finished pod's sandbox.
	if err := w.r.o.Net.Teardown(context.Background(), string(w.uid), w.netns); err != nil {
		log.Warn("releasing the pod network failed", "err", err)
	} else {
		w.mu.Lock()
		w.netns, w.sandboxReady = "", false
		w.mu.Unlock()
		w.saveState()
	}
	w.changed()
	<-w.stopCh // a finished pod stays (status, logs) until it is deleted
	cancel()
	w.mu.Lock()
	keep := w.keepLogs
	w.mu.Unlock()
	if keep {
		_ = os.Remove(filepath.Join(w.dir, "state.json"))
		return
	}
	_ = os.RemoveAll(w.dir)
	w.r.o.Terminated(w.uid, w.namespace, w.name)
}

// runInits runs the init containers one at a time, each until it succeeds;
// false when one failed for good (restartPolicy Never) or the pod was stopped.
func (w *podWorker) runInits() bool {
	for _, c := range w.inits {
		if !c.loop() {
			return false
		}
	}
	return len(w.inits) == 0 || !w.stopping()
}

// setupNetwork creates the pod's namespace and network, retrying until it
// works or the pod is stopped; then writes its resolv.conf and hosts.
func (w *podWorker) setupNetwork(ctx context.Context) (netip.Addr, bool) {
	for attempt := 0; ; attempt++ {
		ip, err := w.r.o.Net.Setup(ctx, string(w.uid), w.netns)
		if err == nil {
			w.mu.Lock()
			p := w.pod
			w.mu.Unlock()
			resolv, rerr := pod.ResolvConf(p, w.r.o.ClusterDNS, w.r.o.Zone, w.r.o.HostResolv)
			if rerr != nil {
				err = rerr
			} else {
				err = os.WriteFile(filepath.Join(w.dir, "resolv.conf"), []byte(resolv), 0o644)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(w.dir, "hosts"), []byte(pod.Hosts(p, ip.String(), w.r.o.Zone)), 0o644)
			}
			if err == nil {
				w.mu.Lock()
				w.ip, w.sandboxReady, w.sandboxMsg = ip, true, ""
				w.mu.Unlock()
				w.changed()
				return ip, true
			}
		}
		w.log().Warn("pod network setup failed, retrying", "err", err)
		w.mu.Lock()
		w.sandboxMsg = err.Error()
		w.mu.Unlock()
		w.changed()
		select {
		case <-ctx.Done():
			return netip.Addr{}, false
		case <-time.After(time.Duration(min(attempt+1, 10)) * time.Second):
		}
	}
}

// spec builds the helper spec of a process in container c running argv with env.
func (w *podWorker) spec(c *container, argv, env []string) initSpec {
	w.mu.Lock()
	defer w.mu.Unlock()
	return initSpec{Netns: netnsPath(w.netns), Resolv: filepath.Join(w.dir, "resolv.conf"), Hosts: filepath.Join(w.dir, "hosts"),
		Hostname: pod.Hostname(w.pod), Dir: c.spec.WorkingDir, Argv: argv, Env: env, Mounts: c.mounts}
}

func netnsPath(name string) string {
	if name == "" {
		return ""
	}
	return filepath.Join("/var/run/netns", name)
}

// recordProc remembers a container process for cleanup after an agent crash.
func (w *podWorker) recordProc(key string, pid int) {
	w.mu.Lock()
	if pid == 0 {
		delete(w.procs, key)
	} else {
		w.procs[key] = proc{Pid: pid, Start: procStart(pid)}
	}
	w.mu.Unlock()
	w.saveState()
}

// procStart is a process's start time in clock ticks (field 22 of /proc/pid/stat).
func procStart(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 19 {
			v, _ := strconv.ParseUint(f[19], 10, 64)
			return v
		}
	}
	return 0
}
