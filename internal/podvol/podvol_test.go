package podvol

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	if err := WriteFiles(dir, map[string]pod.File{"a": {Data: []byte("1"), Mode: 0o644}, "sub/b": {Data: []byte("2"), Mode: 0o600}}); err != nil {
		t.Fatal(err)
	}
	// A change rewrites a, drops sub/b, adds c.
	if err := WriteFiles(dir, map[string]pod.File{"a": {Data: []byte("one"), Mode: 0o644}, "c": {Data: []byte("3"), Mode: 0o400}}); err != nil {
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
	ms, err := Mounts(c, map[string]Volume{"data": {Host: vol}})
	realVol, _ := filepath.EvalSymlinks(vol)
	if err != nil || len(ms) != 2 || ms[0].Host != vol || ms[1].Host != filepath.Join(realVol, "logs") || !ms[1].ReadOnly {
		t.Fatalf("mounts = %+v, %v", ms, err)
	}
	if st, err := os.Stat(filepath.Join(vol, "logs")); err != nil || !st.IsDir() {
		t.Errorf("subPath directory not created: %v", err)
	}
	for _, bad := range []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}, {Name: "data", MountPath: "/x", SubPath: "../../etc"}} {
		if _, err := Mounts(corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{bad}}, map[string]Volume{"data": {Host: vol}}); err == nil ||
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
	if _, err := SubPath(vol, "escape"); err == nil || !strings.Contains(err.Error(), "outside the volume") {
		t.Errorf("a link to / must be refused, got %v", err)
	}
	if _, err := SubPath(vol, "escape/etc"); err == nil {
		t.Error("a path through a link to / must be refused")
	}
	real, _ := filepath.EvalSymlinks(vol)
	if got, err := SubPath(vol, "inside"); err != nil || got != filepath.Join(real, "in", "deep") {
		t.Errorf("a link inside the volume: %q, %v", got, err)
	}
	// File volumes are always read-only.
	ms, err := Mounts(corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/app"}}},
		map[string]Volume{"cfg": {Host: vol, ReadOnly: true}})
	if err != nil || !ms[0].ReadOnly {
		t.Errorf("ConfigMap mount read-only: %+v, %v", ms, err)
	}
}

func TestCheckMountPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"/data": true, "/etc/app/config.yaml": true, "/var/run/secrets/kubernetes.io/serviceaccount": true, "/devices": true,
		"": false, "data": false, "/": false, "//": false, "/a/../": false, "/proc": false, "/proc/1": false,
		"/sys/": false, "/sys/fs/cgroup": false, "/dev": false, "/dev/shm": false,
	} {
		if err := CheckMountPath(p); (err == nil) != ok {
			t.Errorf("CheckMountPath(%q) = %v, want ok %v", p, err, ok)
		}
	}
}

type objects struct{}

func (objects) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	return &corev1.ConfigMap{Data: map[string]string{"app.conf": "debug=1"}}, nil
}
func (objects) Secret(ns, name string) (*corev1.Secret, error)   { return nil, errors.New("no secrets") }
func (objects) Token(*corev1.Pod, string, int64) (string, error) { return "tok", nil }

func TestPrepare(t *testing.T) {
	podDir := t.TempDir()
	host := filepath.Join(t.TempDir(), "made")
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	p := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: &dirOrCreate}}},
		{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
	}}}
	vols, err := Prepare(podDir, p, objects{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Volume{"scratch": {Host: filepath.Join(podDir, "volumes", "scratch")}, "cfg": {Host: filepath.Join(podDir, "volumes", "cfg"), ReadOnly: true},
		"host": {Host: host}, "tok": {Host: filepath.Join(podDir, "volumes", "tok"), ReadOnly: true}}
	for name, v := range want {
		if vols[name] != v {
			t.Errorf("volume %s = %+v, want %+v", name, vols[name], v)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(podDir, "volumes", "cfg", "app.conf")); string(b) != "debug=1" {
		t.Errorf("configMap file = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(podDir, "volumes", "tok", "token")); string(b) != "tok" {
		t.Errorf("token file = %q", b)
	}
	if st, err := os.Stat(host); err != nil || !st.IsDir() {
		t.Errorf("hostPath DirectoryOrCreate not created: %v", err)
	}
	for _, bad := range []corev1.Volume{
		{Name: "../x", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
		{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "x", Path: "/"}}},
	} {
		if _, err := Prepare(podDir, &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{bad}}}, objects{}); err == nil {
			t.Errorf("volume %+v: no error", bad)
		}
	}
}
