// Package preflight checks at agent start what the pod runtime and service proxy need from the machine, to say once what is missing and how to install it.
package preflight

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Needs is what the agent is about to run.
type Needs struct {
	Pods bool // the pod runtime is on: pods bound to the node run here
	// CRI runs pods from images through a CRI runtime; OwnContainerd is svcnet's
	// own containerd (no --container-runtime-endpoint), which uses svcnet's CNI
	// config and plugins (an external runtime brings its own).
	CRI, OwnContainerd bool
	CNIPluginDirs      []string // --cni-bin-dir, in search order
	NFTables           bool     // --proxy-mode=nftables
}

// Effect is what a problem stops.
type Effect int

const (
	Degraded Effect = iota // one feature fails; the agent runs
	NoPods                 // pods bound to the node cannot run; API, DNS and proxy work
	Fatal                  // the agent cannot run as configured
)

// Problem is one missing piece.
type Problem struct {
	What   string // what is missing
	Why    string // what fails without it
	Fix    string // the command that installs it (or what to do)
	Flag   string // the flag that asked for it
	Effect Effect
}

func (p Problem) String() string {
	return fmt.Sprintf("missing %s: %s; fix: %s", p.What, p.Why, p.Fix)
}

// Env is what the checks read of the machine: System is the real one, Fake a
// table for tests.
type Env interface {
	LookPath(file string) (string, error)
	IsFile(path string) bool
	Euid() int
	// NFTables is nil when the kernel's nf_tables answers over netlink.
	NFTables() error
}

// Plugins the pod network uses: the process runtime calls bridge (with
// host-local) and loopback through libcni; containerd also chains portmap.
var (
	processPlugins    = []string{"bridge", "host-local", "loopback"}
	containerdPlugins = []string{"bridge", "host-local", "loopback", "portmap"}
)

// Install commands (Debian package names).
const (
	installCNI        = "apt-get install containernetworking-plugins"
	installContainerd = "apt-get install containerd"
	installRunc       = "apt-get install runc"
	installIptables   = "apt-get install iptables"
	installNft        = "apt-get install nftables"
)

// Check lists what is missing for needs, in a fixed order; nil when nothing is.
func Check(n Needs, env Env) []Problem {
	var ps []Problem
	root := env.Euid() == 0
	switch {
	case !root && n.Pods:
		ps = append(ps, Problem{What: "root privileges", Why: "the pod runtime needs root (network namespaces, CNI)",
			Fix: "start svcnet as root (sudo), or --pod-runtime=off", Flag: "--pod-runtime=on", Effect: Fatal})
	case !root:
		ps = append(ps, Problem{What: "root privileges", Why: fmt.Sprintf("the svcnet agent runs as uid %d, and pods need root (network namespaces, CNI)", env.Euid()),
			Fix: "start svcnet as root (sudo)", Flag: "--pod-runtime", Effect: NoPods})
	case n.Pods:
		ps = append(ps, pods(n, env)...)
	}
	if n.NFTables {
		if !root {
			ps = append(ps, Problem{What: "root privileges", Why: "the nftables proxy programs the kernel",
				Fix: "start svcnet as root (sudo), or --proxy-mode=userspace", Flag: "--proxy-mode=nftables", Effect: Fatal})
		} else if err := env.NFTables(); err != nil {
			ps = append(ps, Problem{What: "the kernel's nf_tables (" + err.Error() + ")", Why: "the proxy cannot program service rules",
				Fix: "modprobe nf_tables, or --proxy-mode=userspace", Flag: "--proxy-mode=nftables", Effect: Fatal})
		}
		if _, err := env.LookPath("nft"); err != nil {
			ps = append(ps, Problem{What: "the nft command", Why: "`svcnet explain` cannot show the kernel rules (the proxy itself uses netlink)",
				Fix: installNft, Flag: "--proxy-mode=nftables", Effect: Degraded})
		}
	}
	return ps
}

// pods checks the pod runtime's needs (as root).
func pods(n Needs, env Env) []Problem {
	var ps []Problem
	if n.CRI && !n.OwnContainerd {
		return nil // the external runtime has its own network and binaries
	}
	if n.CRI {
		for _, c := range []struct{ cmd, fix string }{
			{"containerd", installContainerd}, {"containerd-shim-runc-v2", installContainerd},
			{"ctr", installContainerd}, {"runc", installRunc},
		} {
			if _, err := env.LookPath(c.cmd); err != nil {
				ps = append(ps, Problem{What: "the " + c.cmd + " command", Why: "svcnet's containerd cannot run containers",
					Fix: c.fix + ", or --container-runtime=process", Flag: "--container-runtime=cri", Effect: Fatal})
			}
		}
	}
	if missing, dirs := missingPlugins(n, env); len(missing) > 0 {
		ps = append(ps, Problem{What: fmt.Sprintf("CNI plugins %s in %s (--cni-bin-dir)", strings.Join(missing, ", "), dirs),
			Why: "pods get no network", Fix: installCNI, Flag: "--cni-bin-dir", Effect: NoPods})
	}
	if n.CRI {
		if _, err := env.LookPath("iptables"); err != nil {
			ps = append(ps, Problem{What: "the iptables command", Why: "pods with a hostPort do not start (the CNI portmap plugin uses it)",
				Fix: installIptables, Flag: "--container-runtime=cri", Effect: Degraded})
		}
	}
	return ps
}

// missingPlugins lists the CNI plugins not found, and where they were looked
// for. libcni (process runtime) looks up each plugin in every directory;
// containerd takes one directory, the first that holds bridge (podnet.PluginDir).
func missingPlugins(n Needs, env Env) ([]string, string) {
	dirs := n.CNIPluginDirs
	in := func(name string, dirs ...string) bool {
		for _, d := range dirs {
			if env.IsFile(filepath.Join(d, name)) {
				return true
			}
		}
		return false
	}
	want := processPlugins
	if n.CRI {
		want = containerdPlugins
		for _, d := range dirs {
			if in("bridge", d) {
				dirs = []string{d}
				break
			}
		}
	}
	var missing []string
	for _, p := range want {
		if !in(p, dirs...) {
			missing = append(missing, p)
		}
	}
	return missing, strings.Join(dirs, ", ")
}

// Err is the fatal problems as one error naming their flags, or nil.
func Err(ps []Problem) error {
	var msgs []string
	for _, p := range ps {
		if p.Effect == Fatal {
			msgs = append(msgs, p.Flag+": "+p.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// WhyNoPods says why pods cannot run ("" when they can).
func WhyNoPods(ps []Problem) string {
	var msgs []string
	for _, p := range ps {
		if p.Effect == NoPods {
			msgs = append(msgs, p.String())
		}
	}
	return strings.Join(msgs, "; ")
}
