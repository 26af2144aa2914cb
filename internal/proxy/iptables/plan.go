package iptables

import (
	"maps"
	"slices"
	"strings"

	"github.com/svcnet/svcnet/internal/proxy"
)

// Written is what the backend last wrote: the fragment of each service port.
// Plan never changes it; the backend keeps the returned one once
// iptables-restore succeeded.
type Written struct {
	Frags map[proxy.Key]*Fragment
}

// Plan is one sync's iptables-restore --noflush input and the state it leads to.
type Plan struct {
	Restore string   // empty: nothing to write
	Chains  []string // table/chain written (declared, hence flushed, and refilled)
	Edited  []string // table/shared chain whose rules of a changed service port were deleted (-D) and inserted (-I)
	Deleted []string // table/chain deleted
	Next    *Written
}

// Existing is what a full sync finds in the kernel (from iptables-save):
// the chains of each table and the rule lines of the built-in chains.
type Existing struct {
	Chains map[string][]string // table -> chain names
	Rules  map[string]bool     // "table -A CHAIN ..." lines present
}

// ParseExisting reads iptables-save output into Existing.
func ParseExisting(save string) Existing {
	e := Existing{Chains: map[string][]string{}, Rules: map[string]bool{}}
	table := ""
	for _, line := range strings.Split(save, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			e.Chains[table] = append(e.Chains[table], name)
		case strings.HasPrefix(line, "-A "):
			e.Rules[table+" "+line] = true
		}
	}
	return e
}

// MakePlan computes the restore input that takes the kernel from prev to the
// rules of st. A partial sync writes the own chains of the changed service
// ports (declared, so flushed, then refilled; deleted when they go) and edits
// the shared chains in place: the old rules of a changed port are deleted by
// their text and the new ones inserted first, so the thousands of rules of
// KUBE-SERVICES are neither rendered nor written again (the rules of different
// ports never match the same packet, and the rules that must stay last, such
// as the jump to KUBE-NODEPORTS, stay last). A full sync (prev nil) writes
// everything, deletes the service chains of ex that are not ours any more,
// and inserts the missing jumps.
func MakePlan(c Config, prev *Written, st *proxy.State, changed []proxy.Key, ex *Existing) Plan {
	full := prev == nil
	next := &Written{}
	if full {
		next.Frags = ComputeAll(c, st)
		prev = &Written{Frags: map[proxy.Key]*Fragment{}}
	} else {
		changed = uniqueKeys(changed)
		next.Frags = maps.Clone(prev.Frags)
		for _, k := range changed {
			if sp, ok := st.Services[k]; ok {
				next.Frags[k] = Compute(c, sp, st.Endpoints[k])
			} else {
				delete(next.Frags, k)
			}
		}
	}
	type tableOut struct{ decl, rules, tail []string }
	out := map[string]*tableOut{"filter": {}, "nat": {}}
	var plan Plan
	write := func(t, ch string, rules []Rule) {
		o := out[t]
		o.decl = append(o.decl, ":"+ch+" - [0:0]")
		for _, r := range rules {
			o.rules = append(o.rules, r.text(ch, false))
		}
		plan.Chains = append(plan.Chains, t+"/"+ch)
	}
	if full {
		rs := Build(c, next.Frags)
		for _, t := range Tables {
			for _, ch := range baseChains[t] {
				write(t, ch, rs[t][ch])
			}
		}
	}
	// Own chains (nat): those of changed fragments, or all on a full sync.
	keys := changed
	if full {
		keys = sortedKeys(next.Frags)
	}
	have := map[string]bool{}
	for _, k := range keys {
		if f := next.Frags[k]; f != nil {
			for _, ch := range f.Own {
				have[ch] = true
			}
		}
	}
	var gone []string
	for _, k := range keys {
		old, cur := prev.Frags[k], next.Frags[k]
		if cur != nil {
			for _, ch := range cur.Own {
				if old == nil || !slices.Equal(old.NAT[ch], cur.NAT[ch]) || !slices.Contains(old.Own, ch) {
					write("nat", ch, cur.NAT[ch])
				}
			}
		}
		if old != nil {
			for _, ch := range old.Own {
				if !have[ch] {
					gone = append(gone, ch)
				}
			}
		}
	}
	if !full {
		for _, k := range keys {
			old, cur := prev.Frags[k], next.Frags[k]
			for _, t := range Tables {
				for _, ch := range baseChains[t] {
					var a, b []Rule
					if old != nil {
						a = old.shared(t, ch)
					}
					if cur != nil {
						b = cur.shared(t, ch)
					}
					if slices.Equal(a, b) {
						continue
					}
					out[t].rules = edits(out[t].rules, ch, a, b)
					if e := t + "/" + ch; !slices.Contains(plan.Edited, e) {
						plan.Edited = append(plan.Edited, e)
					}
				}
			}
		}
	}
	if full && ex != nil {
		for _, ch := range ex.Chains["nat"] {
			if IsServiceChain(ch) && !have[ch] && !slices.Contains(gone, ch) {
				gone = append(gone, ch)
			}
		}
	}
	slices.Sort(gone)
	for _, ch := range gone {
		o := out["nat"]
		o.decl = append(o.decl, ":"+ch+" - [0:0]")
		o.tail = append(o.tail, "-X "+ch)
		plan.Deleted = append(plan.Deleted, "nat/"+ch)
	}
	if full {
		for _, j := range Jumps {
			if ex == nil || !ex.Rules[j.Table+" "+j.Rule.text(j.From, true)] {
				o := out[j.Table]
				o.tail = append(o.tail, "-I "+j.From+" 1"+strings.TrimPrefix(j.Rule.text(j.From, false), "-A "+j.From))
			}
		}
	}
	var b strings.Builder
	for _, t := range Tables {
		o := out[t]
		if len(o.decl)+len(o.rules)+len(o.tail) == 0 {
			continue
		}
		b.WriteString("*" + t + "\n")
		for _, group := range [][]string{o.decl, o.rules, o.tail} {
			for _, l := range group {
				b.WriteString(l + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	plan.Restore, plan.Next = b.String(), next
	return plan
}

// shared returns the fragment's rules in the shared chain ch of table t.
func (f *Fragment) shared(t, ch string) []Rule {
	if t == "nat" {
		return f.NAT[ch]
	}
	return f.Filter[ch]
}

// edits appends the lines that replace rules a by b in the shared chain ch:
// each old rule deleted by its text, the new ones inserted first in order.
func edits(lines []string, ch string, a, b []Rule) []string {
	for _, r := range a {
		lines = append(lines, "-D "+ch+strings.TrimPrefix(r.text(ch, false), "-A "+ch))
	}
	for i := len(b) - 1; i >= 0; i-- {
		lines = append(lines, "-I "+ch+" 1"+strings.TrimPrefix(b[i].text(ch, false), "-A "+ch))
	}
	return lines
}

func uniqueKeys(keys []proxy.Key) []proxy.Key {
	seen := make(map[proxy.Key]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
