package agnhost

import (
	"context"
	"net/http/httptest"
	"testing"
)

func TestLoad(t *testing.T) {
	srv := httptest.NewServer(NewNetExec(NetExecOptions{Host: "test-host"}).Handler())
	defer srv.Close()
	ctx := context.Background()
	for _, low := range []bool{false, true} {
		if r, err := Requests(ctx, srv.URL+"/hostname", 20, low); err != nil || r <= 0 {
			t.Errorf("Requests (low ports %v): %v, %v", low, r, err)
		}
	}
	if r, err := Download(ctx, srv.URL, 1<<20); err != nil || r <= 0 {
		t.Errorf("Download: %v, %v", r, err)
	}
	if _, err := Download(ctx, srv.URL+"/nothing-here", 1<<20); err == nil {
		t.Error("Download of a short body should fail")
	}
}
