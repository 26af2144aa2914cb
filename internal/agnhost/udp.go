package agnhost

import (
	"errors"
	"log"
	"net"
	"strings"
)

// UDPReply is netexec's UDP protocol, case-insensitive as upstream's (which
// lower-cases the request, so "echo Hi" answers "hi"): "hostname", "echo
// <text>", "clientip". ok is false for anything else, which gets no answer.
func UDPReply(msg, host string, from net.Addr) (reply string, ok bool) {
	msg = strings.ToLower(strings.TrimSpace(msg))
	switch {
	case msg == "hostname":
		return host, true
	case msg == "clientip":
		return from.String(), true
	case strings.HasPrefix(msg, "echo "):
		return strings.TrimPrefix(msg, "echo "), true
	}
	return "", false
}

// ServeUDP answers netexec UDP requests on pc until it is closed.
func ServeUDP(pc net.PacketConn, host string, l *log.Logger) error {
	l = orDiscard(l)
	buf := make([]byte, udpAnswerMax)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		reply, ok := UDPReply(string(buf[:n]), host, from)
		if !ok {
			if msg := strings.TrimSpace(string(buf[:n])); msg != "" {
				l.Printf("Unknown UDP command received from %s: %v", from, strings.ToLower(msg))
			}
			continue
		}
		l.Printf("UDP %q from %s", strings.ToLower(strings.TrimSpace(string(buf[:n]))), from)
		if _, err := pc.WriteTo([]byte(reply), from); err != nil {
			l.Printf("UDP reply to %s: %v", from, err)
		}
	}
}
