package agent

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestNodeLogs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "syslog"), []byte("booted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "pods"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := nodeLogs(dir)
	for _, tc := range []struct {
		path     string
		code     int
		contains string
	}{
		{"/logs/", http.StatusOK, `<a href="syslog">syslog</a>`},
		{"/logs/", http.StatusOK, `<a href="pods/">pods/</a>`},
		{"/logs/syslog", http.StatusOK, "booted"},
		{"/logs/missing", http.StatusNotFound, ""},
		{"/logs/../../etc/passwd", http.StatusNotFound, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.contains) {
			t.Errorf("GET %s: %d %q, want %d containing %q", tc.path, rec.Code, rec.Body.String(), tc.code, tc.contains)
		}
	}
}

func TestNodeReadyWaitsForPodRuntime(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		podRuntime bool
		port       int
		want       corev1.ConditionStatus
	}{
		{"no pod runtime", false, 0, corev1.ConditionTrue},
		{"pod runtime starting", true, 0, corev1.ConditionFalse},
		{"pod runtime serving", true, 10250, corev1.ConditionTrue},
	} {
		a := &Agent{o: Options{PodRuntime: tc.podRuntime, NodeIP: "10.0.0.1", NodeName: "n", Now: func() time.Time { return now }}, port: tc.port}
		st := a.nodeStatus(corev1.NodeStatus{})
		if len(st.Conditions) != 1 || st.Conditions[0].Type != corev1.NodeReady || st.Conditions[0].Status != tc.want {
			t.Errorf("%s: conditions %+v, want Ready %s", tc.name, st.Conditions, tc.want)
		}
		if got := st.DaemonEndpoints.KubeletEndpoint.Port; got != int32(tc.port) {
			t.Errorf("%s: kubelet endpoint port %d, want %d", tc.name, got, tc.port)
		}
	}
}
