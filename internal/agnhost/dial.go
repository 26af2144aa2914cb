package agnhost

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// dialTimeout bounds each /dial try: the HTTP request, or the wait for a UDP answer (as upstream).
const dialTimeout = 5 * time.Second

// udpAnswerMax is the largest UDP answer /dial reads (upstream's buffer).
const udpAnswerMax = 2048

// dialTry is one /dial attempt: the answer, or the error.
type dialTry struct {
	response string
	err      error
}

// dialResult renders /dial's JSON as upstream does: "errors" lists the failed
// tries; "responses" lists the answers, but only when the last try answered
// something (an empty or failed last try leaves them out).
func dialResult(tries []dialTry) []byte {
	out := map[string][]string{}
	var errs, responses []string
	for _, t := range tries {
		if t.err != nil {
			errs = append(errs, t.err.Error())
		} else {
			responses = append(responses, t.response)
		}
	}
	if n := len(tries); n > 0 && tries[n-1].err == nil && tries[n-1].response != "" {
		out["responses"] = responses
	}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	b, _ := json.Marshal(out) // strings only: cannot fail
	return b
}

// dial is /dial?request=R&protocol=http|udp&host=H&port=P&tries=N: netexec
// asks another server N times (a new connection each) and reports the answers.
func (n *NetExec) dial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	host, port, request, protocol, triesParam := q.Get("host"), q.Get("port"), q.Get("request"), q.Get("protocol"), q.Get("tries")
	n.log.Printf("GET /dial?host=%s&protocol=%s&port=%s&request=%s&tries=%s", host, protocol, port, request, triesParam)
	tries := 1
	if triesParam != "" {
		var err error
		if tries, err = strconv.Atoi(triesParam); err != nil {
			http.Error(w, fmt.Sprintf("tries parameter is invalid. %v", err), http.StatusBadRequest)
			return
		}
	}
	if request == "" {
		http.Error(w, "request parameter not specified. <nil>", http.StatusBadRequest)
		return
	}
	hostPort := net.JoinHostPort(host, port)
	var dialer func(request, addr string) (string, error)
	var addr net.Addr
	var err error
	switch strings.ToLower(protocol) {
	case "", "http":
		dialer = dialHTTP
		addr, err = net.ResolveTCPAddr("tcp", hostPort)
	case "udp":
		dialer = dialUDP
		addr, err = net.ResolveUDPAddr("udp", hostPort)
	default: // sctp too: svcnet has no SCTP
		http.Error(w, fmt.Sprintf("unsupported protocol. %s", protocol), http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("host and/or port param are invalid. %v", err), http.StatusBadRequest)
		return
	}
	results := make([]dialTry, 0, max(tries, 0))
	for i := 0; i < tries; i++ {
		resp, err := dialer(request, addr.String())
		results = append(results, dialTry{resp, err})
	}
	_, _ = w.Write(dialResult(results))
}

// dialHTTP GETs http://addr/request on a connection of its own.
func dialHTTP(request, addr string) (string, error) {
	client := &http.Client{Timeout: dialTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(fmt.Sprintf("http://%s/%s", addr, request))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	return string(body), nil
}

// dialUDP sends request to addr and waits for one datagram back.
func dialUDP(request, addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", fmt.Errorf("udp dial failed. err:%v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(request)); err != nil {
		return "", fmt.Errorf("udp connection write failed. err:%v", err)
	}
	buf := make([]byte, udpAnswerMax)
	_ = c.SetReadDeadline(time.Now().Add(dialTimeout))
	n, err := c.Read(buf)
	if err != nil || n == 0 {
		return "", fmt.Errorf("reading from udp connection failed. err:'%v'", err)
	}
	return string(buf[:n]), nil
}
