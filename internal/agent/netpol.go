package agent

import (
	"context"
	"log/slog"
	"os"

	"github.com/svcnet/svcnet/internal/netpol"
)

// startNetworkPolicy enforces NetworkPolicies for this node's pods in
// nftables (internal/netpol). Not on a kubelet's node: there the cluster's
// network plugin owns policy. The table stays when the agent stops, as the
// proxy's does (connections keep their verdicts); --cleanup removes it.
func (a *Agent) startNetworkPolicy(ctx context.Context, log *slog.Logger) {
	log = log.With("component", "netpol")
	if !a.o.NetworkPolicy || a.kubeletNode || os.Geteuid() != 0 {
		if err := netpol.Delete(); err != nil && os.Geteuid() == 0 {
			log.Warn("removing the network policy table", "err", err)
		}
		log.Info("network policies are not enforced on this node", "flag", a.o.NetworkPolicy, "kubeletNode", a.kubeletNode)
		return
	}
	tb, err := netpol.NewTable()
	if err != nil {
		log.Error("network policies are not enforced on this node", "err", err)
		return
	}
	c := netpol.NewController(a.client, a.o.NodeName, tb, a.ingressReg, log)
	go func() {
		if err := c.Run(ctx); err != nil && ctx.Err() == nil { // not at the agent's own stop
			log.Error("network policy controller stopped", "err", err)
		}
	}()
}

// CleanupNetworkPolicy removes the policy table (svcnet agent --cleanup).
func CleanupNetworkPolicy() error { return netpol.Delete() }
