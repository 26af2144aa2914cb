package agnhost

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := freePort(t)
	pc := listenUDP(t)
	go func() { _ = ServeUDP(pc, "udp-host", nil) }()
	deadUDP := listenUDP(t)
	deadAddr := deadUDP.LocalAddr().String()
	deadUDP.Close()
	for _, tc := range []struct {
		dest, protocol, want string
	}{
		{ln.Addr().String(), "tcp", ""},
		{ln.Addr().String(), "", ""},
		{"127.0.0.1:" + closed, "tcp", "REFUSED\n"},
		{"no-port", "tcp", "UNKNOWN: address no-port: missing port in address\n"},
		{pc.LocalAddr().String(), "udp", ""},
		{deadAddr, "udp", "REFUSED: read udp "},
		{ln.Addr().String(), "sctp", "Unsupported protocol\nsctp"},
	} {
		got := Connect(tc.dest, tc.protocol, 5*time.Second, "hostname")
		if got != tc.want && (tc.want == "" || !strings.HasPrefix(got, tc.want)) {
			t.Errorf("connect %s %s: %q, want %q", tc.protocol, tc.dest, got, tc.want)
		}
	}
}

func TestFailureClasses(t *testing.T) {
	dialErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		name string
		err  error
		tcp  string
		udp  string
	}{
		{"timeout", dialErr(os.ErrDeadlineExceeded), "TIMEOUT\n", "TIMEOUT: dial tcp: i/o timeout\n"},
		{"refused", dialErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "REFUSED\n", "REFUSED: dial tcp: connect: connection refused\n"},
		{"unreachable", dialErr(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), "OTHER: dial tcp: connect: no route to host\n", "UNKNOWN: dial tcp: connect: no route to host\n"},
		{"not a network error", errors.New("odd"), "OTHER: odd\n", "UNKNOWN: odd\n"},
	} {
		if got := tcpFailure(tc.err); got != tc.tcp {
			t.Errorf("%s: tcp %q, want %q", tc.name, got, tc.tcp)
		}
		if got := udpFailure(tc.err); got != tc.udp {
			t.Errorf("%s: udp %q, want %q", tc.name, got, tc.udp)
		}
	}
}
