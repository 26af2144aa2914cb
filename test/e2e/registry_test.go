package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"k8s.io/apimachinery/pkg/util/wait"
)

// The registry's only account.
const (
	registryUser     = "team"
	registryPassword = "s3cret-pull"
)

// registryTarballs returns the offline pause and busybox tarballs, building
// them with scripts/test-images.sh when missing (that works here only from the
// builder's cache: the test namespace has no route out).
func registryTarballs(t *testing.T) (pause, busybox string) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		fail("containerd is not installed (scripts/test-deps.sh installs it): %v", err)
	}
	dir := os.Getenv("SVCNET_E2E_IMAGES")
	if dir == "" {
		dir = "/var/cache/svcnet-images/out"
	}
	pause, busybox = filepath.Join(dir, "pause.tar"), filepath.Join(dir, "busybox.tar")
	missing := func() bool {
		for _, f := range []string{pause, busybox} {
			if _, err := os.Stat(f); err != nil {
				return true
			}
		}
		return false
	}
	if missing() {
		cmd := exec.Command(filepath.Join(repoRoot(), "scripts", "test-images.sh"), dir)
		cmd.Env = append(os.Environ(), "SVCNET_IMAGES=pause.tar,busybox.tar")
		if out, err := cmd.CombinedOutput(); err != nil || missing() {
			fail("pause.tar and busybox.tar are not in %s and scripts/test-images.sh %s could not build them (run it as root before the tests): %v\n%s", dir, dir, err, out)
		}
	}
	return pause, busybox
}

// startRegistry serves go-containerregistry's registry behind HTTP basic auth
// on 127.0.0.1 and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != registryUser || p != registryPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="svcnet-e2e"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushImage uploads img as base/repo:tag with the registry's account, through
// the distribution API (blobs, then the manifest). crane would do the same but
// its keychain brings modules svcnet does not otherwise need (docker/cli).
func pushImage(base, repo, tag string, img v1.Image) error {
	do := func(method, url, contentType string, body io.Reader, want int) (*http.Response, error) {
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(registryUser, registryPassword)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			msg, _ := io.ReadAll(resp.Body)
			return nil, fmt.Errorf("%s %s: %s %s", method, url, resp.Status, msg)
		}
		return resp, nil
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	blobs := map[v1.Hash]func() (io.ReadCloser, error){}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		blobs[d] = l.Compressed
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cfgDigest, err := img.ConfigName()
	if err != nil {
		return err
	}
	blobs[cfgDigest] = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(cfg))), nil }
	for d, open := range blobs {
		resp, err := do(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
		if err != nil {
			return err
		}
		loc, err := resp.Location()
		if err != nil {
			return err
		}
		q := loc.Query()
		q.Set("digest", d.String())
		loc.RawQuery = q.Encode()
		rc, err := open()
		if err != nil {
			return err
		}
		_, err = do(http.MethodPut, loc.String(), "application/octet-stream", rc, http.StatusCreated)
		rc.Close()
		if err != nil {
			return err
		}
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	mt, err := img.MediaType()
	if err != nil {
		return err
	}
	_, err = do(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, string(mt), strings.NewReader(string(manifest)), http.StatusCreated)
	return err
}

// watchReasons follows the waiting reason of pod's first container with
// `kubectl get -w` (every status written, however briefly: the agent may
// replace ErrImagePull with ImagePullBackOff within milliseconds) and returns
// a function that waits until the reasons seen so far, in order with repeats
// folded, satisfy done.
func watchReasons(t *testing.T, c *cluster, pod string) func(timeout time.Duration, done func(seen []string) bool) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, kubectlBin, "get", "pod", pod, "-w", "-o", `jsonpath={.status.containerStatuses[0].state.waiting.reason}{"\n"}`)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+c.dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			reason := strings.TrimSpace(sc.Text())
			mu.Lock()
			if reason != "" && (len(seen) == 0 || seen[len(seen)-1] != reason) {
				seen = append(seen, reason)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return func(timeout time.Duration, done func([]string) bool) []string {
		t.Helper()
		snapshot := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(seen)
		}
		err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
			return done(snapshot()), nil
		})
		if err != nil {
			status, _, _ := c.kubectl("get", "pod", pod, "-o", "jsonpath={.status}")
			t.Fatalf("pod %s: waiting reasons %v after %v\nstatus: %s", pod, snapshot(), timeout, status)
		}
		return snapshot()
	}
}

func TestRegistryPull(t *testing.T) {
	requireCNI(t)
	pauseTar, busyboxTar := registryTarballs(t)

	// The registry, with busybox pushed under two tags: v1 is pulled with the
	// secret, v2 (never pulled with credentials) without.
	reg := startRegistry(t)
	img, err := tarball.ImageFromPath(busyboxTar, nil)
	if err != nil {
		t.Fatalf("read %s: %v", busyboxTar, err)
	}
	for _, tag := range []string{"v1", "v2"} {
		if err := pushImage("http://"+reg, "team/busybox", tag, img); err != nil {
			t.Fatalf("push %s/team/busybox:%s: %v", reg, tag, err)
		}
	}
	if resp, err := http.Get("http://" + reg + "/v2/team/busybox/manifests/v1"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the registry must refuse a pull without credentials: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	image := reg + "/team/busybox:v1"

	// svcnet with only the pause image on the node.
	images := t.TempDir()
	data, err := os.ReadFile(pauseTar)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(images, "pause.tar"), string(data), 0o644)
	dir := t.TempDir()
	t.Cleanup(func() { // after svcnet stops: no container outlives the test
		out, err := exec.Command(svcnetBin, "agent", "--cleanup", "--root-dir", filepath.Join(dir, "agent")).CombinedOutput()
		if err != nil {
			t.Errorf("svcnet agent --cleanup: %v %s", err, out)
		}
	})
	c := startCluster(t, dir, freePort(t), "--container-runtime=cri", "--pod-runtime=on", "--images", images,
		"--insecure-registry", reg, "--node-name", "local", "--dns-resolv-conf", "")
	t.Cleanup(func() {
		if t.Failed() {
			if data, err := os.ReadFile(filepath.Join(dir, "agent", "containerd", "containerd.log")); err == nil {
				t.Logf("containerd.log (pull lines):\n%s", grepLines(string(data), "PullImage", "trying next host"))
			}
		}
	})
	hosts, err := os.ReadFile(filepath.Join(dir, "agent", "containerd", "certs.d", reg, "hosts.toml"))
	if err != nil || !strings.Contains(string(hosts), `server = "http://`+reg+`"`) {
		t.Fatalf("certs.d/%s/hosts.toml: %v\n%s", reg, err, hosts)
	}

	c.must("create", "secret", "docker-registry", "regcred", "--docker-server="+reg,
		"--docker-username="+registryUser, "--docker-password="+registryPassword)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: with-secret
spec:
  terminationGracePeriodSeconds: 1
  imagePullSecrets: [{name: regcred}]
  containers:
  - {name: c, image: %[1]s/team/busybox:v1, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata:
  name: no-secret
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: %[1]s/team/busybox:v2, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata:
  name: never
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: %[1]s/team/absent:v1, imagePullPolicy: Never, command: [sleep, "3600"]}
`, reg)
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "pods.yaml"), manifest, 0o644))
	waitNever, waitNoSecret := watchReasons(t, c, "never"), watchReasons(t, c, "no-secret")

	// (c) Policy Never for an image the node lacks.
	waitNever(20*time.Second, func(seen []string) bool { return slices.Contains(seen, "ErrImageNeverPull") })

	// (b) No credentials: the registry refuses, ErrImagePull, then back-off.
	seen := waitNoSecret(40*time.Second, func(seen []string) bool {
		i := slices.Index(seen, "ErrImagePull")
		return i >= 0 && slices.Contains(seen[i:], "ImagePullBackOff")
	})
	t.Logf("no-secret: waiting reasons %v", seen)
	msg := c.must("get", "pod", "no-secret", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}")
	if low := strings.ToLower(msg); !strings.Contains(low, "401") && !strings.Contains(low, "unauthorized") {
		t.Errorf("no-secret: message %q does not say the registry refused", msg)
	}

	// (a) Pulled with the secret's credentials: Running, with the image's digest.
	var out string
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 45*time.Second, true, func(context.Context) (bool, error) {
		out, _, _ = c.kubectl("get", "pod", "with-secret", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].imageID}")
		return strings.HasPrefix(out, "Running "), nil
	})
	if err != nil {
		msg, _, _ := c.kubectl("get", "pod", "with-secret", "-o", "jsonpath={.status.containerStatuses[0].state.waiting}")
		t.Fatalf("with-secret: not Running within 45s (%q); waiting: %s", out, msg)
	}
	if id := strings.TrimPrefix(out, "Running "); !strings.Contains(id, "sha256:") {
		t.Errorf("with-secret: imageID = %q, want a digest", id)
	}
	t.Logf("with-secret: %s (image %s)", out, image)

	c.must("delete", "pod", "with-secret", "no-secret", "never", "--timeout=30s")
}

// grepLines keeps the lines of s holding any of words.
func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(l, w) }) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
