package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
)

// proxyKinds are the core resources with a proxy subresource, and the kind
// discovery names for it.
var proxyKinds = map[string]string{"pods": "PodProxyOptions", "services": "ServiceProxyOptions", "nodes": "NodeProxyOptions"}

// proxyVerbs authorize a proxied request by its method, as kube-apiserver's
// RequestInfo does; OPTIONS has no verb there, so only admins may send it.
var proxyVerbs = map[string]string{http.MethodGet: "get", http.MethodHead: "get", http.MethodPost: "create", http.MethodPut: "update",
	http.MethodPatch: "patch", http.MethodDelete: "delete", http.MethodOptions: "options"}

// backendDialTimeout bounds connecting to a pod, endpoint or node port, as
// kube-apiserver's proxy dialer does (30s).
const backendDialTimeout = 30 * time.Second

// newBackendTransport reaches pods, endpoints and nodes' other ports. Like
// kube-apiserver's proxy transport it does not verify serving certificates
// (pods' https ports are self-signed); it shows no client certificate.
func newBackendTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
		DialContext: (&net.Dialer{Timeout: backendDialTimeout}).DialContext, MaxIdleConnsPerHost: 4}
}

// proxyableIP refuses the addresses kube-apiserver will not proxy to (loopback,
// link-local, unspecified, multicast), so a pod or endpoint address can never
// point the API server at itself or its etcd.
func proxyableIP(ip net.IP) bool { return ip != nil && ip.IsGlobalUnicast() }

// handleProxy serves pods/proxy, services/proxy and nodes/proxy: every method,
// upgrades included, to the resolved backend through apimachinery's
// UpgradeAwareHandler, which rewrites redirects and HTML links to point back
// through the API server, as kube-apiserver does.
func (s *Server) handleProxy(q *request) error {
	if q.verb == "unknown" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), q.r.Method)
	}
	ctx := q.r.Context()
	tr := http.RoundTripper(s.backendTr)
	var loc *url.URL
	var err error
	switch q.res.Resource {
	case "pods":
		loc, err = s.podLocation(ctx, q.ns, q.name)
	case "services":
		loc, err = s.serviceLocation(ctx, q.ns, q.name)
	case "nodes":
		loc, tr, err = s.nodeLocation(ctx, q.name)
	}
	if err != nil {
		return err
	}
	if q.proxyPath != "" {
		loc.Path = "/" + q.proxyPath
	}
	loc.RawQuery = q.r.URL.RawQuery // the upgrade path takes the query from the location
	// The caller's credentials are for the API server, never for the backend
	// (kube-apiserver drops them once it has authenticated the request).
	q.r.Header.Del("Authorization")
	h := proxy.NewUpgradeAwareHandler(loc, tr, true, false, proxyResponder{})
	h.ServeHTTP(hijackWriter{q.w}, q.r)
	return nil
}

// podLocation resolves [scheme:]NAME[:PORT] of a pod to its IP; without a port,
// the first declared container port, else the scheme's default.
func (s *Server) podLocation(ctx context.Context, ns, id string) (*url.URL, error) {
	scheme, name, port, ok := utilnet.SplitSchemeNamePort(id)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid pod request %q", id))
	}
	if port != "" && !validPort(port) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid pod request %q: port %q is not a number from 1 to 65535", id, port))
	}
	res, _ := s.reg.Lookup(schema.GroupVersion{Version: "v1"}, "pods")
	obj, _, err := s.get(ctx, res, ns, name)
	if err != nil {
		return nil, err
	}
	pod := obj.(*corev1.Pod)
	if port == "" {
		for _, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				port = strconv.Itoa(int(c.Ports[0].ContainerPort))
				break
			}
		}
	}
	ip := pod.Status.PodIP
	if len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	}
	if !s.proxyable(net.ParseIP(ip)) {
		return nil, apierrors.NewBadRequest("address not allowed")
	}
	loc := &url.URL{Scheme: scheme, Host: ip}
	if strings.Contains(ip, ":") {
		loc.Host = "[" + ip + "]"
	}
	if port != "" {
		loc.Host = net.JoinHostPort(ip, port)
	}
	return loc, nil
}

// serviceLocation resolves [scheme:]NAME[:PORTNAME|PORT] of a Service to a random
// ready endpoint of that port from its EndpointSlices, with Kubernetes' errors.
func (s *Server) serviceLocation(ctx context.Context, ns, id string) (*url.URL, error) {
	scheme, name, port, ok := utilnet.SplitSchemeNamePort(id)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid service request %q", id))
	}
	svcRes, _ := s.reg.Lookup(schema.GroupVersion{Version: "v1"}, "services")
	obj, _, err := s.get(ctx, svcRes, ns, name)
	if err != nil {
		return nil, err
	}
	svc := obj.(*corev1.Service)
	portName, err := servicePortName(svc, port)
	if err != nil {
		return nil, err
	}
	sliceRes, _ := s.reg.Lookup(schema.GroupVersion{Group: "discovery.k8s.io", Version: "v1"}, "endpointslices")
	kvs, _, err := listAll(ctx, s.store, s.listPrefix(sliceRes, ns), 0)
	if err != nil {
		return nil, storageError(err, sliceRes.GroupResource(), "")
	}
	var slices []*discoveryv1.EndpointSlice
	for _, kv := range kvs {
		o, err := decodeStored(sliceRes, kv)
		if err != nil {
			return nil, err
		}
		if sl := o.(*discoveryv1.EndpointSlice); sl.Labels[discoveryv1.LabelServiceName] == name {
			slices = append(slices, sl)
		}
	}
	if len(slices) == 0 {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", name))
	}
	host, ok := pickEndpoint(slices, portName, s.proxyable, rand.IntN)
	if !ok {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", id))
	}
	return &url.URL{Scheme: scheme, Host: host}, nil
}

// servicePortName maps the port of a services/proxy request to the Service port's
// name: a number is looked up among the Service's ports, anything else is a name.
func servicePortName(svc *corev1.Service, port string) (string, error) {
	n, err := strconv.ParseInt(port, 10, 64)
	if err != nil {
		return port, nil
	}
	for _, p := range svc.Spec.Ports {
		if int64(p.Port) == n {
			return p.Name, nil
		}
	}
	return "", apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %d found for service %q", n, svc.Name))
}

// pickEndpoint chooses a ready, proxyable endpoint serving portName: slices in
// random order, and a random start within each (pure; rnd(n) is in [0, n)).
func pickEndpoint(slices []*discoveryv1.EndpointSlice, portName string, allowed func(net.IP) bool, rnd func(int) int) (string, bool) {
	start := rnd(len(slices))
	for i := range slices {
		sl := slices[(start+i)%len(slices)]
		for _, p := range sl.Ports {
			if p.Port == nil || ptrString(p.Name) != portName || len(sl.Endpoints) == 0 {
				continue
			}
			off := rnd(len(sl.Endpoints))
			for j := range sl.Endpoints {
				ep := sl.Endpoints[(off+j)%len(sl.Endpoints)]
				if (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) || len(ep.Addresses) == 0 || !allowed(net.ParseIP(ep.Addresses[0])) {
					continue
				}
				return net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*p.Port))), true
			}
		}
	}
	return "", false
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// nodeLocation resolves [scheme:]NAME[:PORT] of a node: its agent (https, with
// the API server's client certificate) unless another port is asked for, which
// is reached like a pod.
func (s *Server) nodeLocation(ctx context.Context, id string) (*url.URL, http.RoundTripper, error) {
	scheme, name, port, ok := utilnet.SplitSchemeNamePort(id)
	if !ok {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid node request %q", id))
	}
	if port != "" && !validPort(port) {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid node request %q: port %q is not a number from 1 to 65535", id, port))
	}
	res, _ := s.reg.Lookup(schema.GroupVersion{Version: "v1"}, "nodes")
	obj, _, err := s.get(ctx, res, "", name)
	if err != nil {
		return nil, nil, err
	}
	node := obj.(*corev1.Node)
	host, agentPort := agentAddress(node)
	if host == "" {
		return nil, nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has no InternalIP", node.Name))
	}
	if port == "" || port == strconv.Itoa(int(agentPort)) {
		if agentPort == 0 {
			return nil, nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s runs no pod runtime (no agent port)", node.Name))
		}
		return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(int(agentPort)))}, s.nodeTr, nil
	}
	if !s.proxyable(net.ParseIP(host)) {
		return nil, nil, apierrors.NewBadRequest("address not allowed")
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, s.backendTr, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// proxyResponder answers proxy failures (backend unreachable: 503 "error trying
// to reach service") with a metav1.Status.
type proxyResponder struct{}

func (proxyResponder) Error(w http.ResponseWriter, _ *http.Request, err error) { writeError(w, err) }

// hijackWriter lets UpgradeAwareHandler, which asserts http.Hijacker, take over
// the connection beneath the metrics recorder.
type hijackWriter struct{ http.ResponseWriter }

func (h hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if rec, ok := h.ResponseWriter.(*statusRecorder); ok && rec.code == 0 {
		rec.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

func (h hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }
