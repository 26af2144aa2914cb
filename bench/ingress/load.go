package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// loadCase is one way of sending requests.
type loadCase struct {
	name      string
	tls       bool
	keepAlive bool
	resume    bool // TLS: new connections resume the client's session (tickets)
}

var cases = []loadCase{
	{name: "http keep-alive", keepAlive: true},
	{name: "http new connection each", keepAlive: false},
	{name: "https keep-alive", tls: true, keepAlive: true},
	{name: "https new handshake each", tls: true, keepAlive: false},
	{name: "https resumed session each", tls: true, keepAlive: false, resume: true},
}

// client sends every request to addr whatever the URL's host says (as curl
// --resolve), over HTTP/1.1; TLS sessions are resumed only when c.resume.
func client(addr string, c loadCase, workers int) *http.Client {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
	}
	tc := &tls.Config{InsecureSkipVerify: true, ServerName: host, NextProtos: []string{"http/1.1"}}
	if c.resume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(workers)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial,
		DisableKeepAlives: !c.keepAlive, MaxIdleConnsPerHost: workers, DisableCompression: true, TLSClientConfig: tc}}
}

func url(c loadCase, h string) string {
	if c.tls {
		return "https://" + h + "/"
	}
	return "http://" + h + "/"
}

// get sends one GET and checks the answer came from a backend pod.
func get(hc *http.Client, u string) error {
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), "echo-") {
		return fmt.Errorf("%d %q", resp.StatusCode, b)
	}
	return nil
}

type result struct {
	rps    float64
	lat    []time.Duration
	errors int
	first  error
}

// run sends requests from workers clients for d and measures them.
func run(c loadCase, addr string, workers int, d time.Duration) result {
	hc := client(addr, c, workers)
	defer hc.CloseIdleConnections()
	u := url(c, host)
	var mu sync.Mutex
	var res result
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var lat []time.Duration
			errs := 0
			var first error
			for {
				t := time.Now()
				if t.After(end) {
					break
				}
				if err := get(hc, u); err != nil {
					errs++
					first = err
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errors += errs
			if first != nil {
				res.first = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.rps = float64(len(res.lat)) / time.Since(start).Seconds()
	return res
}

// waitServed waits up to 30 s for addr to answer from a pod.
func waitServed(addr string, isTLS bool) error {
	c := loadCase{tls: isTLS}
	hc := client(addr, c, 1)
	var err error
	for range 300 {
		if err = get(hc, url(c, host)); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not served within 30 s: %v", url(c, host), err)
}
