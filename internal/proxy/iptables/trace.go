package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Packet is the first packet of a connection, for Trace.
type Packet struct {
	Src, Dst netip.Addr
	Proto    string // tcp, udp
	Port     uint16 // destination port
	FromNode bool   // sent by a process of the node (nat OUTPUT), else arriving (nat PREROUTING)
	// Local says whether an address is the node's own (addrtype LOCAL).
	Local func(netip.Addr) bool
}

// Step is one rule a packet matched, with its table and chain.
type Step struct {
	Table, Chain, Rule string
}

// Path is one way the packet can go, with its chance: statistic rules split
// a trace into one path per endpoint.
type Path struct {
	Prob       float64
	Steps      []Step
	Verdict    string         // DNAT, ACCEPT (untranslated), DROP or REJECT
	To         netip.AddrPort // with DNAT: the endpoint
	Masquerade bool
	Notes      []string // what the trace assumed (affinity)
}

type rule struct {
	text   string
	tokens []string
}

// Dump is a parsed iptables-save output.
type Dump map[string]map[string][]rule // table -> chain -> rules

// ParseDump reads iptables-save output (the kernel's or Ruleset.Save's).
func ParseDump(save string) (Dump, error) {
	d := Dump{}
	table := ""
	for n, line := range strings.Split(save, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			d[table] = map[string][]rule{}
		case strings.HasPrefix(line, ":") && table != "":
			name, _, _ := strings.Cut(line[1:], " ")
			if _, ok := d[table][name]; !ok {
				d[table][name] = nil
			}
		case strings.HasPrefix(line, "-A ") && table != "":
			toks, err := tokenize(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			d[table][toks[1]] = append(d[table][toks[1]], rule{text: line, tokens: toks[2:]})
		}
	}
	return d, nil
}

// tokenize splits a rule line like a shell: double quotes group, backslash escapes.
func tokenize(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, has := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			has = true
		case c == '"':
			in, has = !in, true
		case c == ' ' && !in:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteByte(c)
			has = true
		}
	}
	if in {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if has {
		out = append(out, cur.String())
	}
	return out, nil
}

// walk state: the packet as the rules see it.
type walk struct {
	p     Packet
	mark  uint32
	dnat  netip.AddrPort
	prob  float64
	steps []Step
	notes []string
}

func (w walk) with(table, chain, text string) walk {
	w.steps = append(append([]Step(nil), w.steps...), Step{table, chain, text})
	return w
}

// outcome is a walk that ended a chain: verdict "" when it fell off its end or returned.
type outcome struct {
	w       walk
	verdict string
}

const maxDepth = 32

// Trace follows the first packet of a connection through the nat and filter
// tables of a dump: nat PREROUTING or OUTPUT (DNAT), filter INPUT, FORWARD
// or OUTPUT (reject, drop), nat POSTROUTING (masquerade). A statistic match
// splits the trace; an affinity check (recent --rcheck) is taken as a
// client not seen before.
func Trace(d Dump, p Packet) []Path {
	if p.Local == nil {
		p.Local = func(netip.Addr) bool { return false }
	}
	hook := "PREROUTING"
	if p.FromNode {
		hook = "OUTPUT"
	}
	var paths []Path
	for _, o := range d.run("nat", hook, walk{p: p, prob: 1}, 0) {
		w := o.w
		if o.verdict == "DROP" || o.verdict == "REJECT" {
			paths = append(paths, w.path(o.verdict))
			continue
		}
		if w.dnat.IsValid() {
			w.p.Dst, w.p.Port = w.dnat.Addr(), w.dnat.Port()
		}
		filter := "FORWARD"
		switch {
		case p.FromNode:
			filter = "OUTPUT"
		case p.Local(w.p.Dst):
			filter = "INPUT"
		}
		for _, f := range d.run("filter", filter, w, 0) {
			if f.verdict == "DROP" || f.verdict == "REJECT" {
				paths = append(paths, f.w.path(f.verdict))
				continue
			}
			for _, post := range d.run("nat", "POSTROUTING", f.w, 0) {
				path := post.w.path("ACCEPT")
				if post.w.dnat.IsValid() {
					path.Verdict, path.To = "DNAT", post.w.dnat
				}
				path.Masquerade = post.verdict == "MASQUERADE"
				paths = append(paths, path)
			}
		}
	}
	return paths
}

func (w walk) path(verdict string) Path {
	return Path{Prob: w.prob, Steps: w.steps, Verdict: verdict, To: w.dnat, Notes: w.notes}
}

// run walks chain from its first rule.
func (d Dump) run(table, chain string, w walk, depth int) []outcome {
	return d.from(table, chain, 0, w, depth)
}

func (d Dump) from(table, chain string, i int, w walk, depth int) []outcome {
	rules := d[table][chain]
	if depth > maxDepth {
		return []outcome{{w, "DROP"}}
	}
	for ; i < len(rules); i++ {
		r := rules[i]
		ok, prob, note := w.matches(r.tokens)
		if note != "" && !slices.Contains(w.notes, note) {
			w.notes = append(append([]string(nil), w.notes...), note)
		}
		if !ok {
			continue
		}
		if prob < 1 { // statistic: this rule with prob, the rest of the chain otherwise
			rest := w
			rest.prob *= 1 - prob
			taken := w
			taken.prob *= prob
			return append(d.target(table, chain, i, r, taken, depth), d.from(table, chain, i+1, rest, depth)...)
		}
		return d.target(table, chain, i, r, w, depth)
	}
	return []outcome{{w, ""}}
}

// target applies the rule's target to a matching walk and goes on as the
// target says: the next rule, the jumped-to chain, or an end.
func (d Dump) target(table, chain string, i int, r rule, w walk, depth int) []outcome {
	w = w.with(table, chain, r.text)
	tgt, args := "", []string(nil)
	goTo := false
	for k := 0; k < len(r.tokens); k++ {
		if r.tokens[k] == "-j" || r.tokens[k] == "-g" {
			goTo = r.tokens[k] == "-g"
			if k+1 < len(r.tokens) {
				tgt, args = r.tokens[k+1], r.tokens[k+2:]
			}
			break
		}
	}
	next := func(w walk) []outcome { return d.from(table, chain, i+1, w, depth) }
	switch tgt {
	case "":
		return next(w)
	case "RETURN":
		return []outcome{{w, ""}}
	case "ACCEPT", "DROP", "REJECT", "MASQUERADE":
		return []outcome{{w, tgt}}
	case "DNAT":
		if to, err := netip.ParseAddrPort(argOf(args, "--to-destination")); err == nil {
			w.dnat = to
		}
		return []outcome{{w, "DNAT"}}
	case "MARK":
		if v, m, ok := markArg(argOf(args, "--set-xmark")); ok {
			w.mark = (w.mark &^ m) ^ v
		} else if v, err := strconv.ParseUint(argOf(args, "--or-mark"), 0, 32); err == nil {
			w.mark |= uint32(v)
		} else if v, err := strconv.ParseUint(argOf(args, "--xor-mark"), 0, 32); err == nil {
			w.mark ^= uint32(v)
		}
		return next(w)
	}
	if _, ok := d[table][tgt]; !ok {
		return next(w) // LOG, CT and other non-terminal targets
	}
	var out []outcome
	for _, o := range d.run(table, tgt, w, depth+1) {
		if o.verdict != "" || goTo {
			out = append(out, o)
		} else {
			out = append(out, next(o.w)...)
		}
	}
	return out
}

func argOf(args []string, name string) string {
	for k := 0; k+1 < len(args); k++ {
		if args[k] == name {
			return args[k+1]
		}
	}
	return ""
}

func markArg(s string) (v, m uint32, ok bool) {
	a, b, found := strings.Cut(s, "/")
	x, err1 := strconv.ParseUint(a, 0, 32)
	if !found {
		return uint32(x), 0xffffffff, err1 == nil
	}
	y, err2 := strconv.ParseUint(b, 0, 32)
	return uint32(x), uint32(y), err1 == nil && err2 == nil
}

// matches evaluates a rule's matches on the walk: whether they hold, the
// probability of a statistic match (1 without), and a note on an assumption.
func (w walk) matches(t []string) (bool, float64, string) {
	prob, note := 1.0, ""
	not := false
	for k := 0; k < len(t); k++ {
		tok := t[k]
		arg := func() string {
			if k+1 < len(t) {
				k++
				return t[k]
			}
			return ""
		}
		neg := not
		not = false
		res := true
		switch tok {
		case "!":
			not = true
			continue
		case "-j", "-g":
			return true, prob, note
		case "-s":
			res = inPrefix(w.p.Src, arg())
		case "-d":
			res = inPrefix(w.p.Dst, arg())
		case "-p":
			res = strings.EqualFold(arg(), w.p.Proto)
		case "--dport":
			res = arg() == strconv.Itoa(int(w.p.Port))
		case "--comment", "--mode", "--name", "--mask", "--seconds", "--nfacct-name":
			arg()
			continue
		case "-m", "--rsource", "--set", "--reap":
			if tok == "-m" {
				arg()
			}
			continue
		case "--probability":
			p, err := strconv.ParseFloat(arg(), 64)
			if err == nil {
				prob = p
			}
			continue
		case "--rcheck":
			note = "affinity: a client already sent to an endpoint goes to it again (recent --rcheck); traced as a new client"
			res = false
		case "--dst-type":
			res = arg() == "LOCAL" && w.p.Local(w.p.Dst)
		case "--src-type":
			res = arg() == "LOCAL" && (w.p.FromNode || w.p.Local(w.p.Src))
		case "--mark":
			v, m, ok := markArg(arg())
			res = ok && w.mark&m == v
		case "--ctstate":
			res = false
			for _, s := range strings.Split(arg(), ",") {
				if s == "NEW" || (s == "DNAT" && w.dnat.IsValid()) {
					res = true
				}
			}
		default:
			// An unknown match: the trace cannot say; it takes the rule as not matching.
			return false, 1, ""
		}
		if res == neg {
			return false, 1, note
		}
	}
	return true, prob, note
}

func inPrefix(a netip.Addr, s string) bool {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Contains(a)
	}
	if b, err := netip.ParseAddr(s); err == nil {
		return a == b
	}
	return false
}
