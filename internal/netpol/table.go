package netpol

import (
	"fmt"
	"os"
	"sort"

	"github.com/google/nftables"
)

// Backend programs Rules; Table is the kernel one, fakes record them.
type Backend interface {
	// Sync makes the node enforce r, writing only what changed since the last Sync.
	Sync(r Rules) error
}

// Plan is what one sync writes: the whole table (Full), or element changes.
type Plan struct {
	Full        bool
	Add, Delete []element
}

// plan compares what was written (nil: nothing yet, or unknown after an
// error) with what r needs. No I/O.
func plan(written map[element]bool, r Rules) (Plan, map[element]bool) {
	next := map[element]bool{}
	for _, e := range elements(r) {
		next[e] = true
	}
	if written == nil {
		p := Plan{Full: true}
		for e := range next {
			p.Add = append(p.Add, e)
		}
		p.sort()
		return p, next
	}
	var p Plan
	for e := range next {
		if !written[e] {
			p.Add = append(p.Add, e)
		}
	}
	for e := range written {
		if !next[e] {
			p.Delete = append(p.Delete, e)
		}
	}
	p.sort()
	return p, next
}

func (p *Plan) sort() {
	less := func(s []element) func(i, j int) bool {
		return func(i, j int) bool {
			if s[i].set != s[j].set {
				return s[i].set < s[j].set
			}
			return s[i].key < s[j].key
		}
	}
	sort.Slice(p.Add, less(p.Add))
	sort.Slice(p.Delete, less(p.Delete))
}

// Table is the kernel backend: table ip svcnet-policy, written over netlink.
// The first Sync (and the one after a failure) replaces the table in one
// transaction; later ones add and delete set elements only, which the kernel
// applies without revalidating any rule.
type Table struct {
	written map[element]bool
}

var _ Backend = (*Table)(nil)

// NewTable returns the kernel backend and turns on bridge-nf-call-iptables,
// so pods on one bridge pass the forward hook (the bridge is L2 otherwise).
func NewTable() (*Table, error) {
	const brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat(brnf); err == nil {
		if err := os.WriteFile(brnf, []byte("1"), 0o644); err != nil {
			return nil, fmt.Errorf("%s: %w", brnf, err)
		}
	} else {
		return nil, fmt.Errorf("br_netfilter is not available (%s): policies could not see traffic between pods of this node", brnf)
	}
	return &Table{}, nil
}

// Sync implements Backend.
func (t *Table) Sync(r Rules) error {
	p, next := plan(t.written, r)
	t.written = nil // unknown until the kernel acknowledged
	if err := apply(p); err != nil {
		return err
	}
	t.written = next
	return nil
}

// apply sends p in one transaction.
func apply(p Plan) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}
	sets := map[string]*nftables.Set{}
	for _, name := range setOrder {
		sets[name] = setDef(table, name)
	}
	if p.Full {
		if old, err := c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4); err == nil && old != nil {
			c.DelTable(table)
		}
		c.AddTable(table)
		for _, name := range setOrder {
			if err := c.AddSet(sets[name], nil); err != nil {
				return fmt.Errorf("set %s: %w", name, err)
			}
		}
		accept := nftables.ChainPolicyAccept
		made := map[string]*nftables.Chain{}
		for _, name := range chains {
			ch := &nftables.Chain{Name: name, Table: table}
			if name == "forward" {
				ch.Type, ch.Hooknum, ch.Priority, ch.Policy = nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter, &accept
			}
			made[name] = c.AddChain(ch)
		}
		for _, r := range ruleset {
			c.AddRule(&nftables.Rule{Table: table, Chain: made[r.chain], Exprs: r.exprs(sets)})
		}
	}
	for _, batch := range []struct {
		els []element
		op  func(*nftables.Set, []nftables.SetElement) error
	}{{p.Delete, c.SetDeleteElements}, {p.Add, c.SetAddElements}} {
		byset := map[string][]nftables.SetElement{}
		for _, e := range batch.els {
			el := nftables.SetElement{Key: []byte(e.key)}
			if e.end != "" {
				el.KeyEnd = []byte(e.end)
			}
			byset[e.set] = append(byset[e.set], el)
		}
		for _, name := range setOrder {
			for els := byset[name]; len(els) > 0; { // bounded messages for large sets
				n := min(len(els), 1000)
				if err := batch.op(sets[name], els[:n]); err != nil {
					return fmt.Errorf("set %s: %w", name, err)
				}
				els = els[n:]
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables %s: %w", TableName, err)
	}
	return nil
}

// Delete removes the table (svcnet agent --cleanup, or policy enforcement off).
func Delete() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if old, err := c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4); err != nil || old == nil {
		return nil
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName})
	return c.Flush()
}
