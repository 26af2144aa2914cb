package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/svcnet/svcnet/internal/podvol"
)

// initArg0 is argv[0] of the helper that turns into a container process; main
// calls MaybeInit first so the svcnet binary can play that role.
const initArg0 = "svcnet-container-init"

// initSpec is what the helper needs to become the container's process.
type initSpec struct {
	Netns    string   `json:"netns"`
	Resolv   string   `json:"resolv,omitempty"`
	Hosts    string   `json:"hosts,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	Dir      string   `json:"dir,omitempty"`
	Argv     []string `json:"argv"`
	Env      []string `json:"env"`
	// Mounts are the container's volumes, in mount order (parents first).
	Mounts []podvol.Mount `json:"mounts,omitempty"`
}

// MaybeInit turns this process into a container process when it was started as
// the container helper, and never returns then. Call it first in main.
func MaybeInit() {
	if filepath.Base(os.Args[0]) != initArg0 {
		return
	}
	err := containerInit()
	errPipe := os.NewFile(4, "errors")
	fmt.Fprint(errPipe, err.Error())
	os.Exit(127)
}

// containerInit runs in a fresh mount and UTS namespace (made by clone): it
// bind-mounts the container's volumes, gives the process the pod's
// resolv.conf, hosts and hostname, joins the pod's network namespace and execs
// the container's command.
func containerInit() error {
	cfg := os.NewFile(3, "spec")
	var s initSpec
	if err := json.NewDecoder(cfg).Decode(&s); err != nil {
		return fmt.Errorf("read container spec: %w", err)
	}
	cfg.Close()
	unix.CloseOnExec(4)
	goruntime.LockOSThread() // setns changes only this thread, which then execs
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	for _, m := range s.Mounts {
		if err := bindMount(m); err != nil {
			return fmt.Errorf("mount volume on %s: %w", m.Container, err)
		}
	}
	for src, dst := range map[string]string{s.Resolv: "/etc/resolv.conf", s.Hosts: "/etc/hosts"} {
		if src == "" || slices.ContainsFunc(s.Mounts, func(m podvol.Mount) bool { return filepath.Clean(m.Container) == dst }) {
			continue // the pod mounts its own
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s on %s: %w", src, dst, err)
		}
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if s.Netns != "" {
		fd, err := unix.Open(s.Netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open pod network namespace: %w", err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join pod network namespace: %w", err)
		}
		unix.Close(fd)
	}
	if s.Dir != "" {
		if err := os.Chdir(s.Dir); err != nil {
			return fmt.Errorf("workingDir: %w", err)
		}
	}
	path, err := lookPath(s.Argv[0], s.Env)
	if err != nil {
		return err
	}
	return unix.Exec(path, s.Argv, s.Env)
}

// bindMount binds m.Host on m.Container (made if missing: a directory, or an
// empty file for a file) in this private mount namespace; read-only is a bind
// then a read-only remount, keeping the flags the source was mounted with.
func bindMount(m podvol.Mount) error {
	st, err := os.Stat(m.Host)
	if err != nil {
		return err
	}
	if st.IsDir() {
		err = os.MkdirAll(m.Container, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(m.Container), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(m.Container, os.O_RDONLY|os.O_CREATE, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if err := unix.Mount(m.Host, m.Container, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if !m.ReadOnly {
		return nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(m.Container, &fs); err != nil {
		return err
	}
	keep := uintptr(fs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	return unix.Mount("", m.Container, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, "")
}

// lookPath finds a command on the container's own PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// defaultPath is the PATH of a container whose spec sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stdio are the helper's standard streams; tty, when set, is the terminal's
// child side and becomes all three (and the controlling terminal).
type stdio struct {
	in       *os.File
	out, err *os.File
	tty      *os.File
}

// spawn starts the container helper and waits until it has exec'd the
// command (or failed to: that error comes back from spawn).
func spawn(s initSpec, std stdio) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, err
	}
	defer errR.Close()
	cmd := &exec.Cmd{Path: self, Args: []string{initArg0}, Env: []string{}, ExtraFiles: []*os.File{specR, errW},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS, Setpgid: true}}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = std.in, std.out, std.err
	if std.tty != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = std.tty, std.tty, std.tty
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty = true, true
	}
	// exec.Cmd leaves stdin nil as /dev/null; an explicit nil *os.File must not reach it.
	if f, ok := cmd.Stdin.(*os.File); ok && f == nil {
		cmd.Stdin = nil
	}
	if f, ok := cmd.Stdout.(*os.File); ok && f == nil {
		cmd.Stdout = nil
	}
	if f, ok := cmd.Stderr.(*os.File); ok && f == nil {
		cmd.Stderr = nil
	}
	startErr := cmd.Start()
	specR.Close()
	errW.Close()
	if startErr != nil {
		specW.Close()
		return nil, fmt.Errorf("start container helper: %w", startErr)
	}
	go func() {
		_ = json.NewEncoder(specW).Encode(s)
		specW.Close()
	}()
	msg, _ := readAll(errR)
	if len(msg) > 0 {
		_ = cmd.Wait()
		return nil, errors.New(string(msg))
	}
	return cmd, nil
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 4096)) }

// signalGroup signals the process group of a container started with spawn.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		_ = cmd.Process.Signal(sig)
	}
}
