// Command pods measures the pod runtimes: start latency of a burst of pods
// (create -> container running, create -> Ready through an httpGet readiness
// probe) with the cri runtime (the agnhost image through svcnet's containerd)
// and the process runtime, against the same server process started directly
// in the same run; and the memory they hold idle and with 100 pods (agent,
// containerd and its shims for cri; the agent for process). Needs root: it
// runs everything in a network namespace of its own (loopback only), removes
// every pod, container, shim and veth (svcnet agent --cleanup for cri) and
// the namespace afterwards.
//
//	go run ./bench/pods [-pods 50] [-rss-pods 100] [-runtime cri|process|both] [-images DIR]
//
// Without -images (and when cri runs) it builds pause.tar and agnhost.tar with
// scripts/test-images.sh into $SVCNET_IMAGES_CACHE/out (default
// /var/cache/svcnet-images/out) before entering the namespace.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/bench/harness"
)

// imageFiles are the tarballs the cri runtime needs: the sandbox and the server.
var imageFiles = []string{"pause.tar", "agnhost.tar"}

func main() {
	pods := flag.Int("pods", 50, "pods in the start-latency burst")
	rssPods := flag.Int("rss-pods", 100, "pods running when the RSS is read")
	which := flag.String("runtime", "both", "container runtime to measure: cri, process or both")
	images := flag.String("images", "", "directory with pause.tar and agnhost.tar (scripts/test-images.sh; empty: build them)")
	flag.Parse()
	runtimes := map[string][]string{"cri": {"cri"}, "process": {"process"}, "both": {"cri", "process"}}[*which]
	if runtimes == nil || *pods < 1 || *rssPods < 1 {
		fmt.Fprintln(os.Stderr, "bench/pods: -runtime is cri, process or both; -pods and -rss-pods are at least 1")
		os.Exit(2)
	}
	if os.Getenv("SVCNET_BENCH_BIN") == "" && slices.Contains(runtimes, "cri") && *images == "" {
		dir, err := buildImages()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/pods:", err)
			os.Exit(1)
		}
		os.Args = append(os.Args, "-images", dir) // for the run inside the namespace
	}
	in, err := harness.InNetns("pods")
	if in != nil {
		err = inside(in, runtimes, *pods, *rssPods, *images)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/pods:", err)
		os.Exit(1)
	}
}

// buildImages runs scripts/test-images.sh for the images the cri pods need
// (the host's network is used only if the package cache lacks them).
func buildImages() (string, error) {
	dir := filepath.Join(cmp.Or(os.Getenv("SVCNET_IMAGES_CACHE"), "/var/cache/svcnet-images"), "out")
	fmt.Println("building images", strings.Join(imageFiles, ", "), "into", dir)
	cmd := exec.Command("scripts/test-images.sh", dir)
	cmd.Env = append(os.Environ(), "SVCNET_IMAGES="+strings.Join(imageFiles, ","))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("scripts/test-images.sh: %v\n%s", err, out)
	}
	return dir, nil
}

// result is what one runtime measured.
type result struct {
	runtime        string
	running, ready []time.Duration
}

func inside(in *harness.Inside, runtimes []string, n, rssN int, images string) error {
	bin, tmp := in.Bin, in.Tmp
	data := filepath.Join(tmp, "cp")
	server, err := start("svcnet API server at", bin, "server", "--data-dir", data, "--bind-address", "127.0.0.1", "--secure-port", "6443")
	if err != nil {
		return err
	}
	defer server.stop()
	kc := func(user string) (string, error) {
		out, err := exec.Command(bin, "kubeconfig", "--data-dir", data, "--server", "https://127.0.0.1:6443", "--user", user).Output()
		if err != nil {
			return "", err
		}
		path := filepath.Join(tmp, strings.ReplaceAll(user, ":", "-")+".kubeconfig")
		return path, os.WriteFile(path, out, 0o600)
	}
	admin, err := kc("admin")
	if err != nil {
		return err
	}
	nodeKC, err := kc("system:node:bench")
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	base := baseline(bin, n)
	var results []result
	var rss []string
	var cleanupErr error // reported after the results
	for _, rt := range runtimes {
		res, mem, left, err := measure(ctx, client, &node{bin: bin, kubeconfig: nodeKC, root: filepath.Join(tmp, "agent-"+rt), runtime: rt, images: images, pods: max(n, rssN)}, n, rssN)
		if err != nil {
			return errors.Join(fmt.Errorf("%s runtime: %w", rt, err), left)
		}
		results = append(results, res)
		rss = append(rss, mem...)
		if left != nil {
			// The next runtime would share the pod network with what is left.
			cleanupErr = fmt.Errorf("%s runtime: %w", rt, left)
			break
		}
	}

	ms := func(d []time.Duration, p int) time.Duration { return harness.Percentile(d, p, time.Millisecond) }
	fmt.Printf("\npod start, burst of %d pods (agnhost serve-hostname --port 8080, httpGet readiness probe periodSeconds 1):\n", n)
	fmt.Printf("  direct:  the same server process started directly, exec -> answers HTTP: p50 %v  p99 %v\n", ms(base, 50), ms(base, 99))
	for _, r := range results {
		what := "commands as processes (svcnet/agnhost)"
		if r.runtime == "cri" {
			what = podImage + " through containerd, " + string(pullPolicy)
		}
		fmt.Printf("  %s: %s\n", r.runtime, what)
		fmt.Printf("    create -> container running: p50 %v  p99 %v  (%s/direct p50 %.1fx, p99 %.1fx)\n", ms(r.running, 50), ms(r.running, 99),
			r.runtime, harness.Ratio(ms(r.running, 50), ms(base, 50)), harness.Ratio(ms(r.running, 99), ms(base, 99)))
		fmt.Printf("    create -> Ready:             p50 %v  p99 %v  (%s/direct p50 %.1fx, p99 %.1fx)\n", ms(r.ready, 50), ms(r.ready, 99),
			r.runtime, harness.Ratio(ms(r.ready, 50), ms(base, 50)), harness.Ratio(ms(r.ready, 99), ms(base, 99)))
	}
	fmt.Println()
	for _, line := range rss {
		fmt.Println(line)
	}
	return cleanupErr
}

// measure starts an agent with one runtime, times a burst of n pods, reads the
// memory idle and with rssN pods, and removes everything it started (left
// says what could not be removed).
func measure(ctx context.Context, client kubernetes.Interface, nd *node, n, rssN int) (res result, rss []string, left, err error) {
	res.runtime = nd.runtime
	err = nd.start()
	defer func() { left = nd.close(ctx, client) }()
	if err != nil {
		return res, nil, nil, err
	}
	res.running, res.ready, err = burst(ctx, client, nd.runtime, n)
	if err != nil {
		return res, nil, nil, err
	}
	if err := deleteAll(ctx, client, n); err != nil {
		return res, nil, nil, err
	}
	time.Sleep(2 * time.Second)
	idle := nd.memory()
	if _, _, err := burst(ctx, client, nd.runtime, rssN); err != nil {
		return res, nil, nil, err
	}
	time.Sleep(3 * time.Second)
	full := nd.memory()
	nd.notePodNetns()
	if err := deleteAll(ctx, client, rssN); err != nil {
		return res, nil, nil, err
	}
	perPod := func(a, b int64) float64 { return float64(b-a) / float64(rssN) }
	rss = append(rss, fmt.Sprintf("%s runtime, RSS idle and with %d running pods:", nd.runtime, rssN),
		fmt.Sprintf("  agent:       idle %4d MiB, with pods %4d MiB (%.0f KiB per pod; %.2fx idle)", idle.agent>>10, full.agent>>10,
			perPod(idle.agent, full.agent), harness.Ratio(time.Duration(full.agent), time.Duration(idle.agent))))
	if nd.runtime == "cri" {
		rss = append(rss,
			fmt.Sprintf("  containerd:  idle %4d MiB, with pods %4d MiB (%.0f KiB per pod; %.2fx idle)", idle.containerd>>10, full.containerd>>10,
				perPod(idle.containerd, full.containerd), harness.Ratio(time.Duration(full.containerd), time.Duration(idle.containerd))),
			fmt.Sprintf("  agent + containerd: idle %d MiB, with pods %d MiB", (idle.agent+idle.containerd)>>10, (full.agent+full.containerd)>>10),
			fmt.Sprintf("  shims (containerd-shim-runc-v2, apart): idle %d of them %d MiB, with pods %d of them %d MiB (%.0f KiB per pod)",
				idle.shims, idle.shimRSS>>10, full.shims, full.shimRSS>>10, perPod(idle.shimRSS, full.shimRSS)))
	}
	return res, rss, nil, nil
}
