package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/svcnet/svcnet/internal/preflight"
)

func TestCheckMachine(t *testing.T) {
	noCNI := &preflight.Fake{Commands: map[string]bool{}}
	noRoot := &preflight.Fake{UID: 1000}
	for _, tc := range []struct {
		name    string
		o       Options
		env     *preflight.Fake
		err     string // substring of the error
		pods    bool   // the pod runtime stays on
		noRun   string // substring of why pods do not run
		warning string // substring of the log
	}{
		{name: "no CNI plugins: the agent runs without pods",
			o: Options{PodRuntime: true, RootDir: "/r", CNIPluginDirs: []string{"/empty"}}, env: noCNI,
			noRun:   "pods bound to node n1 do not run: missing CNI plugins bridge, host-local, loopback in /empty (--cni-bin-dir): pods get no network; fix: apt-get install containernetworking-plugins",
			warning: `level=WARN msg="preflight: missing CNI plugins bridge, host-local, loopback in /empty (--cni-bin-dir)" node=n1 why="pods get no network" fix="apt-get install containernetworking-plugins" flag=--cni-bin-dir`},
		{name: "no runc: fails fast",
			o: Options{PodRuntime: true, RootDir: "/r", ContainerRuntime: RuntimeCRI, CNIPluginDirs: []string{"/empty"}}, env: noCNI,
			err:  "--container-runtime=cri: missing the runc command: svcnet's containerd cannot run containers; fix: apt-get install runc, or --container-runtime=process",
			pods: true}, // Run returns the error
		{name: "not root", o: Options{ProxyMode: "userspace"}, env: noRoot,
			noRun: "pods bound to node n1 do not run: missing root privileges: the svcnet agent runs as uid 1000"},
		{name: "root, pod runtime off", o: Options{}, env: noCNI},
		{name: "external CRI runtime", o: Options{PodRuntime: true, RootDir: "/r", ContainerRuntime: RuntimeCRI, RuntimeEndpoint: "unix:///x.sock"},
			env: noCNI, pods: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			tc.o.NodeName, tc.o.NodeIP, tc.o.Log = "n1", "10.0.0.1", log
			a, err := New(fake.NewClientset(), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			err = a.checkMachine(tc.env, log.With("node", "n1"))
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if a.o.PodRuntime != tc.pods {
				t.Errorf("PodRuntime = %v, want %v", a.o.PodRuntime, tc.pods)
			}
			if (a.noRun == "") != (tc.noRun == "") || !strings.HasPrefix(a.noRun, tc.noRun) {
				t.Errorf("noRun = %q, want %q", a.noRun, tc.noRun)
			}
			if !strings.Contains(buf.String(), tc.warning) {
				t.Errorf("log:\n%s\nwant a line with %s", buf.String(), tc.warning)
			}
		})
	}
}
