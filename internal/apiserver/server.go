// Package apiserver serves the Kubernetes REST API for the resources svcnet knows,
// over the storage contract: discovery, OpenAPI, CRUD with Kubernetes' semantics,
// list/watch with resourceVersions, patches, server-side Tables and admission
// (Service IP and node port allocation, node restriction).
package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/crd"
	"github.com/svcnet/svcnet/internal/ipalloc"
	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// defaultServiceCIDR is the service CIDR when Config gives none (kube-apiserver's).
const defaultServiceCIDR = "10.96.0.0/12"

// Config configures a Server.
type Config struct {
	Store         storage.Store
	Prefix        string // storage key prefix, default /registry
	ServiceCIDR   string // default 10.96.0.0/12
	NodePortRange string // default 30000-32767
	Authn         *auth.Authenticator
	// AdvertiseAddress and Port are published in the kubernetes Service's endpoints.
	AdvertiseAddress string
	Port             int
	// NodeClientCert is shown to node agents for logs, exec and attach.
	NodeClientCert *tls.Certificate
	// ServiceAccountKey signs TokenRequests and verifies service account bearer
	// tokens; nil turns both off.
	ServiceAccountKey *auth.ServiceAccountKey
	// ServiceAccountIssuer is the iss of the tokens (default
	// https://kubernetes.default.svc.cluster.local); APIAudiences are the
	// audiences this server accepts and TokenRequests default to (default: the issuer).
	ServiceAccountIssuer string
	APIAudiences         []string
	Version              string
	Log                  *slog.Logger
	Now                  func() time.Time
}

// Server is the API server. Create it with New, call Start, serve Handler.
type Server struct {
	cfg        Config
	authn      *auth.Authenticator
	reg        *registry.Registry
	store      storage.Store
	alloc      *serviceAlloc
	log        *slog.Logger
	now        func() time.Time
	nsWake     chan string
	ready      chan struct{}
	namespaces nsCache
	metrics    *metrics
	nodeTr     *http.Transport   // to node agents (logs, exec, attach, nodes/proxy)
	backendTr  *http.Transport   // to pods and endpoints (pods/proxy, services/proxy)
	proxyable  func(net.IP) bool // addresses the proxy subresources may reach (tests allow loopback)
	rbac       *rbacCache        // Roles and bindings for authorization (rbac.go)
	managers   fieldManagers     // field managers by resource, version and subresource (apply.go)
	crds       *crdController
}

// New validates cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "/registry"
	}
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = defaultServiceCIDR
	}
	if cfg.NodePortRange == "" {
		cfg.NodePortRange = "30000-32767"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "v0.0.0-dev"
	}
	if cfg.ServiceAccountIssuer == "" {
		cfg.ServiceAccountIssuer = auth.DefaultServiceAccountIssuer
	}
	if len(cfg.APIAudiences) == 0 {
		cfg.APIAudiences = []string{cfg.ServiceAccountIssuer}
	}
	ips, err := defaultRanges(cfg.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("--service-cluster-ip-range: %w", err)
	}
	ports, err := ipalloc.ParsePortRange(cfg.NodePortRange)
	if err != nil {
		return nil, fmt.Errorf("--service-node-port-range: %w", err)
	}
	s := &Server{
		cfg: cfg, reg: registry.New(append(registry.Default().All(), crd.DefinitionResource())...), store: cfg.Store, log: cfg.Log, now: cfg.Now,
		alloc:     &serviceAlloc{ips: ips, ports: ports, prefix: cfg.Prefix + "/svcnet/"},
		nsWake:    make(chan string, 16),
		ready:     make(chan struct{}),
		nodeTr:    newNodeTransport(cfg.NodeClientCert),
		backendTr: newBackendTransport(),
		proxyable: proxyableIP,
		rbac:      newRBACCache(),
	}
	s.metrics = newMetrics(s)
	s.alloc.ipAddr = s.newIPAddressCodec()
	s.crds = newCRDController(s)
	s.authn = &auth.Authenticator{Log: cfg.Log}
	if cfg.Authn != nil {
		a := *cfg.Authn
		s.authn = &a
	}
	if cfg.ServiceAccountKey != nil {
		s.authn.ServiceAccounts = &auth.ServiceAccountTokens{Key: cfg.ServiceAccountKey, Issuer: cfg.ServiceAccountIssuer,
			Audiences: cfg.APIAudiences, Objects: tokenObjects{s}, Now: cfg.Now}
	}
	if s.authn.Log == nil {
		s.authn.Log = cfg.Log
	}
	s.authn.Bootstrap = &auth.BootstrapTokens{Secret: s.bootstrapSecret, Now: cfg.Now}
	return s, nil
}

// Start repairs allocations, creates the built-in objects and starts background
// loops (allocation repair, namespace finalization) until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if err := s.ensureDefaultServiceCIDR(ctx); err != nil {
		return fmt.Errorf("default ServiceCIDR: %w", err)
	}
	rep, err := s.repairAllocations(ctx)
	if err != nil {
		return fmt.Errorf("repair allocations: %w", err)
	}
	s.log.Info("allocation repair", "services", rep.Services, "restored", rep.Restored, "removed", rep.Removed, "conflicts", rep.Conflicts)
	if err := s.bootstrap(ctx); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	go s.namespaces.run(ctx, s)
	go s.crds.run(ctx)
	go s.runNamespaceFinalizer(ctx)
	go s.runServiceCIDRs(ctx)
	go func() {
		t := time.NewTicker(3 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := s.repairAllocations(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("allocation repair failed", "err", err)
				}
			}
		}
	}()
	close(s.ready)
	return nil
}

// Registry returns the served resources.
func (s *Server) Registry() *registry.Registry { return s.reg }

// publicPaths may be read without credentials, as Kubernetes' default RBAC allows.
var publicPaths = sets.New("/healthz", "/livez", "/readyz", "/version")

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "" {
		path = "/"
	}
	if publicPaths.Has(path) {
		s.serveHealth(w, r, path)
		return
	}
	user, ok := s.authn.Authenticate(r)
	if !ok {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	if user, ok = s.impersonate(w, r, user); !ok {
		return
	}
	switch {
	case path == "/api" || path == "/apis" || path == "/api/v1" || (strings.HasPrefix(path, "/apis/") && strings.Count(path, "/") <= 3):
		if !s.allowNonResource(w, user, r) {
			return
		}
		s.serveDiscovery(w, r, path)
	case path == "/metrics":
		if !s.allowNonResource(w, user, r) {
			return
		}
		s.metrics.handler().ServeHTTP(w, r)
	case strings.HasPrefix(path, "/openapi/"):
		if !s.allowNonResource(w, user, r) {
			return
		}
		s.serveOpenAPI(w, r, path)
	case s.serveReview(w, r, user, path):
	case isUIPath(path):
		s.serveUI(w, r, user)
	case strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/apis/"):
		s.serveResource(w, r, user, path)
	default:
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request, path string) {
	if path == "/version" {
		writeJSON(w, http.StatusOK, versionInfo(s.cfg.Version))
		return
	}
	select {
	case <-s.ready:
	default:
		http.Error(w, "not ready: bootstrapping", http.StatusServiceUnavailable)
		return
	}
	if _, err := s.store.Rev(r.Context()); err != nil {
		http.Error(w, "storage: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code})
}

// request is one parsed resource request.
type request struct {
	w        http.ResponseWriter
	r        *http.Request
	user     *auth.User
	gv       schema.GroupVersion
	res      *registry.Resource
	legacy   *registry.Legacy
	ns, name string
	sub      string
	verb     string
	// proxyPath is what follows .../proxy/ in a proxy subresource request.
	proxyPath string
	accept    accepted
}

// parseResourcePath splits /api/v1/... or /apis/g/v/... into a request.
func (s *Server) parseResourcePath(r *http.Request, path string) (*request, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	q := &request{r: r}
	var rest []string
	if parts[0] == "api" {
		if len(parts) < 3 || parts[1] != "v1" {
			return nil, false
		}
		q.gv, rest = schema.GroupVersion{Version: "v1"}, parts[2:]
	} else {
		if len(parts) < 4 {
			return nil, false
		}
		q.gv, rest = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		if res, _ := s.reg.Lookup(q.gv, rest[2]); res != nil && res.Namespaced {
			q.ns, rest = rest[1], rest[2:]
		}
	}
	if len(rest) > 3 && rest[2] == "proxy" && q.gv.Group == "" && proxyKinds[rest[0]] != "" {
		q.proxyPath, rest = strings.Join(rest[3:], "/"), rest[:3]
	}
	if len(rest) > 3 {
		return nil, false
	}
	q.res, q.legacy = s.reg.Lookup(q.gv, rest[0])
	if q.res == nil {
		return nil, false
	}
	if len(rest) > 1 {
		q.name = rest[1]
	}
	if len(rest) > 2 {
		q.sub = rest[2]
		switch {
		case q.sub == "status" && q.res.HasStatus:
		case q.sub == "finalize" && q.res.Resource == "namespaces":
		case q.sub == "approval" && isCSR(q.res) && q.legacy == nil:
		case q.sub == "scale" && hasScale(q.res) && q.legacy == nil:
		case q.sub == "binding" && q.res.Resource == "pods":
		case q.sub == "eviction" && q.res.Resource == "pods" && q.legacy == nil:
		case q.sub == "token" && q.res.Resource == "serviceaccounts" && q.legacy == nil:
		case nodeSubresources[q.sub] && q.res.Resource == "pods" && q.legacy == nil:
		case q.sub == "proxy" && proxyKinds[q.res.Resource] != "" && q.legacy == nil:
		default:
			return nil, false
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case q.name != "":
			q.verb = "get"
		case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
			q.verb = "watch"
		default:
			q.verb = "list"
		}
	case http.MethodPost:
		q.verb = "create"
		if q.name != "" && q.sub != "binding" && q.sub != "token" && q.sub != "eviction" {
			q.verb = "unknown"
		}
	case http.MethodPut:
		q.verb = "update"
	case http.MethodPatch:
		q.verb = "patch"
	case http.MethodDelete:
		q.verb = "delete"
		if q.name == "" {
			q.verb = "deletecollection"
		}
	default:
		q.verb = "unknown"
	}
	if q.sub == "exec" || q.sub == "attach" || q.sub == "portforward" { // a stream into a pod is a write, whatever the method
		q.verb = "create"
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			q.verb = "unknown"
		}
	}
	if q.sub == "proxy" {
		q.verb = proxyVerbs[r.Method]
		if q.verb == "" {
			q.verb = "unknown"
		}
	}
	return q, true
}
