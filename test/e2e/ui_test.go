package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readyPodRE matches a ready httpd pod as the page draws it.
var readyPodRE = regexp.MustCompile(`class="pod ready" data-pod="default/httpd-[^"]+" data-ready="true"`)

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
// page carries the Service and its 3 pods, and headless Chromium draws them.
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
		t.Skip("headless page check needs chromium: apt-get install -y chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+filepath.Join(dir, "chromium"),
		"--dump-dom", url).Output() // no --virtual-time-budget: the open event stream would hold virtual time still
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	dom := string(out)
	if !strings.Contains(dom, `data-service="default/httpd-svc"`) || len(readyPodRE.FindAllString(dom, -1)) != 3 {
		t.Fatalf("the page lacks httpd-svc and its 3 ready pods:\n%s", dom)
	}
}
