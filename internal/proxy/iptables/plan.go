package iptables

import (
	"maps"
	"slices"
	"strings"

	"github.com/svcnet/svcnet/internal/proxy"
)

// Written is what the backend last wrote: the fragments and the text of each
// shared chain. Plan never changes it; the backend keeps the returned one
// once iptables-restore succeeded.
type Written struct {
	Frags map[proxy.Key]*Fragment
	Base  map[string]map[string][]string // table -> shared chain -> rule lines
}

// Plan is one sync's iptables-restore --noflush input and the state it leads to.
type Plan struct {
	Restore string   // empty: nothing to write
	Chains  []string // table/chain written (declared, hence flushed, and refilled)
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
// rules of st: the own chains of the changed service ports (declared, so
// flushed, then refilled; deleted when they go) and the shared chains whose
// rules differ. A full sync (prev nil) writes everything, deletes the service
// chains of ex that are not ours any more, and inserts the missing jumps.
func MakePlan(c Config, prev *Written, st *proxy.State, changed []proxy.Key, ex *Existing) Plan {
	full := prev == nil
	next := &Written{Base: map[string]map[string][]string{}}
	if full {
		next.Frags = ComputeAll(c, st)
		prev = &Written{Frags: map[proxy.Key]*Fragment{}, Base: map[string]map[string][]string{}}
	} else {
		next.Frags = maps.Clone(prev.Frags)
		for _, k := range changed {
			if sp, ok := st.Services[k]; ok {
				next.Frags[k] = Compute(c, sp, st.Endpoints[k])
			} else {
				delete(next.Frags, k)
			}
		}
	}
	rs := Build(c, next.Frags)
	type tableOut struct{ decl, rules, tail []string }
	out := map[string]*tableOut{"filter": {}, "nat": {}}
	var plan Plan
	write := func(t, ch string, lines []string) {
		o := out[t]
		o.decl = append(o.decl, ":"+ch+" - [0:0]")
		o.rules = append(o.rules, lines...)
		plan.Chains = append(plan.Chains, t+"/"+ch)
	}
	lines := func(t, ch string) []string {
		rules := rs[t][ch]
		l := make([]string, len(rules))
		for i, r := range rules {
			l[i] = r.text(ch, false)
		}
		return l
	}
	for _, t := range Tables {
		next.Base[t] = map[string][]string{}
		for _, ch := range baseChains[t] {
			l := lines(t, ch)
			next.Base[t][ch] = l
			if old, ok := prev.Base[t][ch]; full || !ok || !slices.Equal(old, l) {
				write(t, ch, l)
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
				if old == nil || !sameRules(old.NAT[ch], cur.NAT[ch]) || !slices.Contains(old.Own, ch) {
					write("nat", ch, lines("nat", ch))
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
	if full && ex != nil {
		for _, ch := range ex.Chains["nat"] {
			if IsServiceChain(ch) && rs["nat"][ch] == nil && !slices.Contains(gone, ch) {
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
		if len(o.decl)+len(o.tail) == 0 {
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

func sameRules(a, b []Rule) bool { return slices.Equal(a, b) }
