package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// procVolumesPod mounts its volumes under MNT (the test's directory): a
// process container shares the node's filesystem, so its mount points are
// made on the node, while the mounts exist only in the container.
const procVolumesPod = `apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {app.conf: "debug=1", GREETING: hi}
---
apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: prepare
    image: busybox
    command: [sh, -c, "echo preparing; sleep 4; echo prepared > MNT/work/ready"]
    volumeMounts: [{name: work, mountPath: MNT/work}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "echo from main > MNT/logs/main.log; exec sleep 3600"]
    envFrom: [{configMapRef: {name: app}}]
    volumeMounts:
    - {name: work, mountPath: MNT/work}
    - {name: work, mountPath: MNT/logs, subPath: logs}
    - {name: cfg, mountPath: MNT/cfg, readOnly: true}
    - {name: cfg, mountPath: MNT/etc/app.conf, subPath: app.conf}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: cfg, configMap: {name: app}}
---
apiVersion: v1
kind: Pod
metadata: {name: initfail}
spec:
  restartPolicy: Never
  initContainers:
  - {name: check, image: busybox, command: [sh, -c, "exit 2"]}
  containers:
  - {name: main, image: busybox, command: [sleep, "3600"]}
`

// TestProcessVolumes runs a pod's volumes and init containers with the process
// runtime: the init container fills an emptyDir before the container starts
// (Init:0/1, then Running), a ConfigMap is mounted read-only as files and given
// as env, subPath mounts a directory of a volume and a file of another, every
// pod has its service account files, and a ConfigMap change reaches the files.
// A failing init container under restartPolicy Never fails its pod.
func TestProcessVolumes(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--container-runtime=process", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "vols.yaml"), strings.ReplaceAll(procVolumesPod, "MNT", mnt), 0o644))

	status := func(s string) string { // the STATUS column of kubectl get pod --no-headers
		if f := strings.Fields(s); len(f) > 2 {
			return f[2]
		}
		return ""
	}
	waitKubectl(t, c, "vols initializing", 30*time.Second, func(s string) bool { return status(s) == "Init:0/1" }, "get", "pod", "vols", "--no-headers")
	waitKubectl(t, c, "vols running", 30*time.Second, func(s string) bool { return status(s) == "Running" }, "get", "pod", "vols", "--no-headers")
	if got := c.must("get", "pod", "vols", "-o", `jsonpath={.status.initContainerStatuses[0].state.terminated.reason} {.status.conditions[?(@.type=="Initialized")].status}`); got != "Completed True" {
		t.Errorf("init container reason, Initialized = %q", got)
	}

	script := strings.ReplaceAll(`cat MNT/work/ready; echo $GREETING; cat MNT/cfg/app.conf; echo; cat MNT/etc/app.conf; echo; cat MNT/work/logs/main.log
cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token; echo`, "MNT", mnt)
	want := "prepared\nhi\ndebug=1\ndebug=1\nfrom main\ndefault\neyJ\n"
	if got := c.must("exec", "vols", "--", "sh", "-c", script); got != want {
		t.Errorf("files in the container:\n%q\nwant\n%q", got, want)
	}
	if _, errOut, err := c.kubectl("exec", "vols", "--", "sh", "-c", "echo x > "+mnt+"/cfg/app.conf"); err == nil || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("writing to the ConfigMap volume: err %v, stderr %q; want a read-only file system", err, errOut)
	}

	// The files follow the ConfigMap (a refresh every 10 s); the subPath file keeps its content, as in Kubernetes.
	c.must("patch", "configmap", "app", "-p", `{"data":{"app.conf":"debug=2"}}`)
	waitKubectl(t, c, "updated ConfigMap file", 40*time.Second, func(s string) bool { return s == "debug=2" }, "exec", "vols", "--", "cat", mnt+"/cfg/app.conf")

	waitKubectl(t, c, "initfail failed", 30*time.Second, func(s string) bool { return status(s) == "Init:Error" }, "get", "pod", "initfail", "--no-headers")
	if got := c.must("get", "pod", "initfail", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.waiting.reason}"); got != "Failed PodInitializing" {
		t.Errorf("pod with a failed init container: phase, container's reason = %q", got)
	}
	c.must("delete", "pod", "vols", "initfail")
}
