package agent

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/svcnet/svcnet/internal/ingress"
)

// startIngress runs the ingress edge (internal/ingress) on the node's address:
// its controller feeds the server's Table; both stop with ctx.
func (a *Agent) startIngress(ctx context.Context, log *slog.Logger) {
	log = log.With("component", "ingress")
	m := ingress.NewMetrics(a.ingressReg)
	srv := ingress.NewServer(ingress.ServerOptions{Addrs: []netip.Addr{netip.MustParseAddr(a.o.NodeIP)},
		AccessLog: a.o.IngressAccessLog, Log: log, Metrics: m, Now: a.o.Now})
	c := ingress.NewController(a.client, srv, ingress.ControllerOptions{NodeName: a.o.NodeName, Addresses: []string{a.o.NodeIP},
		HTTPPort: a.o.IngressHTTPPort, HTTPSPort: a.o.IngressHTTPSPort, Sources: a.o.IngressSources, Log: log, Metrics: m,
		Programmed: func(ready map[netip.Addr]int) { a.drain.Replace(drainIngress, ready) }})
	go func() { _ = srv.Run(ctx) }()
	go func() {
		if err := c.Run(ctx); err != nil {
			log.Error("ingress controller stopped", "err", err)
		}
	}()
}
