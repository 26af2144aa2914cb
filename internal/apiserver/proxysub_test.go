package apiserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// echoBackend stands in for a pod: it answers with what it received, a status
// and header the request asks for, a redirect on /redirect and a raw echo
// after an "Upgrade: echo" handshake.
func echoBackend(t *testing.T, name string) *httptest.Server {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Upgrade") == "echo":
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			_ = rw.Flush()
			line, _ := rw.ReadString('\n')
			_, _ = rw.WriteString(name + " " + r.URL.RequestURI() + " " + line)
			_ = rw.Flush()
			return
		case r.URL.Path == "/redirect":
			http.Redirect(w, r, "/login?next=x", http.StatusFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		if c := r.URL.Query().Get("code"); c != "" {
			var code int
			_, _ = fmt.Sscan(c, &code)
			w.WriteHeader(code)
		}
		_, _ = fmt.Fprintf(w, "%s %s %s %q auth=%q", name, r.Method, r.URL.RequestURI(), body, r.Header.Get("Authorization"))
	}))
	t.Cleanup(b.Close)
	return b
}

func hostPort(t *testing.T, rawURL string) (string, string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port()
}

// proxyHarness is an API server that may proxy to loopback, as the stand-in
// backends live there.
func proxyHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.srv.proxyable = func(ip net.IP) bool { return ip != nil }
	return h
}

// noRedirect sends one request and does not follow redirects.
func (h *harness) noRedirect(method, path, body string, headers ...string) (int, http.Header, string) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.http.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func (h *harness) runningPod(name, ip string, containerPort string) {
	h.t.Helper()
	ports := ""
	if containerPort != "" {
		ports = `,"ports":[{"containerPort":` + containerPort + `}]`
	}
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"`+name+`"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"i"`+ports+`}]}}`))
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/pods/"+name+"/status", `{"status":{"phase":"Running","podIP":"`+ip+`","podIPs":[{"ip":"`+ip+`"}]}}`,
		"Content-Type", "application/merge-patch+json"))
}

func TestPodProxy(t *testing.T) {
	h := proxyHarness(t)
	ip, port := hostPort(t, echoBackend(t, "pod").URL)
	h.runningPod("p", ip, port)
	base := "/api/v1/namespaces/default/pods/p:" + port + "/proxy"

	for _, c := range []struct{ method, path, body, want string }{
		{"GET", "/hostname?a=1&b=x%20y", "", `pod GET /hostname?a=1&b=x%20y "" auth=""`},
		{"POST", "/echo?msg=hi", "payload", `pod POST /echo?msg=hi "payload" auth=""`},
		{"PUT", "/a/b/", "x", `pod PUT /a/b/ "x" auth=""`},
		{"PATCH", "/p", "{}", `pod PATCH /p "{}" auth=""`},
		{"DELETE", "/d", "", `pod DELETE /d "" auth=""`},
		{"OPTIONS", "/o", "", `pod OPTIONS /o "" auth=""`},
		{"GET", "/", "", `pod GET / "" auth=""`},
	} {
		code, hdr, body := h.noRedirect(c.method, base+c.path, c.body)
		if code != 200 || body != c.want || hdr.Get("X-Backend") != "pod" {
			t.Errorf("%s %s = %d %q (X-Backend %q), want 200 %q", c.method, c.path, code, body, hdr.Get("X-Backend"), c.want)
		}
	}
	// The backend's status comes back; the pod's first container port is the default.
	if code, _, _ := h.noRedirect("GET", base+"/x?code=418", ""); code != 418 {
		t.Errorf("status passed back: %d, want 418", code)
	}
	if code, _, body := h.noRedirect("GET", "/api/v1/namespaces/default/pods/p/proxy/first", ""); code != 200 || !strings.HasPrefix(body, "pod GET /first ") {
		t.Errorf("default port: %d %q", code, body)
	}
	// No path: a redirect to the trailing slash; backend redirects point back through the API server.
	if code, hdr, _ := h.noRedirect("GET", base+"?q=1", ""); code != 301 || hdr.Get("Location") != base+"/?q=1" {
		t.Errorf("root redirect: %d %q", code, hdr.Get("Location"))
	}
	if code, hdr, _ := h.noRedirect("GET", base+"/redirect", ""); code != 302 || hdr.Get("Location") != base+"/login?next=x" {
		t.Errorf("backend redirect: %d Location %q, want %s/login?next=x", code, hdr.Get("Location"), base)
	}
	// An upgraded connection is passed through both ways.
	if got := upgradeEcho(t, h, base+"/stream?x=1"); got != "pod /stream?x=1 ping\n" {
		t.Errorf("upgrade echo = %q", got)
	}

	for _, c := range []struct {
		path string
		code int
		msg  string
	}{
		{"/api/v1/namespaces/default/pods/p:http/proxy/", 400, `invalid pod request "p:http": port "http" is not a number from 1 to 65535`},
		{"/api/v1/namespaces/default/pods/p:0/proxy/", 400, `invalid pod request "p:0": port "0" is not a number from 1 to 65535`},
		{"/api/v1/namespaces/default/pods/ftp:p:80/proxy/", 400, `invalid pod request "ftp:p:80"`},
		{"/api/v1/namespaces/default/pods/nope:80/proxy/", 404, `pods "nope" not found`},
	} {
		r := h.must(c.code, h.do("GET", c.path, ""))
		if r.str("message") != c.msg || r.str("kind") != "Status" {
			t.Errorf("GET %s: %s, want message %q", c.path, r.body, c.msg)
		}
	}
	// A backend that does not answer: 503 as kube-apiserver says it.
	dead := httptest.NewServer(http.NotFoundHandler())
	_, deadPort := hostPort(t, dead.URL)
	dead.Close()
	r := h.must(503, h.do("GET", "/api/v1/namespaces/default/pods/p:"+deadPort+"/proxy/", ""))
	if !strings.HasPrefix(r.str("message"), "error trying to reach service: ") {
		t.Errorf("dead backend: %s", r.body)
	}
	// Loopback pod IPs are refused by the real rule.
	h.srv.proxyable = proxyableIP
	r = h.must(400, h.do("GET", base+"/", ""))
	if r.str("message") != "address not allowed" {
		t.Errorf("loopback pod IP: %s", r.body)
	}
}

// upgradeEcho opens an "Upgrade: echo" connection through the API server,
// sends a line and returns what comes back.
func upgradeEcho(t *testing.T, h *harness, path string) string {
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", path, adminToken)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	_, _ = conn.Write([]byte("ping\n"))
	line, _ := br.ReadString('\n')
	return line
}

func TestServiceProxy(t *testing.T) {
	h := proxyHarness(t)
	ip, port := hostPort(t, echoBackend(t, "ep").URL)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services",
		`{"metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080},{"name":"other","port":81}]}}`))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", `{"metadata":{"name":"empty"},"spec":{"selector":{"app":"none"},"ports":[{"port":80}]}}`))
	h.must(201, h.do("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", `{"metadata":{"name":"web-abc","labels":{"kubernetes.io/service-name":"web"}},
		"addressType":"IPv4","ports":[{"name":"http","port":`+port+`}],
		"endpoints":[{"addresses":["`+ip+`"],"conditions":{"ready":true}},{"addresses":["192.0.2.9"],"conditions":{"ready":false}}]}`))

	for _, id := range []string{"web:80", "web:http", "http:web:http"} {
		for i := 0; i < 5; i++ { // never the unready endpoint
			code, hdr, body := h.noRedirect("POST", "/api/v1/namespaces/default/services/"+id+"/proxy/echo?msg=hi", "b")
			if code != 200 || body != `ep POST /echo?msg=hi "b" auth=""` || hdr.Get("X-Backend") != "ep" {
				t.Fatalf("services/%s: %d %q", id, code, body)
			}
		}
	}
	viewer := []string{"Authorization", "Bearer " + viewerToken}
	h.must(200, h.do("GET", "/api/v1/namespaces/default/services/web:80/proxy/x", "", viewer...))
	h.must(403, h.do("POST", "/api/v1/namespaces/default/services/web:80/proxy/x", "", viewer...))
	h.must(403, h.do("GET", "/api/v1/namespaces/default/services/web:80/proxy/x", "", "Authorization", "Bearer "+nodeToken))

	for _, c := range []struct {
		id   string
		code int
		msg  string
	}{
		{"web:82", 503, `no service port 82 found for service "web"`},
		{"web:other", 503, `no endpoints available for service "web:other"`},
		{"web", 503, `no endpoints available for service "web"`}, // the unnamed port
		{"empty:80", 503, `no endpoints available for service "empty"`},
		{"nope:80", 404, `services "nope" not found`},
		{"a:b:c:d", 400, `invalid service request "a:b:c:d"`},
	} {
		r := h.must(c.code, h.do("GET", "/api/v1/namespaces/default/services/"+c.id+"/proxy/", ""))
		if r.str("message") != c.msg {
			t.Errorf("services/%s/proxy: %s, want %q", c.id, r.body, c.msg)
		}
	}
}

func TestNodeProxy(t *testing.T) {
	h := proxyHarness(t)
	agent := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "agent %s %s", r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(agent.Close)
	ip, agentPort := hostPort(t, agent.URL)
	_, otherPort := hostPort(t, echoBackend(t, "host").URL)
	h.must(201, h.do("POST", "/api/v1/nodes", `{"metadata":{"name":"n1"}}`))
	h.must(200, h.do("PATCH", "/api/v1/nodes/n1/status", `{"status":{"addresses":[{"type":"InternalIP","address":"`+ip+`"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":`+agentPort+`}}}}`,
		"Content-Type", "application/merge-patch+json"))
	for path, want := range map[string]string{
		"/api/v1/nodes/n1/proxy/healthz":                    "agent GET /healthz",
		"/api/v1/nodes/n1:" + agentPort + "/proxy/x?y=1":    "agent GET /x?y=1",
		"/api/v1/nodes/n1:" + otherPort + "/proxy/metrics":  `host GET /metrics "" auth=""`,
		"/api/v1/nodes/https:n1:" + agentPort + "/proxy/ok": "agent GET /ok",
	} {
		if code, _, body := h.noRedirect("GET", path, ""); code != 200 || body != want {
			t.Errorf("GET %s = %d %q, want %q", path, code, body, want)
		}
	}
	h.must(400, h.do("GET", "/api/v1/nodes/n1:99999/proxy/", ""))
	h.must(404, h.do("GET", "/api/v1/nodes/n2/proxy/healthz", ""))
}

func TestProxyDiscovery(t *testing.T) {
	h := newHarness(t)
	r := h.must(200, h.do("GET", "/api/v1", ""))
	for _, name := range []string{"pods/proxy", "services/proxy", "nodes/proxy"} {
		if !strings.Contains(r.body, `{"name":"`+name+`","singularName":"","namespaced":`) ||
			!strings.Contains(r.body[strings.Index(r.body, `"name":"`+name+`"`):], `"verbs":["create","delete","get","patch","update"]`) {
			t.Errorf("discovery lacks %s with its verbs", name)
		}
	}
}

func TestPickEndpoint(t *testing.T) {
	ready := func(b bool) discoveryv1.EndpointConditions { return discoveryv1.EndpointConditions{Ready: &b} }
	slices := []*discoveryv1.EndpointSlice{
		{Ports: []discoveryv1.EndpointPort{{Name: ptr.To("a"), Port: ptr.To[int32](1)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: ready(false)}, {Addresses: []string{"127.0.0.1"}}}},
		{Ports: []discoveryv1.EndpointPort{{Name: ptr.To("a"), Port: ptr.To[int32](2)}, {Name: ptr.To(""), Port: ptr.To[int32](3)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.2"}}, {Addresses: []string{"10.0.0.3"}, Conditions: ready(true)}}},
	}
	seen := map[string]bool{}
	for start := 0; start < 4; start++ {
		rnd := func(n int) int { return start % n }
		got, ok := pickEndpoint(slices, "a", proxyableIP, rnd)
		if !ok {
			t.Fatal("no endpoint for port a")
		}
		seen[got] = true
	}
	if len(seen) != 2 || !seen["10.0.0.2:2"] || !seen["10.0.0.3:2"] {
		t.Errorf("port a endpoints chosen: %v, want 10.0.0.2:2 and 10.0.0.3:2 (not unready, not loopback)", seen)
	}
	if got, _ := pickEndpoint(slices, "", proxyableIP, func(int) int { return 1 }); got != "10.0.0.3:3" {
		t.Errorf("unnamed port: %q", got)
	}
	if _, ok := pickEndpoint(slices, "b", proxyableIP, func(int) int { return 0 }); ok {
		t.Error("port b has no endpoints")
	}
}
