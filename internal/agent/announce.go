package agent

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/svcnet/svcnet/internal/announce"
)

// startAnnouncer answers ARP for the load-balancer IPs this node wins the
// Lease of (internal/announce), on the interface holding the node's IPv4
// address; the proxy serves those IPs on every node.
func (a *Agent) startAnnouncer(ctx context.Context, log *slog.Logger) {
	ip, err := netip.ParseAddr(a.o.NodeIP)
	if err != nil || !ip.Is4() || ip.IsLoopback() {
		log.Info("no load-balancer IP announcements: the node IP is not an IPv4 LAN address", "ip", a.o.NodeIP)
		return
	}
	ifi, err := announce.InterfaceOf(ip)
	if err != nil {
		log.Warn("no load-balancer IP announcements", "err", err)
		return
	}
	r, err := announce.NewARP(ifi, log)
	if err != nil {
		log.Warn("no load-balancer IP announcements", "err", err)
		return
	}
	an := announce.New(announce.Config{Client: a.client, Node: a.o.NodeName, Responder: r, Log: log.With("component", "announce")})
	go func() {
		an.Run(ctx)
		_ = r.Close()
	}()
}
