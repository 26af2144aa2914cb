package iptables

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/svcnet/svcnet/internal/kubeproxy"
	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/conntrack"
)

// Runner runs the iptables tools: the real one execs them (the Debian
// iptables package, nft backend); tests may fake it.
type Runner interface {
	Save() (string, error)      // iptables-save
	Restore(input string) error // iptables-restore --noflush
}

// Exec runs iptables-save and iptables-restore from PATH.
type Exec struct{}

// Save runs iptables-save.
func (Exec) Save() (string, error) {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return "", fmt.Errorf("iptables-save: %w", err)
	}
	return string(out), nil
}

// Restore feeds input to iptables-restore --noflush (-w: wait for the xtables lock).
func (Exec) Restore(input string) error {
	cmd := exec.Command("iptables-restore", "--noflush", "-w", "5")
	cmd.Stdin = strings.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Backend keeps kube-proxy's chains in step with the state: a partial sync
// writes only the chains that changed, a full sync (start, after an error)
// reads the kernel's chains once and rewrites all of ours.
type Backend struct {
	c   Config
	run Runner
	// LocalnetLink is the pod bridge: route_localnet is on there while our
	// guard on 127.0.0.0/8 is (see the nftables backend). Empty: left alone.
	LocalnetLink string
	// Log reports warnings that do not fail a sync.
	Log        func(msg string, err error)
	cur        *Written
	localnetOn bool
	clear      func([]netlink.CustomConntrackFilter) error // nil: conntrack left alone (tests' runners)
	nft        bool                                        // the tools are the nf_tables flavour (Verify)
	gen        uint32                                      // the nftables generation after our last restore (Verify)
}

var _ proxy.Backend = (*Backend)(nil)

// New returns a backend that runs the tools through r (nil: Exec).
func New(c Config, r Runner) (*Backend, error) {
	if r == nil {
		if _, err := exec.LookPath("iptables-restore"); err != nil {
			return nil, fmt.Errorf("iptables-restore not found (apt-get install iptables): %w", err)
		}
		return &Backend{c: c, run: Exec{}, nft: nfTablesTools(), clear: conntrack.Clear}, nil
	}
	return &Backend{c: c, run: r}, nil
}

// Name is the --proxy-mode value of this backend.
func (b *Backend) Name() string { return "iptables" }

// Sync writes the changed chains (all of them when full).
func (b *Backend) Sync(st *proxy.State, changed []proxy.Key, full bool) error {
	prev := b.cur
	var ex *Existing
	if full || prev == nil {
		prev = nil
		save, err := b.run.Save()
		if err != nil {
			return err
		}
		e := ParseExisting(save)
		ex = &e
	}
	p := MakePlan(b.c, prev, st, changed, ex)
	if p.Restore != "" {
		if err := b.run.Restore(p.Restore); err != nil {
			b.cur = nil
			return err
		}
	}
	b.clearStaleUDP(b.cur, p.Next, changed, full)
	b.cur = p.Next
	if p.Restore != "" || b.gen == 0 {
		b.written()
	}
	if full {
		b.localnetOn = false // set again: the bridge may have been recreated
	}
	b.localnet()
	return nil
}

// clearStaleUDP clears the UDP flows the sync from old to cur left wrong (of
// the changed keys; of all on a full sync).
func (b *Backend) clearStaleUDP(old, cur *Written, changed []proxy.Key, full bool) {
	if b.clear == nil {
		return
	}
	udp := func(w *Written, k proxy.Key) *conntrack.UDP {
		if w == nil || w.Frags[k] == nil {
			return nil
		}
		return w.Frags[k].UDP
	}
	var filters []netlink.CustomConntrackFilter
	if !full {
		for _, k := range changed {
			filters = append(filters, conntrack.Filters(udp(old, k), udp(cur, k))...)
		}
	} else {
		for k := range cur.Frags {
			filters = append(filters, conntrack.Filters(udp(old, k), udp(cur, k))...)
		}
		if old != nil {
			for k := range old.Frags {
				if cur.Frags[k] == nil { // gone: not seen above
					filters = append(filters, conntrack.Filters(udp(old, k), nil)...)
				}
			}
		}
	}
	if err := b.clear(filters); err != nil {
		b.log("clearing stale UDP conntrack entries failed", err)
	}
}

// Rules prints what was last written, as iptables-save would.
func (b *Backend) Rules() string {
	if b.cur == nil {
		return ""
	}
	return Build(b.c, b.cur.Frags).Save()
}

// Cleanup removes every KUBE-* chain but the kubelet's and the jumps to them
// (svcnet agent --cleanup, a switch to another mode), as kube-proxy --cleanup.
func (b *Backend) Cleanup() error {
	b.cur = nil
	b.localnetOff()
	save, err := b.run.Save()
	if err != nil {
		return err
	}
	if script := kubeproxy.RestoreScript(save); script != "" {
		return b.run.Restore(script)
	}
	return nil
}

func (b *Backend) log(msg string, err error) {
	if b.Log != nil {
		b.Log(msg, err)
	}
}

func (b *Backend) localnet() {
	if b.LocalnetLink == "" || b.localnetOn {
		return
	}
	if err := proxy.SetRouteLocalnet(b.LocalnetLink, true); err == nil {
		b.localnetOn = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		b.log("iptables: turning on route_localnet on the pod bridge failed", err)
	}
}

func (b *Backend) localnetOff() {
	b.localnetOn = false
	if b.LocalnetLink == "" {
		return
	}
	if err := proxy.SetRouteLocalnet(b.LocalnetLink, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.log("iptables: turning off route_localnet on the pod bridge failed", err)
	}
}
