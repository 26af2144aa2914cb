// Package e2e runs svcnet end to end: the real binary, embedded etcd, the real
// kubectl and client-go, inside a network namespace created for the run that has
// no route out (only loopback), so no test traffic can leave the machine.
//
// Needs root (ip netns). Without root the suite is skipped with a message, except
// under CI=true, where it fails.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Set inside the namespace by TestMain.
var (
	svcnetBin   string
	kubectlBin  string
	informerBin string // test/tools/informer, built with client-go v0.32
)

const (
	envNetns    = "SVCNET_E2E_NETNS"
	envBin      = "SVCNET_E2E_BIN"
	envKubectl  = "SVCNET_E2E_KUBECTL"
	envInformer = "SVCNET_E2E_INFORMER"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestMain(m *testing.M) {
	if os.Getenv(envNetns) != "" {
		svcnetBin, kubectlBin, informerBin = os.Getenv(envBin), os.Getenv(envKubectl), os.Getenv(envInformer)
		os.Exit(m.Run())
	}
	os.Exit(outside(m))
}

// outside builds what the tests need (the network is still reachable here), makes
// the namespace, and re-runs this test binary inside it.
func outside(m *testing.M) int {
	if os.Geteuid() != 0 {
		msg := "e2e: SKIP: these tests need root to create network namespaces (run as root, e.g. sudo make test)"
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "e2e: FAIL: running as non-root under CI=true;", msg)
			return 1
		}
		fmt.Println(msg)
		return 0
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: the ip command (iproute2) is missing; run scripts/test-deps.sh")
		return 1
	}
	tmp, err := os.MkdirTemp("", "svcnet-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "svcnet")
	fmt.Println("e2e: building svcnet")
	build := exec.Command("go", "build", "-o", bin, "./cmd/svcnet")
	build.Dir, build.Stdout, build.Stderr = repoRoot(), os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: build svcnet:", err)
		return 1
	}
	kubectl, err := findKubectl(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL:", err)
		return 1
	}
	informer := filepath.Join(tmp, "informer")
	if err := buildTool("informer", informer); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL:", err)
		return 1
	}
	ns := fmt.Sprintf("svcnet-e2e-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: ip netns add %s: %v %s\n", ns, err, out)
		return 1
	}
	defer func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: cleanup: ip netns del %s: %v %s\n", ns, err, out)
		}
	}()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: lo up: %v %s\n", err, out)
		return 1
	}
	if out, _ := exec.Command("ip", "-n", ns, "route", "show", "default").Output(); strings.TrimSpace(string(out)) != "" {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: namespace %s has a default route: %s\n", ns, out)
		return 1
	}
	fmt.Printf("e2e: running inside network namespace %s (loopback only) with %s\n", ns, kubectl)
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, os.Args[0]}, os.Args[1:]...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNetns+"="+ns, envBin+"="+bin, envKubectl+"="+kubectl, envInformer+"="+informer)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "e2e: FAIL:", err)
		return 1
	}
	return 0
}

// findKubectl returns kubectl from PATH, or builds one from the k8s.io/kubectl
// module (test/tools/kubectl, its own Go module) where none is installed.
func findKubectl(dir string) (string, error) {
	if p := os.Getenv("KUBECTL"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p, nil
	}
	out := filepath.Join(dir, "kubectl")
	fmt.Println("e2e: kubectl not found, building it from k8s.io/kubectl (test/tools/kubectl)")
	return out, buildTool("kubectl", out)
}

// buildTool builds test/tools/<name> (a separate Go module pinning older client
// libraries) into out.
func buildTool(name, out string) error {
	build := exec.Command("go", "build", "-o", out, "./"+name)
	build.Dir, build.Stdout, build.Stderr = filepath.Join(repoRoot(), "test", "tools"), os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build test/tools/%s: %w", name, err)
	}
	return nil
}
