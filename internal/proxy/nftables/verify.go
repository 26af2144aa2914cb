package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/svcnet/svcnet/internal/proxy"
)

var _ proxy.Verifier = (*Backend)(nil)

// Verify reports whether the table still holds what the syncs wrote (the
// proxy's periodic drift check). The kernel's ruleset generation counts every
// committed nftables transaction in the namespace; while it is the one after
// our last write nothing changed and the check costs one netlink round trip.
// Otherwise someone else wrote (another table, iptables-nft, or `nft flush
// table ip svcnet` by hand) and the table is compared with what we wrote:
// the chains, the rules in each chain and the elements in each set, by count.
// An edit that keeps every count (an element replaced by another) is left to
// the proxy's hourly full sync.
func (b *Backend) Verify() error {
	if b.current == nil {
		return errors.New("nothing written yet")
	}
	gen, err := Generation()
	if err == nil && gen == b.gen {
		return nil
	}
	if err := b.compare(); err != nil {
		return err
	}
	if gen != 0 {
		b.gen = gen
	}
	return nil
}

// written records the generation of our last transaction (0: unknown, so the
// next Verify compares).
func (b *Backend) written() {
	b.gen, _ = Generation()
}

// Generation asks the kernel for the nftables ruleset generation of this
// network namespace (NFT_MSG_GETGEN): it moves with every committed
// transaction, of any table, and of the iptables-nft tools too.
func Generation() (uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, // nfgenmsg
	})
	if err != nil {
		return 0, fmt.Errorf("nftables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, errors.New("nftables generation: no NFTA_GEN_ID in the reply")
}

// expected is what the table should hold after the syncs so far: rules per
// chain and elements per set (-1: not counted, the affinity sets the kernel
// fills itself).
func (b *Backend) expected() (rules, elems map[string]int) {
	rules, elems = map[string]int{}, map[string]int{}
	for _, ch := range baseChains(b.c, b.table) {
		rules[ch.Name] = 0
	}
	for name, rs := range baseRules(b.c, b.sets) {
		rules[name] = len(rs)
	}
	for _, name := range b.slotMaps() {
		if ip, _, _ := slotsOf(name); ip {
			rules["service-picks"]++
		} else {
			rules["nodeport-picks"]++
		}
	}
	for _, f := range b.current {
		for _, ch := range f.Chains {
			rules[ch.Name] = len(ch.Rules)
		}
		for _, a := range f.Affinity {
			elems[a.Name] = -1
		}
	}
	for name := range b.sets {
		if _, ok := elems[name]; !ok {
			elems[name] = b.count[name]
		}
	}
	if _, ok := b.sets[SetLocal]; ok {
		elems[SetLocal] = len(localElements(b.c))
	}
	return rules, elems
}

// compare lists the table's chains, rules and elements and names what
// differs from expected (nil: nothing).
func (b *Backend) compare() error {
	lister, err := nftables.New()
	if err != nil {
		return err
	}
	defer lister.CloseLasting()
	wantRules, wantElems := b.expected()
	var diffs []string
	chains, err := lister.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("nftables list chains: %w", err)
	}
	have := map[string]bool{}
	for _, ch := range chains {
		if ch.Table.Name == Table {
			have[ch.Name] = true
			if _, ok := wantRules[ch.Name]; !ok {
				diffs = append(diffs, "chain "+ch.Name+" not ours")
			}
		}
	}
	for name, n := range wantRules {
		if !have[name] {
			diffs = append(diffs, "chain "+name+" missing")
			continue
		}
		rs, err := lister.GetRules(b.table, b.chain(name))
		if err != nil {
			return fmt.Errorf("nftables list rules of %s: %w", name, err)
		}
		if len(rs) != n {
			diffs = append(diffs, fmt.Sprintf("chain %s: %d rules, want %d", name, len(rs), n))
		}
	}
	sets, err := lister.GetSets(b.table)
	if err != nil {
		return fmt.Errorf("nftables list sets: %w", err)
	}
	seen := map[string]bool{}
	for _, s := range sets {
		seen[s.Name] = true
		n, ok := wantElems[s.Name]
		switch {
		case !ok:
			diffs = append(diffs, "set "+s.Name+" not ours")
			continue
		case n < 0:
			continue
		}
		els, err := lister.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("nftables list elements of %s: %w", s.Name, err)
		}
		if len(els) != n {
			diffs = append(diffs, fmt.Sprintf("set %s: %d elements, want %d", s.Name, len(els), n))
		}
	}
	for name := range wantElems {
		if !seen[name] {
			diffs = append(diffs, "set "+name+" missing")
		}
	}
	return proxy.Drift(diffs)
}
