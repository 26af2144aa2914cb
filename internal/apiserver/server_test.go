package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/storage"
)

const (
	adminToken  = "admin-token"
	viewerToken = "viewer-token"
	nodeToken   = "node1-token"
)

// harness is an API server on an in-memory store, reached over plain HTTP with
// bearer tokens.
type harness struct {
	t     *testing.T
	srv   *Server
	store *storage.Memory
	http  *httptest.Server
}

// startServer makes an API server of cfg and starts it until the test ends.
func startServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

func newHarness(t *testing.T, mut ...func(*Config)) *harness {
	t.Helper()
	tokens, err := auth.ParseTokens(adminToken + ",admin,admin,system:masters\n" + viewerToken + ",viewer,viewer,svcnet:viewers\n" +
		nodeToken + ",system:node:node1,node1,system:nodes\n")
	if err != nil {
		t.Fatal(err)
	}
	st := storage.NewMemory()
	cfg := Config{Store: st, Authn: &auth.Authenticator{Tokens: tokens}, AdvertiseAddress: "192.0.2.1", Port: 6443,
		Log: slog.New(slog.DiscardHandler)}
	for _, m := range mut {
		m(&cfg)
	}
	s := startServer(t, cfg)
	h := &harness{t: t, srv: s, store: st, http: httptest.NewServer(s)}
	t.Cleanup(h.http.Close)
	return h
}

type resp struct {
	code    int
	body    string
	header  http.Header
	decoded map[string]any
}

func (r resp) str(path ...string) string {
	var cur any = r.decoded
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	switch v := cur.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// do sends a request with the admin token unless headers say otherwise.
func (h *harness) do(method, path, body string, headers ...string) resp {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	r := resp{code: res.StatusCode, body: string(data), header: res.Header}
	_ = json.Unmarshal(data, &r.decoded)
	return r
}

func (h *harness) must(want int, r resp) resp {
	h.t.Helper()
	if r.code != want {
		h.t.Fatalf("status %d, want %d: %s", r.code, want, r.body)
	}
	return r
}

const svcJSON = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"%s","labels":{"app":"%s"}},"spec":{"selector":{"app":"web"},"ports":[{"port":80}]}}`

func svcBody(name, app string) string { return fmt.Sprintf(svcJSON, name, app) }

func TestCreateGetListDelete(t *testing.T) {
	h := newHarness(t)
	r := h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("web", "a")))
	if ip := r.str("spec", "clusterIP"); !strings.HasPrefix(ip, "10.") || r.str("metadata", "uid") == "" || r.str("metadata", "resourceVersion") == "" {
		t.Fatalf("created service lacks server fields: %s", r.body)
	}
	if r.str("apiVersion") != "v1" || r.str("kind") != "Service" {
		t.Fatalf("apiVersion/kind missing: %s", r.body)
	}
	h.must(409, h.do("POST", "/api/v1/namespaces/default/services", svcBody("web", "a")))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("api", "b")))
	h.must(404, h.do("POST", "/api/v1/namespaces/nope/services", svcBody("x", "b")))

	l := h.must(200, h.do("GET", "/api/v1/namespaces/default/services?labelSelector=app%3Da", ""))
	if n := strings.Count(l.str("items"), `"name":"web"`); n != 1 || strings.Contains(l.str("items"), `"api"`) || l.str("kind") != "ServiceList" {
		t.Fatalf("label-selected list: %s", l.body)
	}
	l = h.must(200, h.do("GET", "/api/v1/services?fieldSelector=metadata.name%3Dapi", ""))
	if !strings.Contains(l.str("items"), `"name":"api"`) || strings.Contains(l.str("items"), `"name":"web"`) {
		t.Fatalf("field-selected list: %s", l.body)
	}
	bad := h.must(400, h.do("GET", "/api/v1/services?fieldSelector=spec.bogus%3Dx", ""))
	if !strings.Contains(bad.str("message"), "field label not supported: spec.bogus") {
		t.Fatalf("bad field selector message: %s", bad.body)
	}

	// Paging with limit and continue.
	p1 := h.must(200, h.do("GET", "/api/v1/namespaces/default/services?limit=2", ""))
	cont := p1.str("metadata", "continue")
	if cont == "" || strings.Count(p1.str("items"), `"uid"`) != 2 {
		t.Fatalf("page 1: %s", p1.body)
	}
	p2 := h.must(200, h.do("GET", "/api/v1/namespaces/default/services?limit=2&continue="+cont, ""))
	if strings.Count(p2.str("items"), `"uid"`) != 1 || p2.str("metadata", "continue") != "" {
		t.Fatalf("page 2: %s", p2.body)
	}

	// Stale update -> 409 with Kubernetes' message.
	stale := strings.Replace(r.body, `"sessionAffinity":"None"`, `"sessionAffinity":"ClientIP"`, 1)
	h.must(200, h.do("PUT", "/api/v1/namespaces/default/services/web", stale))
	c := h.must(409, h.do("PUT", "/api/v1/namespaces/default/services/web", stale))
	if !strings.Contains(c.str("message"), "the object has been modified; please apply your changes to the latest version and try again") || c.str("reason") != "Conflict" {
		t.Fatalf("conflict: %s", c.body)
	}

	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/web", ""))
	nf := h.must(404, h.do("GET", "/api/v1/namespaces/default/services/web", ""))
	if nf.str("kind") != "Status" || nf.str("reason") != "NotFound" || nf.str("message") != `services "web" not found` {
		t.Fatalf("not found status: %s", nf.body)
	}
}

func TestGenerateNameAndGeneration(t *testing.T) {
	h := newHarness(t)
	r := h.must(201, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"generateName":"cfg-"},"data":{"a":"b"}}`))
	if n := r.str("metadata", "name"); !strings.HasPrefix(n, "cfg-") || len(n) != 9 {
		t.Fatalf("generated name %q", n)
	}
	d := h.must(201, h.do("POST", "/apis/apps/v1/namespaces/default/deployments", deployJSON("web", 1)))
	if d.str("metadata", "generation") != "1" {
		t.Fatalf("generation on create: %s", d.str("metadata", "generation"))
	}
	u := h.must(200, h.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", `{"spec":{"replicas":3}}`, "Content-Type", "application/merge-patch+json"))
	if u.str("metadata", "generation") != "2" {
		t.Fatalf("generation after spec change: %s", u.str("metadata", "generation"))
	}
	u = h.must(200, h.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", `{"metadata":{"labels":{"x":"y"}}}`, "Content-Type", "application/merge-patch+json"))
	if u.str("metadata", "generation") != "2" {
		t.Fatalf("generation after metadata change: %s", u.str("metadata", "generation"))
	}
	// Status updates keep spec; main updates keep status.
	h.must(200, h.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/status", `{"spec":{"replicas":9},"status":{"replicas":3}}`, "Content-Type", "application/merge-patch+json"))
	g := h.must(200, h.do("GET", "/apis/apps/v1/namespaces/default/deployments/web", ""))
	if g.str("spec", "replicas") != "3" || g.str("status", "replicas") != "3" {
		t.Fatalf("status subresource: spec=%s status=%s", g.str("spec", "replicas"), g.str("status", "replicas"))
	}
	h.must(200, h.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", `{"status":{"replicas":0}}`, "Content-Type", "application/merge-patch+json"))
	g = h.must(200, h.do("GET", "/apis/apps/v1/namespaces/default/deployments/web", ""))
	if g.str("status", "replicas") != "3" {
		t.Fatalf("main resource update changed status: %s", g.str("status"))
	}
}

func deployJSON(name string, replicas int) string {
	return `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"` + name + `"},"spec":{"replicas":` + fmt.Sprint(replicas) +
		`,"selector":{"matchLabels":{"app":"` + name + `"}},"template":{"metadata":{"labels":{"app":"` + name +
		`"}},"spec":{"containers":[{"name":"c","image":"agnhost","ports":[{"containerPort":8080,"name":"http"}]}]}}}}`
}

func TestStrictFieldValidation(t *testing.T) {
	h := newHarness(t)
	body := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"bad"},"spec":{"selectpr":{"app":"x"},"ports":[{"port":80}]}}`
	r := h.must(400, h.do("POST", "/api/v1/namespaces/default/services?fieldValidation=Strict", body))
	if r.str("message") != `strict decoding error: unknown field "spec.selectpr"` {
		t.Fatalf("strict message: %s", r.body)
	}
	h.must(404, h.do("GET", "/api/v1/namespaces/default/services/bad", ""))
	w := h.must(201, h.do("POST", "/api/v1/namespaces/default/services", body))
	if !strings.Contains(w.header.Get("Warning"), `unknown field \"spec.selectpr\"`) {
		t.Fatalf("warn mode header: %q", w.header.Get("Warning"))
	}
	ports := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"bad2"},"spec":{"port":[{"port":80}]}}`
	r = h.must(400, h.do("POST", "/api/v1/namespaces/default/services?fieldValidation=Strict", ports))
	if !strings.Contains(r.str("message"), `unknown field "spec.port"`) {
		t.Fatalf("port vs ports: %s", r.body)
	}
	y := "apiVersion: v1\nkind: Service\nmetadata:\n  name: yaml-svc\nspec:\n  selectpr: {}\n  ports:\n  - port: 80\n"
	r = h.must(400, h.do("POST", "/api/v1/namespaces/default/services?fieldValidation=Strict", y, "Content-Type", "application/yaml"))
	if !strings.Contains(r.str("message"), `unknown field "spec.selectpr"`) {
		t.Fatalf("yaml strict: %s", r.body)
	}
	mp := h.must(400, h.do("PATCH", "/api/v1/namespaces/default/services/bad?fieldValidation=Strict", `{"spec":{"selectpr":{"a":"b"}}}`, "Content-Type", "application/merge-patch+json"))
	if !strings.Contains(mp.str("message"), `unknown field "spec.selectpr"`) {
		t.Fatalf("patch strict: %s", mp.body)
	}
	inv := h.must(422, h.do("POST", "/api/v1/namespaces/default/services", `{"metadata":{"name":"noports"},"spec":{}}`))
	var st metav1.Status
	_ = json.Unmarshal([]byte(inv.body), &st)
	if st.Reason != metav1.StatusReasonInvalid || st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Field != "spec.ports" {
		t.Fatalf("422 causes: %s", inv.body)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("web", "a")))
	h.must(404, h.do("GET", "/api/v1/namespaces/default/services/nope", ""))
	h.must(401, h.do("GET", "/metrics", "", "Authorization", "Bearer "+viewerToken+"x"))
	m := h.must(200, h.do("GET", "/metrics", ""))
	for _, want := range []string{
		`apiserver_request_total{code="201",group="",resource="services",subresource="",verb="create"} 1`,
		`apiserver_request_total{code="404",group="",resource="services",subresource="",verb="get"} 1`,
		`apiserver_request_duration_seconds_bucket{group="",resource="services",verb="create",le="10"} 1`,
		"svcnet_service_cluster_ips_free 1.048571e+06",
		"svcnet_service_node_ports_free 2768",
	} {
		if !strings.Contains(m.body, want) {
			t.Errorf("metrics lack %q in\n%s", want, grepLines(m.body, "apiserver_request_total", "svcnet_"))
		}
	}
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
