package ingress

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStreamingFlushes checks that a streaming response (no Content-Length)
// reaches the client write by write, while a response of known length comes
// whole; both through the pooled copy buffers.
func TestStreamingFlushes(t *testing.T) {
	next := make(chan struct{})
	big := strings.Repeat("x", 3*copyBufferSize+7)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			for i := range 3 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
				select {
				case <-next: // the client has read this part
				case <-time.After(5 * time.Second):
					return
				}
			}
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = io.WriteString(w, big)
		}
	}))
	defer backend.Close()
	port := freePort(t)
	ep := netip.MustParseAddrPort(backend.Listener.Addr().String())
	startServer(t, &Table{Ports: map[int]*Port{port: {Hosts: map[string]*Host{"": {Routes: []*Route{
		{Source: "s", Path: PathPrefix, Value: "/", Backends: []*Backend{{Weight: 1, Endpoints: []netip.AddrPort{ep}}}}}}}}}})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	resp, err := http.Get(base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n') // blocks until the part is flushed through the proxy
		if want := fmt.Sprintf("part %d\n", i); err != nil || line != want {
			t.Fatalf("streamed %q, %v; want %q", line, err, want)
		}
		next <- struct{}{}
	}
	for range 3 { // the buffers are reused: answers stay intact
		if code, body := get(t, http.DefaultClient, base+"/big", "big.test"); code != 200 || body != big {
			t.Fatalf("big response: %d, %d bytes, want 200 and %d bytes", code, len(body), len(big))
		}
	}
}
