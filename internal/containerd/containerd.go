// Package containerd runs the node's own containerd the way k3s does: a child
// process of the agent whose config, root, state and socket live in the
// agent's data directory, with the CRI plugin pointed at svcnet's CNI network.
// It also imports image tarballs into it (ctr, from the same Debian package).
package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// Namespace is the containerd namespace the CRI plugin keeps Kubernetes' images and containers in.
const Namespace = "k8s.io"

// DefaultSandboxImage is the pause image pod sandboxes run (the kubelet's default in v1.34).
const DefaultSandboxImage = "registry.k8s.io/pause:3.10"

// startTimeout bounds how long containerd may take to answer on its socket.
const startTimeout = 30 * time.Second

// Config describes the node's containerd.
type Config struct {
	Dir          string // root, state, config and socket live here
	CNIBinDir    string // where the CNI plugins are
	CNIConfDir   string // where svcnet writes its network's conflist
	SandboxImage string
	// RestrictOOMScoreAdj keeps containers' OOM score adjustments at or above
	// containerd's own: needed where the node lacks CAP_SYS_RESOURCE (a
	// sandbox's -998 is then refused by the kernel and no pod starts).
	RestrictOOMScoreAdj bool
	// InsecureRegistries (host:port) are reached over plain HTTP, or HTTPS
	// without verifying the certificate (hosts.toml files in <Dir>/certs.d).
	InsecureRegistries []string
	Log                *slog.Logger
}

// Socket is the path of the gRPC socket of a containerd run with dir.
func Socket(dir string) string { return filepath.Join(dir, "containerd.sock") }

// Endpoint is the CRI endpoint (the kubelet's --container-runtime-endpoint form).
func Endpoint(dir string) string { return "unix://" + Socket(dir) }

var configTmpl = template.Must(template.New("config").Parse(`# Written by svcnet: the node's own containerd (do not edit; rewritten at every start).
version = 2
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{.Dir}}/containerd.sock"

[ttrpc]
  address = "{{.Dir}}/containerd.sock.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.SandboxImage}}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = {{.RestrictOOMScoreAdj}}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBinDir}}"
    conf_dir = "{{.CNIConfDir}}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{{.Dir}}/certs.d"
`))

// RenderConfig is containerd's config.toml for c.
func RenderConfig(c Config) (string, error) {
	for name, v := range map[string]string{"Dir": c.Dir, "CNIBinDir": c.CNIBinDir, "CNIConfDir": c.CNIConfDir} {
		if v == "" {
			return "", fmt.Errorf("containerd config: %s is required", name)
		}
		if strings.ContainsAny(v, "\"\n\\") {
			return "", fmt.Errorf("containerd config: %s %q has a character TOML would need escaped", name, v)
		}
	}
	if c.SandboxImage == "" {
		c.SandboxImage = DefaultSandboxImage
	}
	var b bytes.Buffer
	err := configTmpl.Execute(&b, c)
	return b.String(), err
}

// capSysResource is CAP_SYS_RESOURCE's bit number.
const capSysResource = 24

// hasCapability reports whether this process has capability bit cap effective.
func hasCapability(cap uint) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<cap) != 0
		}
	}
	return false
}

// Process is a running containerd started by Start.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *slog.Logger
}

// Start writes the config and starts containerd, returning once its socket
// answers. Its output goes to <dir>/containerd.log.
func Start(ctx context.Context, c Config) (*Process, error) {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, fmt.Errorf("containerd is not installed (apt-get install containerd runc): %w", err)
	}
	if !hasCapability(capSysResource) {
		c.RestrictOOMScoreAdj = true
		c.Log.Info("no CAP_SYS_RESOURCE: containers keep containerd's OOM score adjustment (restrict_oom_score_adj)")
	}
	cfg, err := RenderConfig(c)
	if err != nil {
		return nil, err
	}
	if err := EnsureCgroups(); err != nil {
		return nil, err
	}
	for _, d := range []string{c.Dir, c.CNIConfDir, filepath.Join(c.Dir, "certs.d")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := WriteHosts(filepath.Join(c.Dir, "certs.d"), c.InsecureRegistries); err != nil {
		return nil, err
	}
	path := filepath.Join(c.Dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(c.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	_ = os.Remove(Socket(c.Dir)) // left by a containerd that was killed
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C meant for svcnet reaches containerd only
	// through Stop, after the agent is done with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), log: c.Log}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	c.Log.Info("starting containerd", "pid", cmd.Process.Pid, "config", path, "log", logf.Name())
	if err := p.waitReady(ctx, Socket(c.Dir)); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w (see %s)", err, logf.Name())
	}
	return p, nil
}

// Answers reports whether a containerd answers on socket.
func Answers(ctx context.Context, socket string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "ctr", "--address", socket, "version").Run() == nil
}

// waitReady waits until the socket accepts a ctr call.
func (p *Process) waitReady(ctx context.Context, sock string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		if _, err := os.Stat(sock); err == nil {
			if out, err := exec.CommandContext(ctx, "ctr", "--address", sock, "version").CombinedOutput(); err == nil {
				return nil
			} else if ctx.Err() != nil {
				return fmt.Errorf("containerd did not answer on %s: %s", sock, strings.TrimSpace(string(out)))
			}
		}
		select {
		case <-p.done:
			return errors.New("containerd exited at start")
		case <-ctx.Done():
			return fmt.Errorf("containerd did not open %s within %s", sock, startTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends containerd (SIGTERM, then SIGKILL after 10 s). The containers it
// runs live on in their shims, and the next containerd takes them back.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Info("containerd stopped")
}

// Import loads image tarballs (docker-archive or OCI) into the containerd at
// socket, where the CRI plugin sees them, printing ctr's progress to out.
func Import(ctx context.Context, socket string, files []string, out *os.File) error {
	if _, err := exec.LookPath("ctr"); err != nil {
		return fmt.Errorf("ctr is not installed (apt-get install containerd): %w", err)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("image file: %w", err)
		}
		cmd := exec.CommandContext(ctx, "ctr", "--address", socket, "--namespace", Namespace, "images", "import", f)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("import %s: %w", f, err)
		}
	}
	return nil
}
