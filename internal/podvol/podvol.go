// Package podvol puts a pod's volumes on the node and resolves its containers'
// volume mounts, for both pod runtimes (processes and CRI): emptyDir and
// hostPath directories, ConfigMap, Secret, downward API and projected files
// under the pod's directory, subPath kept inside its volume.
package podvol

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/svcnet/svcnet/internal/pod"
)

// Volume is where a pod volume is on the node.
type Volume struct {
	Host     string
	ReadOnly bool // always mounted read-only (ConfigMap, Secret, downward API, projected)
}

// Mount is one bind mount of a volume (or a path inside it) into a container.
type Mount struct {
	Container, Host string
	ReadOnly        bool
}

// Prepare makes the pod's volumes exist on the node and returns each one's
// host path: emptyDir directories under podDir/volumes, hostPath paths
// (created for the *OrCreate types), and ConfigMap, Secret, downward API and
// projected files, rewritten when their source changed (as the kubelet
// refreshes them; callers call Prepare again to refresh).
func Prepare(podDir string, p *corev1.Pod, src pod.Objects) (map[string]Volume, error) {
	out := map[string]Volume{}
	for _, v := range p.Spec.Volumes {
		if !IsName(v.Name) { // the API refuses these; a path must never leave the pod's directory
			return nil, fmt.Errorf("volume name %q is not a DNS label", v.Name)
		}
		switch {
		case v.HostPath != nil:
			if err := HostPath(v.HostPath); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			out[v.Name] = Volume{Host: v.HostPath.Path}
		case v.EmptyDir != nil:
			dir := filepath.Join(podDir, "volumes", v.Name)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, err
			}
			_ = os.Chmod(dir, 0o777) // as the kubelet: any user of the pod may write
			out[v.Name] = Volume{Host: dir}
		default:
			files, err := pod.VolumeFiles(p, v, src)
			if err != nil {
				return nil, err
			}
			if files == nil {
				return nil, fmt.Errorf("volume %q: only emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes are supported by svcnet", v.Name)
			}
			dir := filepath.Join(podDir, "volumes", v.Name)
			if err := WriteFiles(dir, files); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			out[v.Name] = Volume{Host: dir, ReadOnly: true} // as the kubelet: containers cannot change them
		}
	}
	return out, nil
}

// IsName reports whether s is a DNS label (volume and container names), so
// it is safe as one path element.
func IsName(s string) bool { return len(validation.IsDNS1123Label(s)) == 0 }

// HostPath checks or creates a hostPath volume as its type says.
func HostPath(h *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	st, err := os.Stat(h.Path)
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if os.IsNotExist(err) {
			return os.MkdirAll(h.Path, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("hostPath type check failed: %s is not a %s", h.Path, t)
	}
	switch {
	case t == corev1.HostPathDirectory && !st.IsDir(), t == corev1.HostPathDirectoryOrCreate && !st.IsDir():
		return fmt.Errorf("hostPath type check failed: %s is not a directory", h.Path)
	case (t == corev1.HostPathFile || t == corev1.HostPathFileOrCreate) && !st.Mode().IsRegular():
		return fmt.Errorf("hostPath type check failed: %s is not a file", h.Path)
	case t == corev1.HostPathSocket && st.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("hostPath type check failed: %s is not a socket file", h.Path)
	}
	return nil
}

// WriteFiles makes dir hold exactly files: changed ones replaced atomically
// (write, then rename), others left alone, files no longer listed removed.
func WriteFiles(dir string, files map[string]pod.File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for rel, f := range files {
		p := filepath.Join(dir, rel)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, f.Data) {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm() == f.Mode {
				continue
			}
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := p + ".svcnet-tmp"
		if err := os.WriteFile(tmp, f.Data, f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(tmp, f.Mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			return os.Remove(p)
		}
		return nil
	})
}

// Mounts are a container's volume mounts (subPath resolved inside the
// volume, never outside it), in the order of the spec.
func Mounts(c corev1.Container, vols map[string]Volume) ([]Mount, error) {
	var out []Mount
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("container %q: volumeMount %q names no volume of the pod", c.Name, vm.Name)
		}
		host := v.Host
		if vm.SubPath != "" {
			var err error
			if host, err = SubPath(v.Host, vm.SubPath); err != nil {
				return nil, fmt.Errorf("container %q: volumeMount %q: %w", c.Name, vm.Name, err)
			}
		}
		out = append(out, Mount{Container: vm.MountPath, Host: host, ReadOnly: vm.ReadOnly || v.ReadOnly})
	}
	return out, nil
}

// SubPath resolves sub inside the volume at root, creating it as a directory
// when missing. Symbolic links are resolved and must stay inside the volume:
// a container could otherwise link a path of its volume to the node's / and
// have it mounted (CVE-2017-1002101). (A link swapped in between this check
// and the mount is not caught; the kubelet closes that gap with openat.)
func SubPath(root, sub string) (string, error) {
	clean := filepath.Clean(sub)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("subPath %q must be a relative path inside the volume", sub)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	host := filepath.Join(realRoot, clean)
	if _, err := os.Lstat(host); os.IsNotExist(err) {
		if err := os.MkdirAll(host, 0o755); err != nil {
			return "", err
		}
	}
	real, err := filepath.EvalSymlinks(host)
	if err != nil {
		return "", err
	}
	if real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
		return "", fmt.Errorf("subPath %q leads outside the volume (to %s)", sub, real)
	}
	return real, nil
}

// reservedMountPaths are what a process container shares with the node and
// needs itself: a volume mounted there would shadow the node's root or the
// kernel's filesystems for the process.
var reservedMountPaths = []string{"/proc", "/sys", "/dev"}

// CheckMountPath refuses a mountPath a process container cannot have: not
// absolute, with "..", the root itself, or at or under /proc, /sys or /dev.
// (Image containers have their own root; there any path is fine.)
func CheckMountPath(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("mountPath %q must be absolute", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("mountPath %q may not contain '..'", p)
		}
	}
	clean := filepath.Clean(p)
	if clean == "/" {
		return fmt.Errorf("mountPath %q would shadow the node's root: containers run as processes of the node", p)
	}
	for _, r := range reservedMountPaths {
		if clean == r || strings.HasPrefix(clean, r+"/") {
			return fmt.Errorf("mountPath %q would shadow the node's %s: containers run as processes of the node", p, r)
		}
	}
	return nil
}
