package agent

import (
	"log/slog"

	"github.com/svcnet/svcnet/internal/podnet"
	"github.com/svcnet/svcnet/internal/preflight"
)

// needs is what the agent's options ask of the machine.
func (o *Options) needs() preflight.Needs {
	dirs := o.CNIPluginDirs
	if len(dirs) == 0 {
		dirs = podnet.DefaultPluginDirs
	}
	cri := o.ContainerRuntime == RuntimeCRI
	return preflight.Needs{Pods: o.PodRuntime, CRI: cri, OwnContainerd: cri && o.RuntimeEndpoint == "",
		CNIPluginDirs: dirs, NFTables: o.ProxyMode == "nftables"}
}

// preflight checks this machine before the agent starts.
func (a *Agent) preflight(log *slog.Logger) error { return a.checkMachine(preflight.System{}, log) }

// checkMachine logs once what env lacks for the options, with the fix, and
// fails on what the agent cannot run without. When pods cannot run, the pod
// runtime is turned off and the reason kept for the pods (norun.go).
func (a *Agent) checkMachine(env preflight.Env, log *slog.Logger) error {
	ps := preflight.Check(a.o.needs(), env)
	for _, p := range ps {
		log.Warn("preflight: missing "+p.What, "why", p.Why, "fix", p.Fix, "flag", p.Flag)
	}
	if err := preflight.Err(ps); err != nil {
		return err
	}
	if why := preflight.WhyNoPods(ps); why != "" {
		a.o.PodRuntime = false
		a.noRun = "pods bound to node " + a.o.NodeName + " do not run: " + why
	}
	return nil
}
