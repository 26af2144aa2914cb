package agnhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"
)

// Requests' low source ports, below the kernel's ephemeral range (32768-60999).
const lowPortFirst, lowPortCount = 11000, 19000

// lowPortDialer dials from ports 11000-29999 in turn (from a random start, so
// runs one after another do not begin on the same ports), skipping ports in use.
func lowPortDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	var next atomic.Int32
	next.Store(rand.Int32N(lowPortCount))
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
		return err
	}}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		for {
			dd := d
			dd.LocalAddr = &net.TCPAddr{Port: lowPortFirst + int(next.Add(1))%lowPortCount}
			c, err := dd.DialContext(ctx, network, addr)
			if !errors.Is(err, syscall.EADDRINUSE) {
				return c, err
			}
		}
	}
}

// Requests makes n sequential GETs of url, each on a new connection, and
// returns how many per second. lowPorts takes source ports below the
// ephemeral range: a benchmark that reaches one pod both directly and through
// a cluster IP from the same address keeps the two paths from reusing each
// other's ports while the pod still holds them in TIME_WAIT.
func Requests(ctx context.Context, url string, n int, lowPorts bool) (float64, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	if lowPorts {
		tr.DialContext = lowPortDialer()
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	start := time.Now()
	for i := 0; i < n; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// Download fetches n bytes from base's /bytes (netexec) and returns MiB/s.
func Download(ctx context.Context, base string, n int64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/bytes?n=%d", base, n), nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil || got != n {
		return 0, fmt.Errorf("downloaded %d of %d bytes: %v", got, n, err)
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}
