package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/cri"
	"github.com/svcnet/svcnet/internal/podlogs"
	"github.com/svcnet/svcnet/internal/runtime"
)

// The agent's HTTPS port is the kubelet's: the API server reaches it for
// `kubectl logs`, `exec` and `attach`. Only clients with a certificate of the
// cluster CA in group system:masters (the API server's) are let in.

// streamProtocols are the remote command protocols served, newest first.
var streamProtocols = []string{remotecommand.StreamProtocolV4Name, remotecommand.StreamProtocolV3Name,
	remotecommand.StreamProtocolV2Name, remotecommand.StreamProtocolV1Name}

// serveNode starts the agent's HTTPS server on ip:port; it stops with ctx.
func (a *Agent) serveNode(ctx context.Context, rt podRuntime, log *slog.Logger) (int, error) {
	if len(a.o.ClientCA) == 0 {
		return 0, fmt.Errorf("the agent's port needs the cluster CA (certificate-authority in the kubeconfig) to check the API server")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.o.ClientCA) {
		return 0, fmt.Errorf("cluster CA: no certificate in PEM data")
	}
	cert, err := selfSigned(a.o.NodeName, a.o.NodeIP)
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.o.NodeIP, strconv.Itoa(a.o.AgentPort)))
	if err != nil {
		return 0, fmt.Errorf("--agent-port: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("GET /logs/", nodeLogs(a.o.NodeLogDir))
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) { a.serveLogs(w, r, rt) })
	for _, verb := range []string{"exec", "attach"} {
		h := func(w http.ResponseWriter, r *http.Request) {
			switch rt := rt.(type) {
			case *cri.Runtime:
				serveCRIStream(w, r, rt, verb)
			case *runtime.Runtime:
				a.serveStream(w, r, rt, verb)
			}
		}
		mux.HandleFunc("GET /"+verb+"/{ns}/{pod}/{container}", h)
		mux.HandleFunc("POST /"+verb+"/{ns}/{pod}/{container}", h)
	}
	if crt, ok := rt.(*cri.Runtime); ok {
		h := func(w http.ResponseWriter, r *http.Request) { serveCRIStream(w, r, crt, "portforward") }
		mux.HandleFunc("GET /portForward/{ns}/{pod}", h)
		mux.HandleFunc("POST /portForward/{ns}/{pod}", h)
	}
	srv := &http.Server{Handler: requireAPIServer(mux), ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
			MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("agent port stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// DefaultNodeLogDir is the node's log directory the kubelet serves under /logs/.
const DefaultNodeLogDir = "/var/log"

// nodeLogs serves dir under /logs/ as the kubelet does for nodes/NAME/proxy/logs/:
// a directory answers with its listing, a file with its content.
func nodeLogs(dir string) http.Handler {
	return http.StripPrefix("/logs/", http.FileServer(http.Dir(dir)))
}

// requireAPIServer lets in only cluster admins (the API server's certificate).
func requireAPIServer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || !slices.Contains(r.TLS.PeerCertificates[0].Subject.Organization, auth.GroupMasters) {
			http.Error(w, "Forbidden: only the API server may use the node agent's port", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request, rt podRuntime) {
	q := r.URL.Query()
	var o podlogs.Options
	o.Follow, o.Previous, o.Timestamps = q.Get("follow") == "true", q.Get("previous") == "true", q.Get("timestamps") == "true"
	for name, dst := range map[string]**int64{"tailLines": &o.TailLines, "limitBytes": &o.LimitBytes} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				http.Error(w, fmt.Sprintf("%s: %q is not a non-negative integer", name, v), http.StatusBadRequest)
				return
			}
			*dst = &n
		}
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			http.Error(w, fmt.Sprintf("sinceSeconds: %q is not a positive integer", v), http.StatusBadRequest)
			return
		}
		t := time.Now().Add(-time.Duration(n) * time.Second)
		o.SinceTime = &t
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, fmt.Sprintf("sinceTime: %v", err), http.StatusBadRequest)
			return
		}
		o.SinceTime = &t
	}
	w.Header().Set("Content-Type", "text/plain")
	fw := &flushWriter{w: w}
	if err := rt.Logs(r.Context(), r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"), o, fw); err != nil {
		var nf *podlogs.NotFoundError
		code := http.StatusInternalServerError
		if errors.As(err, &nf) {
			code = http.StatusNotFound
		}
		if !fw.wrote {
			http.Error(w, err.Error(), code)
		}
	}
}

// flushWriter flushes each write, so `kubectl logs -f` sees lines as they come.
type flushWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	f.Flush()
	return n, err
}

func (f *flushWriter) Flush() {
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}

func (a *Agent) serveStream(w http.ResponseWriter, r *http.Request, rt *runtime.Runtime, verb string) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name := r.PathValue("ns") + "/" + r.PathValue("pod")
	container := r.PathValue("container")
	if verb == "exec" {
		cmd := r.URL.Query()["command"]
		if len(cmd) == 0 {
			http.Error(w, "exec: at least one command argument is required", http.StatusBadRequest)
			return
		}
		remotecommand.ServeExec(w, r, rt, name, "", container, cmd, opts, 4*time.Hour, remotecommand.DefaultStreamCreationTimeout, streamProtocols)
		return
	}
	remotecommand.ServeAttach(w, r, rt, name, "", container, opts, 4*time.Hour, remotecommand.DefaultStreamCreationTimeout, streamProtocols)
}

// selfSigned makes the agent's serving certificate (the API server does not
// verify it, as kube-apiserver does not without --kubelet-certificate-authority).
func selfSigned(node, ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: node}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{node}}
	if p := net.ParseIP(ip); p != nil {
		tmpl.IPAddresses = []net.IP{p}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
