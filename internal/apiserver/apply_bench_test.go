package apiserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/storage"
)

// benchServer is an API server on an in-memory store, called in-process (no network).
func benchServer(b testing.TB) *Server {
	b.Helper()
	tokens, err := auth.ParseTokens(adminToken + ",admin,admin,system:masters\n")
	if err != nil {
		b.Fatal(err)
	}
	return startServer(b, Config{Store: storage.NewMemory(), Authn: &auth.Authenticator{Tokens: tokens}, AdvertiseAddress: "192.0.2.1",
		Port: 6443, Log: slog.New(slog.DiscardHandler)})
}

func benchDo(b *testing.B, s *Server, method, path, ct, body string, want int) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "bench/v1.0")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
}

const benchDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s","labels":{"app":"web"}},
"spec":{"replicas":%d,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
"spec":{"containers":[{"name":"web","image":"nginx:1.27","ports":[{"containerPort":80}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}]}}}}`

// BenchmarkWrite measures the write paths that managedFields tracking sits on.
func BenchmarkWrite(b *testing.B) {
	b.Run("CreateConfigMap", func(b *testing.B) {
		s := benchServer(b)
		for i := 0; b.Loop(); i++ {
			benchDo(b, s, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
				fmt.Sprintf(`{"metadata":{"name":"cm%d"},"data":{"a":"1","b":"2"}}`, i), http.StatusCreated)
		}
	})
	b.Run("UpdateConfigMap", func(b *testing.B) {
		s := benchServer(b)
		benchDo(b, s, "POST", "/api/v1/namespaces/default/configmaps", "application/json", `{"metadata":{"name":"cm"},"data":{"a":"0"}}`, http.StatusCreated)
		for i := 0; b.Loop(); i++ {
			benchDo(b, s, "PUT", "/api/v1/namespaces/default/configmaps/cm", "application/json",
				fmt.Sprintf(`{"metadata":{"name":"cm"},"data":{"a":"%d","b":"2"}}`, i), http.StatusOK)
		}
	})
	b.Run("CreateDeployment", func(b *testing.B) {
		s := benchServer(b)
		for i := 0; b.Loop(); i++ {
			benchDo(b, s, "POST", "/apis/apps/v1/namespaces/default/deployments", "application/json", fmt.Sprintf(benchDeployment, fmt.Sprint("d", i), 1), http.StatusCreated)
		}
	})
	b.Run("UpdateDeployment", func(b *testing.B) {
		s := benchServer(b)
		benchDo(b, s, "POST", "/apis/apps/v1/namespaces/default/deployments", "application/json", fmt.Sprintf(benchDeployment, "d", 1), http.StatusCreated)
		for i := 0; b.Loop(); i++ {
			benchDo(b, s, "PUT", "/apis/apps/v1/namespaces/default/deployments/d", "application/json", fmt.Sprintf(benchDeployment, "d", i%5+1), http.StatusOK)
		}
	})
}
