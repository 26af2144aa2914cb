package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilexec "k8s.io/utils/exec"

	"github.com/svcnet/svcnet/internal/podvol"
)

func TestProcessMounts(t *testing.T) {
	vols := map[string]podvol.Volume{"data": {Host: t.TempDir()}, "cfg": {Host: "/cfg-vol", ReadOnly: true}}
	c := corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "data", MountPath: "/srv/data/logs/"}, {Name: "cfg", MountPath: "/etc/app"}, {Name: "data", MountPath: "/srv/data"}}}
	ms, err := processMounts(c, vols)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, fmt.Sprintf("%s ro=%v", m.Container, m.ReadOnly))
	}
	// Parents first; a file volume is read-only; paths cleaned.
	if want := "/etc/app ro=true|/srv/data ro=false|/srv/data/logs ro=false"; strings.Join(got, "|") != want {
		t.Errorf("mounts = %q, want %q", strings.Join(got, "|"), want)
	}
	for _, path := range []string{"/", "/proc", "/sys/kernel", "/dev", "relative"} {
		bad := corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: path}}}
		if _, err := processMounts(bad, vols); err == nil {
			t.Errorf("mountPath %q: no error", path)
		}
	}
}

// fakeObjects serves one ConfigMap, no Secrets, and fixed tokens.
type fakeObjects struct{}

func (fakeObjects) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	return &corev1.ConfigMap{Data: map[string]string{"app.conf": "debug=1", "GREETING": "hi"}}, nil
}
func (fakeObjects) Secret(ns, name string) (*corev1.Secret, error) {
	return nil, fmt.Errorf("secret %q not found", name)
}
func (fakeObjects) Token(*corev1.Pod, string, int64) (string, error) { return "eyJtoken", nil }

// TestRuntimeVolumesAndInit runs real processes: an init container fills an
// emptyDir, the container sees it, a read-only ConfigMap, a subPath and a
// projected token at their mount paths; then a failing init container under
// restartPolicy Never fails its pod without starting the containers.
func TestRuntimeVolumesAndInit(t *testing.T) {
	needRoot(t)
	mnt := t.TempDir() // mount paths on the node, only ever mounted in the containers' namespaces
	rt, err := New(Options{Root: t.TempDir(), Net: &fakeNet{torndown: map[string]bool{}}, ClusterDNS: []string{"10.96.0.10"}, Objects: fakeObjects{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Shutdown(time.Second) })
	uid := types.UID(fmt.Sprintf("vols-%d", os.Getpid()))
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vols", Namespace: "ns1", UID: uid}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "prepare", Command: []string{"sh", "-c", "sleep 0.5; echo prepared > " + mnt + "/work/ready"},
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: mnt + "/work"}}}},
		Containers: []corev1.Container{{Name: "main", Command: []string{"sleep", "60"},
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: mnt + "/work"}, {Name: "cfg", MountPath: mnt + "/cfg"},
				{Name: "cfg", MountPath: mnt + "/etc/app.conf", SubPath: "app.conf"}, {Name: "sa", MountPath: mnt + "/sa"}}}},
		Volumes: []corev1.Volume{
			{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
			{Name: "sa", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
		}}}
	rt.Sync(p)
	st := waitStatus(t, rt, uid, "initializing", func(s corev1.PodStatus) bool {
		return len(s.InitContainerStatuses) == 1 && s.InitContainerStatuses[0].State.Running != nil
	})
	if st.Phase != corev1.PodPending || st.ContainerStatuses[0].State.Waiting == nil || st.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" {
		t.Errorf("while the init container runs: phase %s, container %+v", st.Phase, st.ContainerStatuses[0].State)
	}
	st = waitStatus(t, rt, uid, "running", func(s corev1.PodStatus) bool { return s.Phase == corev1.PodRunning })
	if ic := st.InitContainerStatuses[0]; ic.State.Terminated == nil || ic.State.Terminated.Reason != "Completed" || !ic.Ready {
		t.Errorf("init container status %+v", ic)
	}
	for _, c := range st.Conditions {
		if c.Type == corev1.PodInitialized && c.Status != corev1.ConditionTrue {
			t.Errorf("Initialized = %s", c.Status)
		}
	}
	out, code := execIn(t, rt, "ns1/vols", "main", "cat "+mnt+"/work/ready "+mnt+"/cfg/app.conf; echo; cat "+mnt+"/etc/app.conf; echo; cat "+mnt+"/sa/token; echo; touch "+mnt+"/cfg/x")
	if out != "prepared\ndebug=1\ndebug=1\neyJtoken\n" || code == 0 {
		t.Errorf("in the container: %q, exit %d; want the files and a failed write to the ConfigMap", out, code)
	}
	// The node itself sees none of it: only the mount points.
	if _, err := os.Stat(filepath.Join(mnt, "work", "ready")); !os.IsNotExist(err) {
		t.Errorf("the emptyDir is visible on the node at its mount path: %v", err)
	}

	// restartPolicy Never: the failing init container fails the pod.
	uid2 := uid + "-fail"
	rt.Sync(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fail", Namespace: "ns1", UID: uid2}, Spec: corev1.PodSpec{
		RestartPolicy:  corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{{Name: "check", Command: []string{"sh", "-c", "exit 3"}}},
		Containers:     []corev1.Container{{Name: "main", Command: []string{"sleep", "60"}}}}})
	st = waitStatus(t, rt, uid2, "failed", func(s corev1.PodStatus) bool { return s.Phase == corev1.PodFailed })
	if ic := st.InitContainerStatuses[0]; ic.State.Terminated == nil || ic.State.Terminated.ExitCode != 3 || st.ContainerStatuses[0].State.Waiting == nil {
		t.Errorf("after the init container failed: init %+v, container %+v", ic.State, st.ContainerStatuses[0].State)
	}
}

func waitStatus(t *testing.T, rt *Runtime, uid types.UID, what string, cond func(corev1.PodStatus) bool) corev1.PodStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, ok := rt.Status(uid)
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached; status %+v", what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func execIn(t *testing.T, rt *Runtime, pod, container, script string) (string, int) {
	t.Helper()
	var out, errOut nopCloser
	out.Buffer, errOut.Buffer = new(bytes.Buffer), new(bytes.Buffer)
	err := rt.ExecInContainer(context.Background(), pod, "", container, []string{"sh", "-c", script}, nil, out, errOut, false, nil, 0)
	code := 0
	if ee, ok := err.(utilexec.CodeExitError); ok {
		code = ee.Code
	} else if err != nil {
		t.Fatalf("exec: %v", err)
	}
	return out.String(), code
}
