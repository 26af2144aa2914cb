package nftables

import (
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/conntrack"
)

// Backend programs the table over netlink. It keeps what it last wrote in
// memory and never lists the kernel's state on the hot path: a partial sync
// recomputes only the changed service ports and sends their difference in one
// transaction; a full sync empties the table and writes it again, atomically.
type Backend struct {
	c   Config
	Log func(msg string, err error) // warnings that do not fail a sync
	// LocalnetLink is the pod bridge: route_localnet is on there while the
	// table (with its guard on 127.0.0.0/8) is, so pods reach a Service whose
	// endpoint is on loopback (the API server of svcnet up). Empty: left alone.
	LocalnetLink string
	localnetOn   bool
	conn         *nftables.Conn
	sock         *batchSocket
	table        *nftables.Table
	current      map[proxy.Key]*Fragment
	// Elements can be shared (a cluster IP by every port of a Service), so the
	// kernel holds an element while some fragment wants it.
	refs  map[string]int           // element with its data (full) -> fragments that want it
	owner map[string]string        // element key (id) -> the full element the kernel holds
	count map[string]int           // elements in the kernel per set or map
	sets  map[string]*nftables.Set // sets and maps in the kernel (or being created)
	gen   uint32                   // the ruleset generation after our last transaction (Verify)
}

var _ proxy.Backend = (*Backend)(nil)

// New opens a netlink connection for the backend.
func New(c Config) (*Backend, error) {
	sock, err := newBatchSocket()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	conn, err := nftables.New(nftables.WithTestDial(sock.roundTrip))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &Backend{c: c, conn: conn, sock: sock, table: &nftables.Table{Name: Table, Family: nftables.TableFamilyIPv4}}, nil
}

func (b *Backend) log(msg string, err error) {
	if b.Log != nil {
		b.Log(msg, err)
	}
}

// flush sends the pending batch; the kernel's own error wins over the library's.
func (b *Backend) flush() error {
	err := b.conn.Flush()
	if kerr := b.sock.lastError(); kerr != nil {
		return kerr
	}
	return err
}

// Name is the --proxy-mode value of this backend.
func (b *Backend) Name() string { return "nftables" }

// Rules renders the rules computed for the state (for explain and tests).
func (b *Backend) Rules() string { return Render(b.c, b.current) }

var (
	ipKey    = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	portKey  = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	ipSlot   = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeMark)
	portSlot = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeMark)
	addrPort = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	ipPair   = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr)
)

// setDef describes a named set or map of table t (Render prints its type).
func setDef(t *nftables.Table, name string) *nftables.Set {
	s := &nftables.Set{Table: t, Name: name, Concatenation: true}
	if ip, _, ok := slotsOf(name); ok {
		s.KeyType, s.IsMap, s.DataType = portSlot, true, addrPort
		if ip {
			s.KeyType = ipSlot
		}
		return s
	}
	switch name {
	case MapServiceIPs:
		s.KeyType, s.IsMap, s.DataType = ipKey, true, nftables.TypeVerdict
	case MapServiceNodePorts:
		s.KeyType, s.IsMap, s.DataType = portKey, true, nftables.TypeVerdict
	case SetMasqFromOutside, SetMasqIPs, SetRejectIPs, SetDropIPs, SetLocal:
		s.KeyType = ipKey
	case SetClusterIPs:
		s.KeyType, s.Concatenation = nftables.TypeIPAddr, false
	case SetHairpin:
		s.KeyType = ipPair
	default: // the node port sets
		s.KeyType = portKey
	}
	return s
}

func affinityNFT(t *nftables.Table, a AffinitySet) *nftables.Set {
	return &nftables.Set{Table: t, Name: a.Name, KeyType: nftables.TypeIPAddr, HasTimeout: true, Dynamic: true,
		Timeout: time.Duration(a.Timeout) * time.Second}
}

func (e element) nft() nftables.SetElement {
	if e.jump != "" {
		return nftables.SetElement{Key: e.key, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: e.jump}}
	}
	return nftables.SetElement{Key: e.key, Val: e.val}
}

func (b *Backend) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: b.table}
}

func (b *Backend) addRules(ch *nftables.Chain, rules []Rule) {
	for _, r := range rules {
		b.conn.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: ruleExprs(r, b.sets), UserData: comment(r.Comment)})
	}
}

func (b *Backend) addSet(s *nftables.Set) error {
	if err := b.conn.AddSet(s, nil); err != nil {
		return fmt.Errorf("set %s: %w", s.Name, err)
	}
	b.sets[s.Name] = s
	return nil
}

// Sync writes the rules for st: everything when full (or on the first call),
// otherwise only the service ports in changed.
func (b *Backend) Sync(st *proxy.State, changed []proxy.Key, full bool) error {
	var err error
	if full || b.current == nil {
		b.localnetOn = false // written again: a full sync also repairs drift
		err = b.fullSync(st)
	} else {
		err = b.partialSync(st, changed)
	}
	if err == nil {
		b.localnetOnce()
	}
	return err
}

func (b *Backend) fullSync(st *proxy.State) error {
	b.current = nil
	frags := ComputeAll(b.c, st)
	if err := b.clearTable(); err != nil {
		return err
	}
	b.refs, b.owner, b.count, b.sets = map[string]int{}, map[string]string{}, map[string]int{}, map[string]*nftables.Set{}
	for _, ch := range baseChains(b.c, b.table) {
		b.conn.AddChain(ch)
	}
	for _, name := range staticSets {
		if err := b.addSet(setDef(b.table, name)); err != nil {
			return err
		}
	}
	if local := localElements(b.c); len(local) > 0 {
		if err := b.addSet(setDef(b.table, SetLocal)); err != nil {
			return err
		}
		els := make([]nftables.SetElement, len(local))
		for i, e := range local {
			els[i] = e.nft()
		}
		if err := b.elements(b.sets[SetLocal], els, true); err != nil {
			return err
		}
	}
	for name, rules := range baseRules(b.c, b.sets) {
		for _, r := range rules {
			b.conn.AddRule(&nftables.Rule{Table: b.table, Chain: b.chain(name), Exprs: r})
		}
	}
	keys := make([]proxy.Key, 0, len(frags))
	for k := range frags {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	changes := make([]fragChange, len(keys))
	for i, k := range keys {
		changes[i] = fragChange{cur: frags[k]}
	}
	if err := b.write(changes); err != nil {
		return err
	}
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables full sync: %w", err)
	}
	b.current = frags
	b.written()
	return nil
}

// fragChange is one service port going from old to cur (nil: absent).
type fragChange struct{ old, cur *Fragment }

func (b *Backend) partialSync(st *proxy.State, changed []proxy.Key) error {
	var changes []fragChange
	for _, k := range changed {
		var cur *Fragment
		if sp, ok := st.Services[k]; ok {
			cur = Compute(b.c, sp, st.Endpoints[k])
		}
		if old := b.current[k]; !reflect.DeepEqual(old, cur) {
			changes = append(changes, fragChange{old, cur})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if err := b.write(changes); err != nil {
		return err
	}
	if err := b.flush(); err != nil {
		// The counts no longer match the kernel: the next sync is a full one.
		b.current = nil
		return fmt.Errorf("nftables partial sync: %w", err)
	}
	b.written()
	var filters []netlink.CustomConntrackFilter
	for _, c := range changes {
		filters = append(filters, conntrack.Filters(udpOf(c.old), udpOf(c.cur))...)
	}
	if err := conntrack.Clear(filters); err != nil {
		b.log("clearing stale UDP conntrack entries failed", err)
	}
	for _, c := range changes {
		if c.cur == nil {
			delete(b.current, c.old.Key)
		} else {
			b.current[c.cur.Key] = c.cur
		}
	}
	return nil
}

// write queues, in the pending batch, what the changes need: chains and
// affinity sets of new fragments, the element differences (through the
// reference counts), slot maps and their rules as the endpoint counts in use
// change, and the removal of what is no longer wanted.
func (b *Backend) write(changes []fragChange) error {
	// Chains and affinity sets first: elements and rules refer to them.
	var delChains []string
	var delSets []*nftables.Set
	for _, c := range changes {
		oldChains, oldSets := map[string]Chain{}, map[string]bool{}
		if c.old != nil {
			for _, ch := range c.old.Chains {
				oldChains[ch.Name] = ch
			}
			for _, a := range c.old.Affinity {
				oldSets[a.Name] = true
			}
		}
		newChains, newSets := map[string]bool{}, map[string]bool{}
		if c.cur != nil {
			for _, a := range c.cur.Affinity {
				newSets[a.Name] = true
				if !hasAffinity(c.old, a) {
					if err := b.addSet(affinityNFT(b.table, a)); err != nil {
						return err
					}
				}
			}
			for _, ch := range c.cur.Chains {
				newChains[ch.Name] = true
				if _, ok := oldChains[ch.Name]; !ok {
					b.conn.AddChain(b.chain(ch.Name))
				}
			}
		}
		for name := range oldChains {
			if !newChains[name] {
				delChains = append(delChains, name)
			}
		}
		for name := range oldSets {
			if !newSets[name] {
				delSets = append(delSets, b.sets[name])
			}
		}
	}

	// Elements: reference counts decide what the kernel gains and loses.
	slotsBefore := b.slotMaps()
	var gone, come []element
	for _, c := range changes {
		g, n := diffElements(c.old, c.cur)
		gone, come = append(gone, g...), append(come, n...)
	}
	dels, adds := map[string][]nftables.SetElement{}, map[string][]nftables.SetElement{}
	for _, e := range gone { // all deletions first: a key whose data changes goes, then comes back
		f := e.full()
		if b.refs[f]--; b.refs[f] > 0 {
			continue
		}
		delete(b.refs, f)
		if b.owner[e.id()] == f {
			delete(b.owner, e.id())
			b.count[e.set]--
			dels[e.set] = append(dels[e.set], e.nft())
		}
	}
	for _, e := range come {
		f := e.full()
		if b.refs[f]++; b.refs[f] > 1 {
			continue
		}
		switch held, ok := b.owner[e.id()]; {
		case ok && held != f: // (the loser is written by the next full sync once the winner goes)
			b.log("nftables: two Services want the same key; keeping the first", fmt.Errorf("%s: %s", e.set, e.text()))
		case !ok:
			b.owner[e.id()] = f
			b.count[e.set]++
			adds[e.set] = append(adds[e.set], e.nft())
		}
	}
	for name, els := range dels {
		if err := b.elements(b.sets[name], els, false); err != nil {
			return err
		}
	}
	slotsAfter := b.slotMaps()
	for _, name := range slotsAfter {
		if b.sets[name] == nil {
			if err := b.addSet(setDef(b.table, name)); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(adds))
	for name := range adds {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic batches
	for _, name := range names {
		if err := b.elements(b.sets[name], adds[name], true); err != nil {
			return err
		}
	}
	for _, ch := range changes {
		if ch.cur == nil {
			continue
		}
		oldRules := map[string][]Rule{}
		if ch.old != nil {
			for _, c := range ch.old.Chains {
				oldRules[c.Name] = c.Rules
			}
		}
		for _, c := range ch.cur.Chains {
			old, had := oldRules[c.Name]
			if had && reflect.DeepEqual(old, c.Rules) {
				continue
			}
			if had {
				b.conn.FlushChain(b.chain(c.Name))
			}
			b.addRules(b.chain(c.Name), c.Rules)
		}
	}
	if !reflect.DeepEqual(slotsBefore, slotsAfter) {
		b.writeSlotRules(slotsAfter)
	}
	for _, name := range slotsBefore {
		if b.count[name] == 0 {
			b.conn.DelSet(b.sets[name])
			delete(b.sets, name)
			delete(b.count, name)
		}
	}
	for _, name := range delChains { // flushed first: removed chains may refer to each other
		b.conn.FlushChain(b.chain(name))
	}
	for _, name := range delChains {
		b.conn.DelChain(b.chain(name))
	}
	for _, s := range delSets {
		b.conn.DelSet(s)
		delete(b.sets, s.Name)
	}
	return nil
}

// diffElements lists the elements a fragment loses and gains.
func diffElements(old, cur *Fragment) (gone, come []element) {
	if old == nil || cur == nil {
		return old.elements(), cur.elements()
	}
	was := map[string]bool{}
	for _, e := range old.elements() {
		was[e.full()] = true
	}
	for _, e := range cur.elements() {
		if f := e.full(); was[f] {
			delete(was, f)
		} else {
			come = append(come, e)
		}
	}
	for _, e := range old.elements() {
		if was[e.full()] {
			gone = append(gone, e)
		}
	}
	return gone, come
}

// slotMaps lists the slot maps that hold elements, ip and node port, by N.
func (b *Backend) slotMaps() []string {
	var out []string
	for name, n := range b.count {
		if _, _, ok := slotsOf(name); ok && n > 0 {
			out = append(out, name)
		}
	}
	sortSlots(out)
	return out
}

// writeSlotRules rewrites the pick chains: one rule per slot map, by N.
func (b *Backend) writeSlotRules(maps []string) {
	b.conn.FlushChain(b.chain("service-picks"))
	b.conn.FlushChain(b.chain("nodeport-picks"))
	for _, name := range maps {
		ip, n, _ := slotsOf(name)
		chain := "nodeport-picks"
		if ip {
			chain = "service-picks"
		}
		b.conn.AddRule(&nftables.Rule{Table: b.table, Chain: b.chain(chain), Exprs: slotRule(ip, n, b.c.RoundRobin, b.sets[name])})
	}
}

// elemChunk bounds the elements per netlink message: the element list is one
// attribute, whose length field has 16 bits. The messages still go in one batch.
const elemChunk = 256

// elements adds (or deletes) elements in messages of at most elemChunk.
func (b *Backend) elements(s *nftables.Set, vals []nftables.SetElement, add bool) error {
	for i := 0; i < len(vals); i += elemChunk {
		chunk := vals[i:min(i+elemChunk, len(vals))]
		var err error
		if add {
			err = b.conn.SetAddElements(s, chunk)
		} else {
			err = b.conn.SetDeleteElements(s, chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func hasAffinity(f *Fragment, a AffinitySet) bool {
	if f == nil {
		return false
	}
	for _, x := range f.Affinity {
		if x == a {
			return true
		}
	}
	return false
}

// clearTable queues, in the pending batch, the emptying of the table: all
// rules, sets and chains go except the NAT base chains, which stay registered.
// Deleting the last NAT hook makes the kernel drop the NAT bindings of every
// connection, so replacing the whole table would cut established connections
// through the kernel path; this way a restart or a full sync does not.
func (b *Backend) clearTable() error {
	b.conn.AddTable(b.table) // creates it if missing; a no-op otherwise
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables table: %w", err)
	}
	// Dumps go over the library's own socket (the batch socket serves only
	// transactions); this runs on full syncs only, never per change.
	lister, err := nftables.New()
	if err != nil {
		return err
	}
	chains, err := lister.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("nftables list chains: %w", err)
	}
	sets, err := lister.GetSets(b.table)
	if err != nil {
		return fmt.Errorf("nftables list sets: %w", err)
	}
	b.conn.FlushTable(b.table)
	for _, s := range sets {
		b.conn.DelSet(s)
	}
	for _, ch := range chains {
		if ch.Table.Name != Table || ch.Type == nftables.ChainTypeNAT {
			continue
		}
		b.conn.DelChain(b.chain(ch.Name))
	}
	return nil
}

// Retire leaves the table with only its NAT base chains and one rule that
// uses conntrack, for a switch to another backend: connections already
// DNATed or masqueraded stay translated only while NAT hooks are registered
// and conntrack runs, and the kernel stops conntrack in a namespace as soon as
// no rule needs it any more. Cleanup (or the next full sync of this backend)
// removes the rest.
func (b *Backend) Retire() error {
	b.localnetOff()
	if err := b.clearTable(); err != nil {
		return err
	}
	b.conn.AddRule(&nftables.Rule{Table: b.table, Chain: b.chain("nat-postrouting"), Exprs: ctDNAT(),
		UserData: comment("keeps conntrack running: established connections stay translated")})
	b.current = nil
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables retire: %w", err)
	}
	return nil
}

// Cleanup deletes the table (svcnet agent --cleanup, or a switch of backend).
func (b *Backend) Cleanup() error {
	b.localnetOff()
	b.conn.AddTable(b.table)
	b.conn.DelTable(b.table)
	b.current = nil
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables cleanup: %w", err)
	}
	return nil
}
