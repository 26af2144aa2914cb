package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startUI runs `svcnet ui` on a free loopback port and returns the page URL.
func startUI(t *testing.T, kubeconfig string) string {
	t.Helper()
	cmd := exec.Command(svcnetBin, "ui", "--kubeconfig", kubeconfig, "--port", fmt.Sprint(freePort(t)))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "Topology page: "); ok {
				url <- u
			}
		}
	}()
	select {
	case u := <-url:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("svcnet ui printed no URL within 30s")
		return ""
	}
}

// TestTopologyPage loads the topology page through `svcnet ui`: the proxied
// page carries the Service and its 3 pods; headless Chromium draws them,
// shows the Service's details on a click and follows a scale-up live.
func TestTopologyPage(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "apps.yaml"), httpdApps, 0o644))
	waitKubectl(t, c, "3 httpd endpoints", 60*time.Second, func(s string) bool { return strings.Count(s, ":80 ") == 3 },
		"get", "endpoints", "httpd-svc", "-o", `jsonpath={range .subsets[*].addresses[*]}{.ip}:80 {end}`)
	url := startUI(t, c.kubeconfig)

	// Through the proxy, with the kubeconfig's credentials: the page inlines the snapshot.
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), `"name":"httpd-svc"`) || strings.Count(string(page), `"pod":"default/httpd-`) != 3 {
		t.Fatalf("GET %s: %d\n%.2000s", url, res.StatusCode, page)
	}

	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("headless page check needs chromium (scripts/test-deps.sh installs it: apt-get install -y chromium)")
		}
		t.Skip("headless page check needs chromium: apt-get install -y chromium")
	}
	// A real browser on the live page: it draws the 3 pods, a click on the
	// Service opens its details, and a scale-up reaches the open page through
	// the event stream without a reload.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(browser), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(filepath.Join(dir, "chromium")), chromedp.NoFirstRun)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil { // the first call starts the browser: no timeout on it
		t.Fatalf("chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()
	readyPods := func(n int) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll('.pod.ready[data-pod^="default/httpd-"]').length === %d`, n),
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))
	}
	details := chromedp.Text(chromedp.CSS("#details pre"))
	if err := chromedp.Do(ctx, readyPods(3), chromedp.Click(chromedp.CSS(`[data-service="default/httpd-svc"]`))); err != nil {
		t.Fatalf("the page did not draw httpd-svc with 3 ready pods: %v", err)
	}
	text, err := chromedp.Run(ctx, details)
	if err != nil || !strings.Contains(text, "Service default/httpd-svc (ClusterIP)") || !strings.Contains(text, "Endpoints (3 ready of 3") {
		t.Fatalf("details after clicking httpd-svc (%v):\n%s", err, text)
	}
	c.must("scale", "deployment/httpd", "--replicas=5")
	if err := chromedp.Do(ctx, readyPods(5)); err != nil {
		t.Fatalf("the open page did not show the scale-up to 5 ready pods: %v", err)
	}
	if text, err = chromedp.Run(ctx, details); err != nil || !strings.Contains(text, "Endpoints (5 ready of 5") {
		t.Fatalf("details after the scale-up (the selection must survive redraws; %v):\n%s", err, text)
	}
}
