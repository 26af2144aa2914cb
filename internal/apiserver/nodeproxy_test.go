package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	clientexec "k8s.io/client-go/util/exec"
	streamingpf "k8s.io/cri-streaming/pkg/streaming/portforward"
	streamingrc "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// fakeContainer stands in for a pod's container behind the agent: `echo`
// prints its arguments, `cat` copies stdin, `exit N` fails with code N, attach
// greets and copies stdin; port-forward reaches backend whatever the port.
type fakeContainer struct{ backend string }

func (fakeContainer) ExecInContainer(_ context.Context, _, _, _ string, cmd []string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan streamingrc.TerminalSize, _ time.Duration) error {
	switch cmd[0] {
	case "echo":
		_, err := fmt.Fprintln(out, strings.Join(cmd[1:], " "))
		return err
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "exit":
		var code int
		_, _ = fmt.Sscan(cmd[1], &code)
		return utilexec.CodeExitError{Err: fmt.Errorf("exit %d", code), Code: code}
	}
	return fmt.Errorf("%s: not found", cmd[0])
}

func (fakeContainer) AttachContainer(_ context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan streamingrc.TerminalSize) error {
	if _, err := fmt.Fprint(out, "attached "); err != nil {
		return err
	}
	_, err := io.Copy(out, in)
	return err
}

func (f fakeContainer) PortForward(_ context.Context, _, _ string, _ int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := net.Dial("tcp", f.backend)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() { _, _ = io.Copy(conn, stream) }()
	_, err = io.Copy(stream, conn)
	return err
}

// fakeAgent serves the agent's stream endpoints over HTTPS with the same
// libraries and protocols as the real agent (SPDY, websocket up to v4).
func fakeAgent(t *testing.T, c fakeContainer) *httptest.Server {
	protocols := []string{streamingrc.StreamProtocolV4Name, streamingrc.StreamProtocolV3Name, streamingrc.StreamProtocolV2Name, streamingrc.StreamProtocolV1Name}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := streamingrc.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		streamingrc.ServeExec(w, r, c, "p", "", "c", r.URL.Query()["command"], opts, time.Minute, 10*time.Second, protocols)
	})
	mux.HandleFunc("/attach/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := streamingrc.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		streamingrc.ServeAttach(w, r, c, "p", "", "c", opts, time.Minute, 10*time.Second, protocols)
	})
	mux.HandleFunc("/portForward/{ns}/{pod}", func(w http.ResponseWriter, r *http.Request) {
		streamingpf.ServePortForward(w, r, c, "p", "", nil, time.Minute, 10*time.Second, streamingpf.SupportedProtocols)
	})
	a := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "the client's credentials reached the agent", http.StatusBadRequest)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// streamHarness is an API server with pod default/p (container c) on node n1,
// whose agent is a fakeAgent; backend is what port-forward reaches.
func streamHarness(t *testing.T) (*harness, *rest.Config) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello from the pod") }))
	t.Cleanup(backend.Close)
	agent := fakeAgent(t, fakeContainer{backend: backend.Listener.Addr().String()})
	host, port := hostPort(t, agent.URL)
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/nodes", `{"metadata":{"name":"n1"}}`))
	h.must(200, h.do("PUT", "/api/v1/nodes/n1/status", fmt.Sprintf(`{"metadata":{"name":"n1"},"status":{"addresses":[{"type":"InternalIP","address":%q}],"daemonEndpoints":{"kubeletEndpoint":{"Port":%s}}}}`, host, port)))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"x"}]}}`))
	return h, &rest.Config{Host: h.http.URL, BearerToken: adminToken}
}

func TestExecAttachWebsocket(t *testing.T) {
	h, cfg := streamHarness(t)
	base := h.http.URL + "/api/v1/namespaces/default/pods/p/"
	tests := []struct {
		name, path, stdin, want string
		protocol                string // websocket subprotocol; "" for SPDY
		code                    int    // exit code expected
	}{
		{name: "v5 echo", path: "exec?command=echo&command=hi&stdout=true&stderr=true", protocol: "v5.channel.k8s.io", want: "hi\n"},
		{name: "v5 stdin closed", path: "exec?command=cat&stdin=true&stdout=true&stderr=true", protocol: "v5.channel.k8s.io", stdin: "some input", want: "some input"},
		{name: "v5 exit code", path: "exec?command=exit&command=3&stdout=true", protocol: "v5.channel.k8s.io", code: 3},
		{name: "v5 attach", path: "attach?stdin=true&stdout=true", protocol: "v5.channel.k8s.io", stdin: "x", want: "attached x"},
		{name: "v4 passed to the agent", path: "exec?command=echo&command=old&stdout=true", protocol: "v4.channel.k8s.io", want: "old\n"},
		{name: "SPDY", path: "exec?command=cat&stdin=true&stdout=true", stdin: "spdy", want: "spdy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ex remotecommand.Executor
			var err error
			if tt.protocol != "" {
				ex, err = remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", base+tt.path, tt.protocol)
			} else {
				u, _ := url.Parse(base + tt.path)
				ex, err = remotecommand.NewSPDYExecutor(cfg, "POST", u)
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			opts := remotecommand.StreamOptions{Stdout: &out}
			if tt.stdin != "" {
				opts.Stdin = strings.NewReader(tt.stdin)
			}
			err = ex.StreamWithContext(ctx, opts)
			var exit clientexec.CodeExitError
			switch {
			case tt.code != 0 && (!errors.As(err, &exit) || exit.Code != tt.code):
				t.Fatalf("err = %v, want exit code %d", err, tt.code)
			case tt.code == 0 && err != nil:
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("stdout = %q, want %q", out.String(), tt.want)
			}
		})
	}
	metrics := h.must(200, h.do("GET", "/metrics", "")).body
	for _, want := range []string{
		`apiserver_websocket_streaming_requests_total{proxy_type="translated_at_apiserver",subresource="exec"} 3`,
		`apiserver_websocket_streaming_requests_total{proxy_type="translated_at_apiserver",subresource="attach"} 1`,
		`apiserver_websocket_streaming_requests_total{proxy_type="proxied_to_kubelet",subresource="exec"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "apiserver_websocket"))
		}
	}
}

func TestPortForwardWebsocket(t *testing.T) {
	h, cfg := streamHarness(t)
	u, _ := url.Parse(h.http.URL + "/api/v1/namespaces/default/pods/p/portforward")
	dialer, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() { errs <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errs:
		t.Fatalf("port-forward over websocket: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("port-forward not ready")
	}
	ports, err := pf.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if string(body) != "hello from the pod" {
		t.Errorf("through the tunnel: %q", body)
	}
	metrics := h.must(200, h.do("GET", "/metrics", "")).body
	if want := `apiserver_websocket_streaming_requests_total{proxy_type="translated_at_apiserver",subresource="portforward"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "apiserver_websocket"))
	}
}
