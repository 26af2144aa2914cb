package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	if err := writeFiles(dir, map[string]pod.File{"a": {Data: []byte("1"), Mode: 0o644}, "sub/b": {Data: []byte("2"), Mode: 0o600}}); err != nil {
		t.Fatal(err)
	}
	// A change rewrites a, drops sub/b, adds c.
	if err := writeFiles(dir, map[string]pod.File{"a": {Data: []byte("one"), Mode: 0o644}, "c": {Data: []byte("3"), Mode: 0o400}}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "one", "c": "3"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "c")); st == nil || st.Mode().Perm() != 0o400 {
		t.Errorf("mode of c = %v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "b")); !os.IsNotExist(err) {
		t.Errorf("sub/b should be gone: %v", err)
	}
}

func TestMounts(t *testing.T) {
	vol := t.TempDir()
	c := corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "data", MountPath: "/data"}, {Name: "data", MountPath: "/logs", SubPath: "logs", ReadOnly: true}}}
	ms, err := mounts(c, map[string]volume{"data": {host: vol}})
	realVol, _ := filepath.EvalSymlinks(vol)
	if err != nil || len(ms) != 2 || ms[0].host != vol || ms[1].host != filepath.Join(realVol, "logs") || !ms[1].readOnly {
		t.Fatalf("mounts = %+v, %v", ms, err)
	}
	if st, err := os.Stat(filepath.Join(vol, "logs")); err != nil || !st.IsDir() {
		t.Errorf("subPath directory not created: %v", err)
	}
	for _, bad := range []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}, {Name: "data", MountPath: "/x", SubPath: "../../etc"}} {
		if _, err := mounts(corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{bad}}, map[string]volume{"data": {host: vol}}); err == nil ||
			!strings.Contains(err.Error(), "volumeMount") {
			t.Errorf("mount %+v: err = %v", bad, err)
		}
	}
}

func TestSubPathSymlinkStaysInside(t *testing.T) {
	vol := t.TempDir()
	if err := os.Symlink("/", filepath.Join(vol, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(vol, "in", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("in/deep", filepath.Join(vol, "inside")); err != nil {
		t.Fatal(err)
	}
	if _, err := subPath(vol, "escape"); err == nil || !strings.Contains(err.Error(), "outside the volume") {
		t.Errorf("a link to / must be refused, got %v", err)
	}
	if _, err := subPath(vol, "escape/etc"); err == nil {
		t.Error("a path through a link to / must be refused")
	}
	real, _ := filepath.EvalSymlinks(vol)
	if got, err := subPath(vol, "inside"); err != nil || got != filepath.Join(real, "in", "deep") {
		t.Errorf("a link inside the volume: %q, %v", got, err)
	}
	// File volumes are always read-only.
	ms, err := mounts(corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/app"}}},
		map[string]volume{"cfg": {host: vol, readOnly: true}})
	if err != nil || !ms[0].readOnly {
		t.Errorf("ConfigMap mount read-only: %+v, %v", ms, err)
	}
}
