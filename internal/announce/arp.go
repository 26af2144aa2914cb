package announce

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// ARP answers ARP requests for the announced addresses on one interface with
// the interface's hardware address (github.com/mdlayher/arp, a packet socket).
type ARP struct {
	c      *arp.Client
	log    *slog.Logger
	mu     sync.Mutex
	ips    map[netip.Addr]bool
	closed atomic.Bool
}

var _ Responder = (*ARP)(nil)

// InterfaceOf returns the interface that holds ip.
func InterfaceOf(ip netip.Addr) (*net.Interface, error) {
	list, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range list {
		addrs, _ := list[i].Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip {
				return &list[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no interface holds %s", ip)
}

// NewARP starts answering on ifi.
func NewARP(ifi *net.Interface, log *slog.Logger) (*ARP, error) {
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("ARP on %s: %w", ifi.Name, err)
	}
	r := &ARP{c: c, log: log, ips: map[netip.Addr]bool{}}
	go r.serve()
	return r, nil
}

func (r *ARP) serve() {
	for {
		p, _, err := r.c.Read()
		if err != nil {
			if r.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // not an ARP packet
		}
		if p.Operation != arp.OperationRequest {
			continue
		}
		r.mu.Lock()
		ours := r.ips[p.TargetIP]
		r.mu.Unlock()
		if ours {
			if err := r.c.Reply(p, r.c.HardwareAddr(), p.TargetIP); err != nil {
				r.log.Debug("ARP reply", "ip", p.TargetIP, "err", err)
			}
		}
	}
}

// Announce implements Responder: new addresses are announced with a
// gratuitous ARP request and reply, so neighbours update their caches.
func (r *ARP) Announce(ips []netip.Addr) error {
	next := map[netip.Addr]bool{}
	var fresh []netip.Addr
	r.mu.Lock()
	for _, ip := range ips {
		next[ip] = true
		if !r.ips[ip] {
			fresh = append(fresh, ip)
		}
	}
	r.ips = next
	r.mu.Unlock()
	var errs []error
	for _, ip := range fresh {
		for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
			p, err := arp.NewPacket(op, r.c.HardwareAddr(), ip, ethernet.Broadcast, ip)
			if err == nil {
				err = r.c.WriteTo(p, ethernet.Broadcast)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("gratuitous ARP for %s: %w", ip, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops answering.
func (r *ARP) Close() error {
	r.closed.Store(true)
	return r.c.Close()
}
