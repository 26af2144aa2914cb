package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	streamproxy "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// nodeSubresources are the pod subresources served by the pod's node agent.
var nodeSubresources = map[string]bool{"log": true, "exec": true, "attach": true, "portforward": true}

// newNodeTransport talks to node agents with the API server's client
// certificate; one is shared by all requests (connections are reused).
// Agents' serving certificates are self-signed and not verified, as
// kube-apiserver does not verify kubelets without --kubelet-certificate-authority.
func newNodeTransport(cert *tls.Certificate) *http.Transport {
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // see above
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}
}

// agentAddress returns a node's InternalIP and its agent's port (0: no agent).
func agentAddress(node *corev1.Node) (string, int32) {
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address, node.Status.DaemonEndpoints.KubeletEndpoint.Port
		}
	}
	return "", node.Status.DaemonEndpoints.KubeletEndpoint.Port
}

// handleNodeProxy serves pods/log, exec, attach and portforward by forwarding
// to the agent of the pod's node, as kube-apiserver does to the kubelet.
func (s *Server) handleNodeProxy(q *request) error {
	ctx := q.r.Context()
	if (q.sub == "log" && q.verb != "get") || q.verb == "unknown" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), q.r.Method)
	}
	obj, _, err := s.get(ctx, q.res, q.ns, q.name)
	if err != nil {
		return err
	}
	p := obj.(*corev1.Pod)
	query := q.r.URL.Query()
	container := query.Get("container")
	if q.sub == "portforward" {
		container = "" // the whole pod's network, no container
	} else if container == "" {
		if len(p.Spec.Containers) != 1 {
			var names []string
			for _, c := range p.Spec.Containers {
				names = append(names, c.Name)
			}
			return apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", p.Name, strings.Join(names, " ")))
		}
		container = p.Spec.Containers[0].Name
	}
	found := q.sub == "portforward"
	for _, c := range append(append([]corev1.Container{}, p.Spec.Containers...), p.Spec.InitContainers...) {
		found = found || c.Name == container // logs and exec of init containers too, as Kubernetes
	}
	if !found {
		return apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, p.Name))
	}
	if p.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", p.Name))
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container && cs.State.Waiting != nil && cs.RestartCount == 0 && cs.LastTerminationState.Terminated == nil {
			return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, p.Name, cs.State.Waiting.Reason))
		}
	}
	nodeRes, _ := s.reg.Lookup(schema.GroupVersion{Version: "v1"}, "nodes")
	nobj, _, err := s.get(ctx, nodeRes, "", p.Spec.NodeName)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("node %s of pod %s: %v", p.Spec.NodeName, p.Name, err))
	}
	node := nobj.(*corev1.Node)
	host, port := agentAddress(node)
	if host == "" || port == 0 {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("node %s runs no pod runtime (no agent port): logs, exec and attach are not available", node.Name))
	}
	target := &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(int(port))),
		Path: "/" + map[string]string{"log": "containerLogs", "exec": "exec", "attach": "attach", "portforward": "portForward"}[q.sub] + "/" + q.ns + "/" + q.name}
	if container != "" {
		target.Path += "/" + container
	}
	out := url.Values{}
	if q.sub == "log" {
		for _, k := range []string{"follow", "previous", "timestamps", "tailLines", "limitBytes", "sinceSeconds", "sinceTime"} {
			if v := query.Get(k); v != "" {
				out.Set(k, v)
			}
		}
		target.RawQuery = out.Encode()
		return s.proxyLogs(q, target)
	}
	out["command"] = query["command"]
	for from, to := range map[string]string{"stdin": "input", "stdout": "output", "stderr": "error", "tty": "tty"} {
		if v := query.Get(from); v == "true" || v == "1" {
			out.Set(to, "1")
		}
	}
	target.RawQuery = out.Encode()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Authorization")
		},
		Transport:     s.nodeTr,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing the agent of node %s: %v", node.Name, err)))
		},
	}
	r := q.r.WithContext(klog.NewContext(ctx, logr.FromSlogHandler(debugHandler{s.log.Handler()})))
	r.Header = r.Header.Clone()
	r.Header.Del("Authorization") // the client's credentials stay here (the tunnel forwards headers)
	s.streamHandler(q, target, rp).ServeHTTP(q.w, r)
	return nil
}

// debugHandler logs the stream libraries' klog output at debug level: their
// errors are mostly a peer closing first ("use of closed network connection"),
// and clients see real failures in the stream's status.
type debugHandler struct{ slog.Handler }

func (h debugHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.Handler.Enabled(ctx, slog.LevelDebug)
}

func (h debugHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return h.Handler.Handle(ctx, r)
}

func (h debugHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return debugHandler{h.Handler.WithAttrs(as)}
}
func (h debugHandler) WithGroup(name string) slog.Handler {
	return debugHandler{h.Handler.WithGroup(name)}
}

// streamHandler picks how an exec, attach or port-forward request reaches the
// agent, as kube-apiserver does towards the kubelet: a websocket client of
// v5.channel.k8s.io (exec, attach) or of SPDY tunneled in a websocket
// (port-forward) is translated to SPDY; SPDY and older websocket protocols
// (v4.channel.k8s.io and before, which the agent serves) go through rp as they are.
func (s *Server) streamHandler(q *request, target *url.URL, rp http.Handler) http.Handler {
	query := q.r.URL.Query()
	on := func(k string) bool { return query.Get(k) == "true" || query.Get(k) == "1" }
	switch {
	case q.sub != "portforward" && wsstream.IsWebSocketRequestWithStreamCloseProtocol(q.r):
		s.metrics.websocketStreams.WithLabelValues(q.sub, "translated_at_apiserver").Inc()
		opts := streamproxy.Options{Stdin: on("stdin"), Stdout: on("stdout"), Stderr: on("stderr"), Tty: on("tty")}
		return streamproxy.NewStreamTranslatorHandler(target, s.nodeTr, 0, opts)
	case q.sub == "portforward" && wsstream.IsWebSocketRequestWithTunnelingProtocol(q.r):
		s.metrics.websocketStreams.WithLabelValues(q.sub, "translated_at_apiserver").Inc()
		return streamproxy.NewTunnelingHandler(utilproxy.NewUpgradeAwareHandler(target, s.nodeTr, false, true, agentErrorResponder{}))
	case wsstream.IsWebSocketRequest(q.r):
		s.metrics.websocketStreams.WithLabelValues(q.sub, "proxied_to_kubelet").Inc()
	}
	return rp
}

// agentErrorResponder answers a failed upgrade to the agent with a Status.
type agentErrorResponder struct{}

func (agentErrorResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing the node agent: %v", err)))
}

// proxyLogs streams a container log from the agent, flushing as it goes.
func (s *Server) proxyLogs(q *request, target *url.URL) error {
	req, err := http.NewRequestWithContext(q.r.Context(), http.MethodGet, target.String(), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: s.nodeTr}).Do(req)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing the node agent: %v", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		text := strings.TrimSpace(string(msg))
		if resp.StatusCode == http.StatusNotFound {
			return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound,
				Reason: metav1.StatusReasonNotFound, Message: text}}
		}
		return apierrors.NewBadRequest(text)
	}
	q.w.Header().Set("Content-Type", "text/plain")
	q.w.WriteHeader(http.StatusOK)
	buf := make([]byte, 32*1024)
	rc := http.NewResponseController(q.w)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := q.w.Write(buf[:n]); werr != nil {
				return nil
			}
			_ = rc.Flush()
		}
		if err != nil {
			return nil
		}
	}
}
