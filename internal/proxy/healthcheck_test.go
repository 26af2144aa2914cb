package proxy

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
)

func freePort(t *testing.T) int32 {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func TestHealthCheckNodePort(t *testing.T) {
	port := freePort(t)
	k := Key{"ns", "lb", "http"}
	st := NewState()
	st.Services[k] = &ServicePort{Key: k, ExternalLocal: true, HealthCheckPort: port}
	st.Endpoints[k] = []Endpoint{{Addr: netip.MustParseAddrPort("10.0.0.1:80"), Ready: true, Serving: true, Local: true},
		{Addr: netip.MustParseAddrPort("10.0.0.2:80"), Ready: true, Serving: true}}
	h := NewHealthChecks(slog.Default())
	defer h.Close()
	get := func() (int, map[string]any) {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(int(port)) + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	h.Sync(st)
	if code, body := get(); code != 200 || body["localEndpoints"] != float64(1) {
		t.Errorf("one local endpoint: %d %v", code, body)
	}
	st.Endpoints[k] = st.Endpoints[k][1:]
	h.Sync(st)
	if code, body := get(); code != 503 || body["localEndpoints"] != float64(0) {
		t.Errorf("no local endpoint: %d %v, want 503", code, body)
	}
	delete(st.Services, k)
	h.Sync(st)
	if _, err := http.Get("http://127.0.0.1:" + strconv.Itoa(int(port)) + "/"); err == nil {
		t.Error("server still up after the Service went")
	}
}
