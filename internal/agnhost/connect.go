package agnhost

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// connectBufSize is how much of a UDP answer connect reads (upstream's buffer).
const connectBufSize = 1024

// Connect is upstream's connect: it tries dest ("host:port") over protocol
// (tcp, the default, or udp) and returns "" on success or what upstream
// prints to stderr before exiting 1, a line starting with UNKNOWN, TIMEOUT,
// DNS, REFUSED or OTHER that network policy tests look for. timeout 0 waits
// as long as the system does; udp sends udpData and waits for an answer.
func Connect(dest, protocol string, timeout time.Duration, udpData string) string {
	switch protocol {
	case "", "tcp":
		return connectTCP(dest, timeout)
	case "udp":
		return connectUDP(dest, timeout, udpData)
	}
	return "Unsupported protocol\n" + protocol // sctp too: svcnet has no SCTP
}

func connectTCP(dest string, timeout time.Duration) string {
	if _, _, err := net.SplitHostPort(dest); err != nil {
		return fmt.Sprintf("UNKNOWN: %v\n", err)
	}
	if _, err := net.ResolveTCPAddr("tcp", dest); err != nil {
		return fmt.Sprintf("DNS: %v\n", err)
	}
	c, err := net.DialTimeout("tcp", dest, timeout)
	if err != nil {
		return tcpFailure(err)
	}
	c.Close()
	return ""
}

// tcpFailure classifies a failed TCP dial as upstream does.
func tcpFailure(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		if op.Timeout() {
			return "TIMEOUT\n"
		}
		if errors.Is(op.Err, syscall.ECONNREFUSED) {
			return "REFUSED\n"
		}
	}
	return fmt.Sprintf("OTHER: %v\n", err)
}

func connectUDP(dest string, timeout time.Duration, data string) string {
	if _, err := net.ResolveUDPAddr("udp", dest); err != nil {
		return fmt.Sprintf("DNS: %v\n", err)
	}
	c, err := net.Dial("udp", dest)
	if err != nil {
		return fmt.Sprintf("OTHER: %v\n", err)
	}
	defer c.Close()
	if timeout > 0 {
		if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
			return fmt.Sprintf("OTHER: %v\n", err)
		}
	}
	if _, err := c.Write([]byte(data + "\n")); err != nil {
		return udpFailure(err)
	}
	buf := make([]byte, connectBufSize)
	n, err := c.Read(buf)
	if err != nil {
		return udpFailure(err)
	}
	if n == 0 {
		return "OTHER: No data received from the server. Cannot guarantee the server received the request.\n"
	}
	return ""
}

// udpFailure classifies a failed UDP exchange as upstream does.
func udpFailure(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("TIMEOUT: %v\n", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("REFUSED: %v\n", err)
	}
	return fmt.Sprintf("UNKNOWN: %v\n", err)
}
