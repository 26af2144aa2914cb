package cri

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/svcnet/svcnet/internal/drain"
	"github.com/svcnet/svcnet/internal/pod"
	"github.com/svcnet/svcnet/internal/podvol"
	"github.com/svcnet/svcnet/internal/probe"
)

// criTimeout bounds one CRI call that does not pull or stop.
const criTimeout = 2 * time.Minute

// waitReason is why a container is waiting instead of running (image pull,
// configuration or start failures).
type waitReason struct{ reason, message string }

// worker runs one pod: it observes the pod's sandboxes and containers in the
// runtime, plans, and acts, until the pod is deleted (or the agent stops).
type worker struct {
	r         *Runtime
	uid       types.UID
	namespace string
	name      string
	dir       string

	mu             sync.Mutex
	pod            *corev1.Pod
	obs            observed
	observedOK     bool
	sandboxMsg     string
	startTime      time.Time
	removed        bool
	statuses       map[string]instance // instance id -> last ContainerStatus read (by state)
	ips            map[string]string   // sandbox id -> pod IP
	waiting        map[string]waitReason
	ready          map[string]bool // instance id -> readiness probe result
	started        map[string]bool // instance id -> startup probe passed
	evicted        string          // the eviction message once over a storage limit (storage.go)
	storageChecked time.Time       // when storage use was last measured
	unhealthy      map[string]bool
	probes         map[string]context.CancelFunc
	backoff        map[string]*pod.Backoff
	backedOff      map[string]bool      // instance ids whose back-off was computed
	notBefore      map[string]time.Time // container name -> restart allowed from

	refreshed time.Time // last refresh of the pod's volume files

	drainOnce sync.Once     // starts the wait for the node to stop routing to a deleted pod
	drained   chan struct{} // closed when that wait is over

	wakeCh chan struct{}
}

func newWorker(r *Runtime, p *corev1.Pod) *worker {
	w := &worker{r: r, uid: p.UID, namespace: p.Namespace, name: p.Name, pod: p.DeepCopy(),
		dir: filepath.Join(r.o.Root, "pods", string(p.UID)), startTime: r.o.Now(),
		statuses: map[string]instance{}, ips: map[string]string{}, waiting: map[string]waitReason{},
		ready: map[string]bool{}, started: map[string]bool{}, unhealthy: map[string]bool{}, probes: map[string]context.CancelFunc{},
		backoff: map[string]*pod.Backoff{}, backedOff: map[string]bool{}, notBefore: map[string]time.Time{},
		wakeCh: make(chan struct{}, 1), drained: make(chan struct{})}
	if p.Status.StartTime != nil {
		w.startTime = p.Status.StartTime.Time
	}
	return w
}

func (w *worker) log() *slog.Logger { return w.r.o.Log.With("pod", w.namespace+"/"+w.name) }

// update takes a newer version of the pod; only a change of its spec or its
// deletion wakes the worker (not the status the agent itself wrote).
func (w *worker) update(p *corev1.Pod) {
	w.mu.Lock()
	old := w.pod
	w.pod = p.DeepCopy()
	w.mu.Unlock()
	if old == nil || !apiequality.Semantic.DeepEqual(old.Spec, p.Spec) || !apiequality.Semantic.DeepEqual(old.DeletionTimestamp, p.DeletionTimestamp) ||
		!apiequality.Semantic.DeepEqual(old.DeletionGracePeriodSeconds, p.DeletionGracePeriodSeconds) {
		w.wake()
	}
	if pod.OthersChanged(old, p) {
		w.changed() // a readiness gate's condition: Ready is computed again
	}
}

func (w *worker) remove() {
	w.mu.Lock()
	w.removed = true
	w.mu.Unlock()
	w.wake()
}

func (w *worker) wake() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *worker) changed() { w.r.o.Changed(w.uid) }

// run syncs the pod whenever woken (or every resyncPeriod) until it is gone
// or the runtime shuts down.
func (w *worker) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.r.quit:
		case <-ctx.Done():
		}
		cancel()
	}()
	defer w.r.forgetPulls(w.uid)
	defer w.stopProbes("")
	timer := time.NewTimer(resyncPeriod) // the first sync comes from update's wake
	defer timer.Stop()
	for {
		select {
		case <-w.r.quit:
			return
		case <-w.wakeCh:
		case <-timer.C:
		}
		next, done := w.sync(ctx)
		if done {
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// sync observes, plans and acts once; it returns when to sync again, and
// whether the pod is gone for good.
func (w *worker) sync(ctx context.Context) (time.Duration, bool) {
	obs, err := w.observe(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log().Warn("reading the pod's containers from the runtime failed", "err", err)
		}
		return time.Second, false
	}
	w.mu.Lock()
	w.obs, w.observedOK = obs, true
	p := w.pod
	deleting := w.removed || p.DeletionTimestamp != nil
	w.mu.Unlock()
	w.syncProbes(obs)
	if deleting {
		if !w.terminate(ctx, obs, p) {
			return time.Second, false // a sandbox could not be removed: again, the API keeps the pod meanwhile
		}
		return 0, true
	}
	if w.checkStorage(ctx, p, obs) { // evicted: it has finished, nothing runs again
		p = p.DeepCopy()
		p.Status.Phase = corev1.PodFailed
	}
	now := w.r.o.Now()
	w.mu.Lock()
	w.computeBackoff(obs)
	in := planInput{pod: p, obs: obs, unhealthy: maps.Clone(w.unhealthy), started: maps.Clone(w.started), notBefore: maps.Clone(w.notBefore), now: now}
	w.mu.Unlock()
	a := plan(in)
	w.act(ctx, p, obs, a)
	w.rotateLogs(ctx, obs)
	if len(a.start) == 0 && len(p.Spec.Volumes) > 0 && anyRunning(obs) && now.Sub(w.refreshed) >= resyncPeriod {
		w.refreshed = now                       // at most once a resync period, not at every wake: each refresh reads the API
		if _, err := w.volumes(p); err != nil { // ConfigMap and Secret changes reach running pods
			w.log().Warn("refreshing the pod's volumes failed", "err", err)
		}
	}
	if a.killPod || a.createSandbox || len(a.start)+len(a.kill)+len(a.remove)+len(a.removeSandboxes) > 0 {
		if obs, err := w.observe(ctx); err == nil { // report what the actions did now, not at the next relist
			w.mu.Lock()
			w.obs = obs
			w.mu.Unlock()
			w.syncProbes(obs)
		}
	}
	w.changed()
	next := resyncPeriod
	w.mu.Lock()
	for _, t := range w.notBefore {
		if d := t.Sub(now); d > 0 && d < next {
			next = d
		}
	}
	if len(w.waiting) > 0 {
		next = min(next, time.Second)
	}
	w.mu.Unlock()
	return next, false
}

// rotateLogs rotates the logs of running containers grown past LogMaxSize,
// as the kubelet's log manager does: the file becomes <file>.1 (replacing the
// older one) and the runtime reopens its log.
func (w *worker) rotateLogs(ctx context.Context, obs observed) {
	for _, c := range obs.containers {
		if c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		path := filepath.Join(w.dir, "logs", logPath(c.name, c.attempt))
		if st, err := os.Stat(path); err != nil || st.Size() < w.r.o.LogMaxSize {
			continue
		}
		if err := os.Rename(path, path+".1"); err != nil {
			w.log().Warn("rotating a container log failed", "container", c.name, "err", err)
			continue
		}
		w.callErr("reopen the container log", w.r.o.Runtime.ReopenContainerLog(ctx, c.id))
	}
}

// computeBackoff sets the restart back-off of containers that ended since the last sync.
func (w *worker) computeBackoff(obs observed) {
	for _, c := range append(append([]corev1.Container{}, w.pod.Spec.Containers...), w.pod.Spec.InitContainers...) {
		last := obs.latest(c.Name)
		if last == nil || last.state != runtimeapi.ContainerState_CONTAINER_EXITED || !last.statusKnown || w.backedOff[last.id] {
			continue
		}
		if last.exitCode == 0 && isInit(w.pod, c.Name) && !isSidecar(c) {
			continue // a completed init container is not restarted (a sidecar is)
		}
		w.backedOff[last.id] = true
		b := w.backoff[c.Name]
		if b == nil {
			b = &pod.Backoff{}
			w.backoff[c.Name] = b
		}
		finished := time.Unix(0, last.finished)
		w.notBefore[c.Name] = finished.Add(b.Delay(time.Unix(0, last.started), finished))
	}
}

// act carries out a plan.
func (w *worker) act(ctx context.Context, p *corev1.Pod, obs observed, a actions) {
	rs := w.r.o.Runtime
	if a.killPod {
		w.stopContainers(ctx, p, obs, 0, nil)
		for _, sb := range obs.sandboxes {
			if sb.ready {
				w.callErr("stop sandbox", rs.StopPodSandbox(ctx, sb.id))
			}
		}
	}
	for _, id := range a.kill {
		grace := graceSeconds(p)
		w.r.o.Event(p, corev1.EventTypeNormal, "Killing", "Container failed a liveness or startup probe, will be restarted")
		if err := rs.StopContainer(ctx, id, grace); err != nil {
			w.callErr("stop unhealthy container", err) // still unhealthy: tried again at the next sync
			continue
		}
		w.mu.Lock()
		delete(w.unhealthy, id)
		w.mu.Unlock()
	}
	for _, id := range a.remove {
		w.callErr("remove old container", rs.RemoveContainer(ctx, id))
	}
	for _, id := range a.removeSandboxes {
		w.callErr("remove old sandbox", rs.RemovePodSandbox(ctx, id))
	}
	var sb sandbox
	if len(obs.sandboxes) > 0 {
		sb = obs.sandboxes[0]
	}
	dns, err := pod.PodDNS(p, w.r.o.ClusterDNS, w.r.o.Zone, w.r.o.HostResolv)
	if err != nil {
		w.setSandboxMsg(err.Error())
		return
	}
	if a.createSandbox {
		if err := os.MkdirAll(filepath.Join(w.dir, "logs"), 0o750); err != nil {
			w.setSandboxMsg(err.Error())
			return
		}
		cfg := sandboxConfig(p, a.sandboxAttempt, filepath.Join(w.dir, "logs"), dns)
		id, err := rs.RunPodSandbox(ctx, cfg, "")
		if err != nil {
			w.setSandboxMsg(err.Error())
			w.r.o.Event(p, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
			return
		}
		ip, err := w.sandboxIP(ctx, id)
		if err != nil {
			w.setSandboxMsg(err.Error())
			return
		}
		sb = sandbox{id: id, attempt: a.sandboxAttempt, ready: true, ip: ip}
		w.setSandboxMsg("")
	}
	if len(a.start) == 0 {
		return
	}
	hosts := filepath.Join(w.dir, "hosts")
	ip := sb.ip
	if p.Spec.HostNetwork {
		ip = p.Status.HostIP
	}
	if err := os.WriteFile(hosts, []byte(pod.Hosts(p, ip, w.r.o.Zone)), 0o644); err != nil {
		w.setSandboxMsg(err.Error())
		return
	}
	sbCfg := sandboxConfig(p, sb.attempt, filepath.Join(w.dir, "logs"), dns)
	for _, name := range a.start {
		if c := specOf(p, name); c != nil {
			var attempt uint32
			if last := obs.latest(name); last != nil {
				attempt = last.attempt + 1
			}
			w.startContainer(ctx, p, sb, sbCfg, *c, attempt, ip, hosts)
		}
	}
}

// startContainer pulls the image as the policy says, then creates and starts one instance.
func (w *worker) startContainer(ctx context.Context, p *corev1.Pod, sb sandbox, sbCfg *runtimeapi.PodSandboxConfig, c corev1.Container, attempt uint32, ip, hosts string) {
	imageRef, ok := w.ensureImage(ctx, p, c, sbCfg)
	if !ok {
		return
	}
	links := p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks
	env, err := pod.ContainerEnv(p, ip, nil, w.r.o.ServiceEnv(p.Namespace, links), c, w.r.o.Objects)
	if err != nil {
		w.setWaiting(c.Name, "CreateContainerConfigError", err.Error())
		return
	}
	vols, err := w.volumes(p)
	if err != nil {
		w.setWaiting(c.Name, "CreateContainerConfigError", err.Error())
		return
	}
	ms, err := podvol.Mounts(c, vols)
	if err != nil {
		w.setWaiting(c.Name, "CreateContainerConfigError", err.Error())
		return
	}
	cfg, err := containerConfig(p, c, attempt, imageRef, env, hosts, ms)
	if err != nil {
		w.setWaiting(c.Name, "CreateContainerConfigError", err.Error())
		return
	}
	id, err := w.r.o.Runtime.CreateContainer(ctx, sb.id, cfg, sbCfg)
	if err != nil {
		w.setWaiting(c.Name, "CreateContainerError", err.Error())
		w.r.o.Event(p, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	w.r.o.Event(p, corev1.EventTypeNormal, "Created", "Created container: "+c.Name)
	if err := w.r.o.Runtime.StartContainer(ctx, id); err != nil {
		w.setWaiting(c.Name, "RunContainerError", err.Error())
		w.r.o.Event(p, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	w.r.o.Event(p, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	w.setWaiting(c.Name, "", "")
	w.log().Debug("container started", "container", c.Name, "id", id, "attempt", attempt)
}

func (w *worker) setWaiting(name, reason, msg string) {
	w.mu.Lock()
	if reason == "" {
		delete(w.waiting, name)
	} else {
		w.waiting[name] = waitReason{reason, msg}
	}
	w.mu.Unlock()
	w.changed()
}

func (w *worker) setSandboxMsg(msg string) {
	w.mu.Lock()
	w.sandboxMsg = msg
	w.mu.Unlock()
	if msg != "" {
		w.log().Warn("pod sandbox", "err", msg)
	}
}

func (w *worker) callErr(what string, err error) {
	if err != nil {
		w.log().Warn(what+" failed", "err", err)
	}
}

// sandboxIP reads (and remembers) a sandbox's pod IP.
func (w *worker) sandboxIP(ctx context.Context, id string) (string, error) {
	w.mu.Lock()
	ip, ok := w.ips[id]
	w.mu.Unlock()
	if ok {
		return ip, nil
	}
	st, err := w.r.o.Runtime.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return "", err
	}
	if n := st.GetStatus().GetNetwork(); n != nil {
		ip = n.Ip
	}
	w.mu.Lock()
	w.ips[id] = ip
	w.mu.Unlock()
	return ip, nil
}

// observe reads the pod's sandboxes and containers from the runtime.
func (w *worker) observe(ctx context.Context) (observed, error) {
	ctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()
	sel := map[string]string{labelPodUID: string(w.uid)}
	var obs observed
	sbs, err := w.r.o.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		return obs, err
	}
	for _, s := range sbs {
		sb := sandbox{id: s.Id, attempt: s.GetMetadata().GetAttempt(), ready: s.State == runtimeapi.PodSandboxState_SANDBOX_READY, created: s.CreatedAt}
		if sb.ready {
			if sb.ip, err = w.sandboxIP(ctx, s.Id); err != nil {
				return obs, err
			}
		}
		obs.sandboxes = append(obs.sandboxes, sb)
	}
	cs, err := w.r.o.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		return obs, err
	}
	for _, c := range cs {
		in := instance{id: c.Id, name: c.GetMetadata().GetName(), attempt: c.GetMetadata().GetAttempt(), state: c.State,
			created: c.CreatedAt, image: c.GetImage().GetImage(), imageRef: c.ImageRef, sandboxID: c.PodSandboxId, hash: c.Annotations[annoHash]}
		w.mu.Lock()
		known, ok := w.statuses[c.Id]
		w.mu.Unlock()
		if ok && known.state == c.State {
			in = known
		} else if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING || c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			st, err := w.r.o.Runtime.ContainerStatus(ctx, c.Id, false)
			if err == nil && st.GetStatus() != nil {
				s := st.GetStatus()
				in.state, in.started, in.finished, in.exitCode = s.State, s.StartedAt, s.FinishedAt, s.ExitCode
				in.reason, in.message, in.imageRef, in.statusKnown = s.Reason, s.Message, s.ImageRef, true
				in.hash = c.Annotations[annoHash]
				w.mu.Lock()
				w.statuses[c.Id] = in
				w.mu.Unlock()
			}
		}
		obs.containers = append(obs.containers, in)
	}
	obs.sort()
	return obs, nil
}

// stopContainers stops every running container of the pod within grace
// (0: the pod's terminationGracePeriodSeconds), running preStop hooks first
// and then waiting for drained (when not nil, within the grace period).
func (w *worker) stopContainers(ctx context.Context, p *corev1.Pod, obs observed, grace int64, drained <-chan struct{}) {
	var wg sync.WaitGroup
	for _, c := range obs.containers {
		if c.state != runtimeapi.ContainerState_CONTAINER_RUNNING && c.state != runtimeapi.ContainerState_CONTAINER_CREATED {
			continue
		}
		spec := specOf(p, c.name)
		g := grace
		if g == 0 {
			g = graceSeconds(p)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(time.Duration(g) * time.Second)
			if spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
				hctx, cancel := context.WithDeadline(ctx, deadline)
				ip := w.podIP()
				_ = probe.Handle(hctx, *spec.Lifecycle.PreStop, ip, *spec, w.execFn(c.id))
				cancel()
			}
			if drained != nil {
				select {
				case <-drained:
				case <-time.After(time.Until(deadline)):
				}
			}
			left := int64(time.Until(deadline).Seconds())
			if left < 1 {
				left = 1
			}
			w.callErr("stop container", w.r.o.Runtime.StopContainer(ctx, c.id, left))
		}()
	}
	wg.Wait()
}

// terminate ends a deleted pod: containers stopped within the grace period,
// the sandbox stopped and removed, its files deleted; then the API is told.
// It reports false when a sandbox could not be removed (the caller retries).
func (w *worker) terminate(ctx context.Context, obs observed, p *corev1.Pod) bool {
	var grace int64
	w.mu.Lock()
	removed := w.removed
	w.mu.Unlock()
	if p.DeletionGracePeriodSeconds != nil {
		grace = *p.DeletionGracePeriodSeconds
	} else if !removed {
		grace = graceSeconds(p)
	}
	if grace < 1 {
		grace = 1
	}
	for _, c := range obs.containers {
		if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			w.r.o.Event(p, corev1.EventTypeNormal, "Killing", "Stopping container "+c.name)
		}
	}
	var drained <-chan struct{}
	if !removed {
		drained = w.startDrain(p, time.Duration(grace)*time.Second)
	}
	w.stopContainers(ctx, p, obs, grace, drained)
	for _, sb := range obs.sandboxes {
		if err := removeSandbox(ctx, w.r.o.Runtime, sb.id); err != nil {
			if ctx.Err() == nil {
				w.log().Warn("removing the pod sandbox failed, retrying", "err", err)
			}
			return false
		}
	}
	w.stopProbes("")
	_ = os.RemoveAll(w.dir)
	w.r.o.Terminated(w.uid, w.namespace, w.name)
	return true
}

// startDrain begins, once, the wait until the node routes no new connection
// to the deleted pod's IP, bounded by drain.Limit of its grace period; the
// channel is closed when it is over.
func (w *worker) startDrain(p *corev1.Pod, grace time.Duration) <-chan struct{} {
	w.drainOnce.Do(func() {
		ip := w.podIP()
		if p.Spec.HostNetwork { // its IP is the node's
			ip = ""
		}
		drain.Begin(w.r.o.Drain, ip, grace, w.drained)
	})
	return w.drained
}

func (w *worker) podIP() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.obs.sandboxes) > 0 {
		return w.obs.sandboxes[0].ip
	}
	return ""
}

// execFn runs a command in a container (exec probes and hooks) through ExecSync.
func (w *worker) execFn(id string) func(ctx context.Context, cmd []string) error {
	return func(ctx context.Context, cmd []string) error {
		timeout := 10 * time.Second
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		_, stderr, err := w.r.o.Runtime.ExecSync(ctx, id, cmd, timeout)
		if err != nil {
			return fmt.Errorf("%w: %s", err, stderr)
		}
		return nil
	}
}

// specOf is the spec of the (init) container name.
func specOf(p *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

// graceSeconds is the pod's termination grace period.
func graceSeconds(p *corev1.Pod) int64 {
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// anyRunning reports whether any container of the pod runs.
func anyRunning(obs observed) bool {
	for _, c := range obs.containers {
		if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return true
		}
	}
	return false
}

// isInit reports whether name is one of the pod's init containers.
func isInit(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}
