package agnhost

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"
)

// NetExecOptions configures netexec's HTTP handler.
type NetExecOptions struct {
	Host string      // answered by /hostname and /hostName
	Log  *log.Logger // one line per request, as upstream logs them (nil: none)
	// Exit is called by /exit and /shutdown: stop serving within grace (0:
	// at once, without draining), then exit the process with code.
	Exit      func(code int, grace time.Duration)
	Shell     string // /shell runs Shell -c CMD; "" is /bin/sh
	UploadDir string // /upload writes files here; "" is /uploads
}

// NetExec is netexec's HTTP side: the endpoints of upstream's netexec plus
// svcnet's /bytes, and the state /healthz and /readyz report.
type NetExec struct {
	o           NetExecOptions
	log         *log.Logger
	ready       atomic.Bool // a UDP server is up: upstream's health condition
	terminating atomic.Bool // SIGTERM seen: /readyz turns 503, /healthz stays 200
}

// NewNetExec returns a netexec handler; it is not ready until SetReady(true).
func NewNetExec(o NetExecOptions) *NetExec {
	if o.Shell == "" {
		o.Shell = "/bin/sh"
	}
	if o.UploadDir == "" {
		o.UploadDir = "/uploads"
	}
	if o.Exit == nil {
		o.Exit = func(int, time.Duration) {}
	}
	return &NetExec{o: o, log: orDiscard(o.Log)}
}

// SetReady records whether the UDP server (upstream's readiness condition) runs.
func (n *NetExec) SetReady(ok bool) { n.ready.Store(ok) }

// Terminate records that SIGTERM arrived: /readyz answers 503 from now on.
func (n *NetExec) Terminate() { n.terminating.Store(true) }

// Handler returns the HTTP endpoints.
func (n *NetExec) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		n.log.Printf("GET /")
		fmt.Fprintf(w, "NOW: %v", time.Now())
	})
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET /clientip")
		fmt.Fprint(w, r.RemoteAddr)
	})
	mux.HandleFunc("/serverport", func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET /serverport")
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if _, port, err := net.SplitHostPort(a.String()); err == nil {
				fmt.Fprint(w, port)
			}
		}
	})
	mux.HandleFunc("/header", n.header)
	mux.HandleFunc("/dial", n.dial)
	mux.HandleFunc("/echo", n.echo)
	mux.HandleFunc("/exit", n.exit)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		n.log.Printf("GET /healthz")
		if !n.ready.Load() {
			w.WriteHeader(http.StatusPreconditionFailed)
		}
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		n.log.Printf("GET /readyz")
		switch {
		case n.terminating.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "shutting down")
		case n.ready.Load():
			fmt.Fprint(w, "ok")
		default:
			w.WriteHeader(http.StatusPreconditionFailed)
		}
	})
	hostname := func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET %s", r.URL.Path)
		fmt.Fprint(w, n.o.Host)
	}
	mux.HandleFunc("/hostname", hostname)
	mux.HandleFunc("/hostName", hostname)
	mux.HandleFunc("/redirect", n.redirect)
	mux.HandleFunc("/shell", n.shell)
	mux.HandleFunc("/upload", n.upload)
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, _ *http.Request) {
		n.log.Printf("GET /shutdown")
		fmt.Fprint(w, "shutting down")
		go n.o.Exit(0, shutdownGrace) // after the answer is on its way
	})
	mux.HandleFunc("/bytes", serveBytes)
	return mux
}

// Override answers every request as h answers a GET of path (--http-override).
func Override(h http.Handler, path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
		if err != nil {
			http.Error(w, fmt.Sprintf("override request failed: %v", err), http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, req)
	})
}

// statusCode parses an optional "code" parameter; ok is false (and the
// complaint written, with 200 as upstream) when it is not a number.
func statusCode(w http.ResponseWriter, s string, def int) (code int, ok bool) {
	if s == "" {
		return def, true
	}
	code, err := strconv.Atoi(s)
	if err != nil {
		fmt.Fprintf(w, "argument 'code' must be an integer or empty, got %q\n", s)
		return 0, false
	}
	if code < 100 || code > 999 {
		panic(http.ErrAbortHandler) // net/http cannot send it: upstream's connection drops too
	}
	return code, true
}

func (n *NetExec) echo(w http.ResponseWriter, r *http.Request) {
	msg, c := r.FormValue("msg"), r.FormValue("code")
	n.log.Printf("GET /echo?msg=%s&code=%s", msg, c)
	code, ok := statusCode(w, c, http.StatusOK)
	if !ok {
		return
	}
	w.WriteHeader(code)
	fmt.Fprint(w, msg)
}

func (n *NetExec) redirect(w http.ResponseWriter, r *http.Request) {
	location, c := r.FormValue("location"), r.FormValue("code")
	n.log.Printf("%s /redirect?msg=%s&code=%s", r.Method, location, c)
	if code, ok := statusCode(w, c, http.StatusFound); ok {
		http.Redirect(w, r, location, code)
	}
}

func (n *NetExec) header(w http.ResponseWriter, r *http.Request) {
	if key := r.FormValue("key"); key != "" {
		n.log.Printf("GET /header?key=%s", key)
		fmt.Fprint(w, r.Header.Get(key))
		return
	}
	n.log.Printf("GET /header")
	b, err := json.Marshal(r.Header)
	if err != nil {
		fmt.Fprintf(w, "error marshalling header, err: %v", err)
		return
	}
	_, _ = w.Write(b)
}

func (n *NetExec) exit(w http.ResponseWriter, r *http.Request) {
	ws, ts, cs := r.FormValue("wait"), r.FormValue("timeout"), r.FormValue("code")
	n.log.Printf("GET /exit?code=%s&timeout=%s&wait=%s", cs, ts, ws)
	timeout, err := time.ParseDuration(ts)
	if err != nil && ts != "" {
		fmt.Fprintf(w, "argument 'timeout' must be a valid golang duration or empty, got %q\n", ts)
		return
	}
	wait, err := time.ParseDuration(ws)
	if err != nil && ws != "" {
		fmt.Fprintf(w, "argument 'wait' must be a valid golang duration or empty, got %q\n", ws)
		return
	}
	code, err := strconv.Atoi(cs)
	if err != nil && cs != "" {
		fmt.Fprintf(w, "argument 'code' must be an integer [0-127] or empty, got %q\n", cs)
		return
	}
	n.log.Printf("Will begin shutdown in %s, allowing %s for connections to close, then will exit with %d", wait, timeout, code)
	time.Sleep(wait)
	n.o.Exit(code, timeout)
}

// shellResult is /shell's and /upload's answer; empty fields are left out.
type shellResult struct {
	Error  string `json:"error,omitempty"`
	Output string `json:"output,omitempty"`
}

func (n *NetExec) shell(w http.ResponseWriter, r *http.Request) {
	cmd := r.FormValue("shellCommand")
	if cmd == "" {
		cmd = r.FormValue("cmd")
	}
	n.log.Printf("GET /shell?cmd=%s", cmd)
	out, err := exec.Command(n.o.Shell, "-c", cmd).CombinedOutput()
	res := shellResult{Output: string(out)}
	if err != nil {
		res.Error = err.Error()
	}
	n.log.Printf("Output: %+v", res)
	writeJSON(w, http.StatusOK, res)
}

func (n *NetExec) upload(w http.ResponseWriter, r *http.Request) {
	n.log.Printf("GET /upload")
	fail := func(msg string, err error) {
		n.log.Printf("%s: %v", msg, err)
		writeJSON(w, http.StatusOK, shellResult{Error: msg})
	}
	file, _, err := r.FormFile("file")
	if err != nil {
		fail("Unable to upload file.", err)
		return
	}
	defer file.Close()
	f, err := os.CreateTemp(n.o.UploadDir, "upload")
	if err != nil {
		fail("Unable to open file for write", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, file); err != nil {
		fail("Unable to write file.", err)
		return
	}
	if err := os.Chmod(f.Name(), 0o700); err != nil {
		fail("Unable to chmod file.", err)
		return
	}
	n.log.Printf("Wrote upload to %s", f.Name())
	writeJSON(w, http.StatusCreated, shellResult{Output: f.Name()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("response could not be serialized. %v", err), http.StatusExpectationFailed)
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// serveBytes answers /bytes?n=N with N zero bytes (svcnet's throughput tests).
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		http.Error(w, "n: a byte count up to 1 TiB is required", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	buf := make([]byte, 256*1024)
	for n > 0 {
		m := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:m]); err != nil {
			return
		}
		n -= m
	}
}
