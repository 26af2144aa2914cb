package proxy

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// HealthChecks serves the health-check node ports of externalTrafficPolicy
// Local Services, as kube-proxy does: 200 with the count of this node's
// endpoints when it has some, 503 when not, so load balancers skip the node.
type HealthChecks struct {
	mu      sync.Mutex
	servers map[int32]*hcServer
	log     *slog.Logger
}

type hcServer struct {
	srv   *http.Server
	mu    sync.Mutex
	ns    string
	name  string
	local int
}

// NewHealthChecks returns an empty set of health-check servers.
func NewHealthChecks(log *slog.Logger) *HealthChecks {
	return &HealthChecks{servers: map[int32]*hcServer{}, log: log}
}

func (s *hcServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ns, name, n := s.ns, s.name, s.local
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(n))
	if n == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"service": map[string]string{"namespace": ns, "name": name},
		"localEndpoints": n, "serviceProxyHealthy": true})
}

// Sync opens, updates and closes health-check servers to match the state.
func (h *HealthChecks) Sync(st *State) {
	want := map[int32]*ServicePort{}
	local := map[int32]int{}
	for k, sp := range st.Services {
		if sp.ExternalLocal && sp.HealthCheckPort != 0 {
			want[sp.HealthCheckPort] = sp
			local[sp.HealthCheckPort] += len(Usable(st.Endpoints[k], true))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.servers {
		if want[port] == nil {
			_ = s.srv.Close()
			delete(h.servers, port)
		}
	}
	for port, sp := range want {
		s := h.servers[port]
		if s == nil {
			ln, err := net.Listen("tcp", ":"+strconv.Itoa(int(port)))
			if err != nil {
				h.log.Warn("health-check node port", "port", port, "service", sp.Key.ServiceName(), "err", err)
				continue
			}
			s = &hcServer{}
			s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = s.srv.Serve(ln) }()
			h.servers[port] = s
		}
		s.mu.Lock()
		s.ns, s.name, s.local = sp.Key.Namespace, sp.Key.Name, local[port]
		s.mu.Unlock()
	}
}

// Close stops every server.
func (h *HealthChecks) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.servers {
		_ = s.srv.Close()
		delete(h.servers, port)
	}
}
