package iptables

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/nftables"
)

var _ proxy.Verifier = (*Backend)(nil)

// Verify reports whether the kernel still holds the chains the syncs wrote
// (the proxy's periodic drift check). With the nf_tables flavour of the
// tools, an unchanged nftables ruleset generation since our last restore
// proves it for one netlink round trip; otherwise it reads iptables-save and
// compares, by count, the rules of each of our chains, and checks the jumps
// into them are there (chains flushed, deleted or edited by hand).
func (b *Backend) Verify() error {
	if b.cur == nil {
		return errors.New("nothing written yet")
	}
	var gen uint32
	if b.nft {
		if g, err := nftables.Generation(); err == nil {
			if g == b.gen {
				return nil
			}
			gen = g
		}
	}
	save, err := b.run.Save()
	if err != nil {
		return err
	}
	if err := Drift(Build(b.c, b.cur.Frags), save); err != nil {
		return err
	}
	b.gen = gen
	return nil
}

// written records the nftables generation after our last restore (0:
// unknown, so the next Verify reads iptables-save).
func (b *Backend) written() {
	b.gen = 0
	if b.nft {
		b.gen, _ = nftables.Generation()
	}
}

// nfTablesTools says whether the iptables tools on PATH are the nf_tables
// flavour (their writes move the nftables generation).
func nfTablesTools() bool {
	out, err := exec.Command("iptables", "--version").Output()
	return err == nil && strings.Contains(string(out), "nf_tables")
}

// Drift compares the chains of rs with what iptables-save prints: every chain
// of ours present with as many rules, every jump into them present. Other
// chains (the kubelet's, other tools') are not looked at. nil: no drift.
func Drift(rs Ruleset, save string) error {
	ex := ParseExisting(save)
	declared := map[string]bool{}
	for t, chains := range ex.Chains {
		for _, ch := range chains {
			declared[t+"/"+ch] = true
		}
	}
	rules, table := map[string]int{}, "" // table/chain -> rules (identical lines too)
	for _, l := range strings.Split(save, "\n") {
		if t, ok := strings.CutPrefix(l, "*"); ok {
			table = strings.TrimSpace(t)
		} else if rest, ok := strings.CutPrefix(l, "-A "); ok {
			ch, _, _ := strings.Cut(rest, " ")
			rules[table+"/"+ch]++
		}
	}
	var diffs []string
	for _, t := range Tables {
		for ch, want := range rs[t] {
			switch n := rules[t+"/"+ch]; {
			case !declared[t+"/"+ch]:
				diffs = append(diffs, t+"/"+ch+" missing")
			case n != len(want):
				diffs = append(diffs, fmt.Sprintf("%s/%s: %d rules, want %d", t, ch, n, len(want)))
			}
		}
	}
	for _, j := range Jumps {
		if !ex.Rules[j.Table+" "+j.Rule.text(j.From, true)] {
			diffs = append(diffs, fmt.Sprintf("%s/%s: the jump to %s missing", j.Table, j.From, j.Rule.Jump))
		}
	}
	return proxy.Drift(diffs)
}
