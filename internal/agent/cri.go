package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"

	"github.com/svcnet/svcnet/internal/containerd"
	"github.com/svcnet/svcnet/internal/cri"
	"github.com/svcnet/svcnet/internal/podnet"
)

// Container runtimes the agent can run pods with.
const (
	RuntimeProcess = "process" // containers as processes of the node (no images)
	RuntimeCRI     = "cri"     // containers from images through CRI (containerd)
)

// criConnectTimeout bounds the first connection to the CRI endpoint.
const criConnectTimeout = 30 * time.Second

// criServices are the CRI clients of the node's runtime, and what stops them.
type criServices struct {
	runtime internalapi.RuntimeService
	images  internalapi.ImageManagerService
	stop    func()
}

// connectCRI starts the node's own containerd (no endpoint given) or connects
// to the given endpoint, with the pod network's CNI config in place.
func (a *Agent) connectCRI(ctx context.Context, podCIDR string, log *slog.Logger) (*criServices, error) {
	endpoint := a.o.RuntimeEndpoint
	stop := func() {}
	if endpoint == "" {
		dir := filepath.Join(a.o.RootDir, "containerd")
		confDir := filepath.Join(dir, "net.d")
		if err := writeCNIConf(confDir, podCIDR, a.o.RootDir); err != nil {
			return nil, err
		}
		bin, err := podnet.PluginDir(a.o.CNIPluginDirs)
		if err != nil {
			return nil, err
		}
		sup, err := containerd.Supervise(ctx, containerd.Config{Dir: dir, CNIBinDir: bin, CNIConfDir: confDir, InsecureRegistries: a.o.InsecureRegistries, Log: log})
		if err != nil {
			return nil, err
		}
		stop = sup.Stop
		endpoint = containerd.Endpoint(dir)
	}
	tp := noop.NewTracerProvider()
	var rs internalapi.RuntimeService
	var last error
	// containerd answers before its CRI plugin is up ("server is not
	// initialized yet"), longer so after a restart with containers to recover.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, criConnectTimeout, true, func(ctx context.Context) (bool, error) {
		rs, last = remote.NewRemoteRuntimeService(ctx, endpoint, criConnectTimeout, tp, false)
		if last != nil && strings.Contains(last.Error(), "not initialized yet") {
			log.Info("waiting for the container runtime's CRI service", "endpoint", endpoint)
			return false, nil
		}
		return true, last
	})
	if err != nil && last != nil {
		err = last
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("--container-runtime-endpoint %s: %w", endpoint, err)
	}
	is, err := remote.NewRemoteImageService(ctx, endpoint, criConnectTimeout, tp, false)
	if err != nil {
		stop()
		return nil, fmt.Errorf("--container-runtime-endpoint %s: %w", endpoint, err)
	}
	v, err := rs.Version(ctx, "v1")
	if err != nil {
		stop()
		return nil, fmt.Errorf("--container-runtime-endpoint %s: %w", endpoint, err)
	}
	log.Info("container runtime connected", "endpoint", endpoint, "runtime", v.RuntimeName, "version", v.RuntimeVersion)
	a.runtimeVersion = v.RuntimeName + "://" + v.RuntimeVersion
	if len(a.o.ImportImages) > 0 && a.o.RuntimeEndpoint == "" {
		log.Info("importing images", "files", len(a.o.ImportImages))
		if err := containerd.Import(ctx, containerd.Socket(filepath.Join(a.o.RootDir, "containerd")), a.o.ImportImages, os.Stderr); err != nil {
			log.Warn("importing images failed", "err", err)
		}
	}
	return &criServices{runtime: rs, images: is, stop: func() {
		_ = rs.Close(context.Background())
		_ = is.Close(context.Background())
		stop()
	}}, nil
}

// writeCNIConf writes the pod network's conflist where the runtime's CNI looks.
func writeCNIConf(dir, podCIDR, root string) error {
	conf, err := podnet.ConfList(podnet.Config{PodCIDR: podCIDR, DataDir: filepath.Join(root, "cni")}, true)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "10-svcnet.conflist"), conf, 0o600)
}

// newCRIRuntime builds the CRI pod runtime on the node's container runtime.
func (a *Agent) newCRIRuntime(ctx context.Context, svc *criServices, base podRuntimeOptions) (*cri.Runtime, error) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: a.o.NodeName})
	return cri.New(cri.Options{Runtime: svc.runtime, Images: svc.images, Root: a.o.RootDir, ClusterDNS: a.o.ClusterDNS,
		Zone: a.o.DNSZone, HostResolv: base.host, ServiceEnv: base.serviceEnv,
		Objects: base.objects,
		Event:   func(p *corev1.Pod, eventType, reason, msg string) { recorder.Event(p, eventType, reason, msg) },
		Changed: base.changed, Terminated: base.terminated, Drain: base.drain, Log: a.o.Log, Now: a.o.Now})
}

// serveCRIStream proxies an exec, attach or port-forward request to the
// runtime's streaming server, as the kubelet does.
func serveCRIStream(w http.ResponseWriter, r *http.Request, rt *cri.Runtime, verb string) {
	q := r.URL.Query()
	req := cri.StreamRequest{Verb: verb, Namespace: r.PathValue("ns"), Pod: r.PathValue("pod"), Container: r.PathValue("container"),
		Command: q["command"], Stdin: q.Get("input") == "1" || q.Get("stdin") == "true", Stdout: q.Get("output") == "1" || q.Get("stdout") == "true",
		Stderr: q.Get("error") == "1" || q.Get("stderr") == "true", TTY: q.Get("tty") == "1" || q.Get("tty") == "true"}
	if verb == "exec" && len(req.Command) == 0 {
		http.Error(w, "exec: at least one command argument is required", http.StatusBadRequest)
		return
	}
	target, err := rt.StreamURL(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := proxy.NewUpgradeAwareHandler(u, nil, false, true, errorResponder{})
	h.ServeHTTP(w, r)
}

// errorResponder answers a failed proxy with 502.
type errorResponder struct{}

func (errorResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	http.Error(w, err.Error(), http.StatusBadGateway)
}

// CleanupPods removes every pod sandbox of svcnet's own containerd in rootDir
// (or of endpoint), starting that containerd for the purpose when it is not
// running. It returns -1 when there is no such runtime.
func CleanupPods(ctx context.Context, rootDir, endpoint string, log *slog.Logger) (int, error) {
	stop := func() {}
	if endpoint == "" {
		dir := filepath.Join(rootDir, "containerd")
		if _, err := os.Stat(filepath.Join(dir, "config.toml")); err != nil {
			return -1, nil
		}
		endpoint = containerd.Endpoint(dir)
		if !containerd.Answers(ctx, containerd.Socket(dir)) {
			bin, err := podnet.PluginDir(nil)
			if err != nil {
				return 0, err
			}
			p, err := containerd.Start(ctx, containerd.Config{Dir: dir, CNIBinDir: bin, CNIConfDir: filepath.Join(dir, "net.d"), Log: log})
			if err != nil {
				return 0, err
			}
			stop = p.Stop
		}
	}
	defer stop()
	// containerd answers before its CRI plugin has loaded its state: retry.
	var n int
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, criConnectTimeout, true, func(ctx context.Context) (bool, error) {
		rs, err := remote.NewRemoteRuntimeService(ctx, endpoint, criConnectTimeout, noop.NewTracerProvider(), false)
		if err != nil {
			log.Debug("CRI not ready yet", "err", err)
			return false, nil
		}
		defer rs.Close(context.Background())
		if n, err = cri.RemoveAll(ctx, rs); err != nil {
			log.Debug("removing pod sandboxes", "err", err)
			return false, nil
		}
		return true, nil
	})
	return n, err
}
