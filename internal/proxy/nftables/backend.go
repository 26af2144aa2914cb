package nftables

import (
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"

	"github.com/svcnet/svcnet/internal/proxy"
)

// Backend programs the table over netlink. It keeps what it last wrote in
// memory and never lists the kernel's state on the hot path: a partial sync
// recomputes only the changed service ports and sends their difference in one
// transaction; a full sync replaces the table atomically.
type Backend struct {
	c       Config
	Log     func(msg string, err error) // warnings that do not fail a sync
	conn    *nftables.Conn
	sock    *batchSocket
	table   *nftables.Table
	current map[proxy.Key]*Fragment
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

func (b *Backend) mapSets() map[string]*nftables.Set {
	ipKey := nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	portKey := nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	vmap := func(name string, key nftables.SetDatatype) *nftables.Set {
		return &nftables.Set{Table: b.table, Name: name, IsMap: true, Concatenation: true, KeyType: key, DataType: nftables.TypeVerdict}
	}
	return map[string]*nftables.Set{
		MapServiceIPs:          vmap(MapServiceIPs, ipKey),
		MapServiceNodePorts:    vmap(MapServiceNodePorts, portKey),
		MapNoEndpointServices:  vmap(MapNoEndpointServices, ipKey),
		MapNoEndpointNodePorts: vmap(MapNoEndpointNodePorts, portKey),
		SetClusterIPs:          {Table: b.table, Name: SetClusterIPs, KeyType: nftables.TypeIPAddr},
	}
}

func affinityNFT(t *nftables.Table, a AffinitySet) *nftables.Set {
	return &nftables.Set{Table: t, Name: a.Name, KeyType: nftables.TypeIPAddr, HasTimeout: true, Dynamic: true,
		Timeout: time.Duration(a.Timeout) * time.Second}
}

func verdictElem(key []byte, v Verdict) nftables.SetElement {
	if v.Drop {
		return nftables.SetElement{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictDrop}}
	}
	return nftables.SetElement{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: v.Goto}}
}

// elems lists a fragment's elements per map or set.
func elems(f *Fragment) map[string]map[string]nftables.SetElement {
	out := map[string]map[string]nftables.SetElement{MapServiceIPs: {}, MapServiceNodePorts: {}, MapNoEndpointServices: {},
		MapNoEndpointNodePorts: {}, SetClusterIPs: {}}
	if f == nil {
		return out
	}
	for k, v := range f.ServiceIPs {
		out[MapServiceIPs][fmt.Sprint(k, v)] = verdictElem(ipProtoPortKey(k), v)
	}
	for k, v := range f.NoEndpoints {
		out[MapNoEndpointServices][fmt.Sprint(k, v)] = verdictElem(ipProtoPortKey(k), v)
	}
	for k, v := range f.NodePorts {
		out[MapServiceNodePorts][fmt.Sprint(k, v)] = verdictElem(protoPortKey(k), v)
	}
	for k, v := range f.NoEndpointNodePorts {
		out[MapNoEndpointNodePorts][fmt.Sprint(k, v)] = verdictElem(protoPortKey(k), v)
	}
	for _, ip := range f.ClusterIPs {
		a := ip.As4()
		out[SetClusterIPs][ip.String()] = nftables.SetElement{Key: a[:]}
	}
	return out
}

func (b *Backend) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: b.table}
}

func (b *Backend) addRules(ch *nftables.Chain, rules []Rule, sets map[string]*nftables.Set) {
	for _, r := range rules {
		b.conn.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: ruleExprs(r, sets), UserData: comment(r.Comment)})
	}
}

// Sync writes the rules for st: everything when full (or on the first call),
// otherwise only the service ports in changed.
func (b *Backend) Sync(st *proxy.State, changed []proxy.Key, full bool) error {
	if full || b.current == nil {
		return b.fullSync(st)
	}
	return b.partialSync(st, changed)
}

func (b *Backend) fullSync(st *proxy.State) error {
	frags := ComputeAll(b.c, st)
	if err := b.clearTable(); err != nil {
		return err
	}
	for _, ch := range baseChains(b.table) {
		b.conn.AddChain(ch)
	}
	for _, f := range frags {
		for _, ch := range f.Chains {
			b.conn.AddChain(b.chain(ch.Name))
		}
	}
	sets := map[string]*nftables.Set{}
	vals := map[string][]nftables.SetElement{}
	for _, f := range frags {
		for name, es := range elems(f) {
			for _, e := range es {
				vals[name] = append(vals[name], e)
			}
		}
		for _, a := range f.Affinity {
			s := affinityNFT(b.table, a)
			if err := b.conn.AddSet(s, nil); err != nil {
				return err
			}
			sets[a.Name] = s
		}
	}
	for name, s := range b.mapSets() {
		if err := b.conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		sets[name] = s
		if err := b.elements(s, vals[name], true); err != nil {
			return err
		}
	}
	for name, rules := range baseRules(b.c, sets) {
		for _, r := range rules {
			b.conn.AddRule(&nftables.Rule{Table: b.table, Chain: b.chain(name), Exprs: r})
		}
	}
	for _, f := range frags {
		for _, ch := range f.Chains {
			b.addRules(b.chain(ch.Name), ch.Rules, sets)
		}
	}
	if err := b.flush(); err != nil {
		b.current = nil
		return fmt.Errorf("nftables full sync: %w", err)
	}
	b.current = frags
	return nil
}

func (b *Backend) partialSync(st *proxy.State, changed []proxy.Key) error {
	next := map[proxy.Key]*Fragment{}
	for _, k := range changed {
		if sp, ok := st.Services[k]; ok {
			next[k] = Compute(b.c, sp, st.Endpoints[k])
		} else {
			next[k] = nil
		}
	}
	sets := b.mapSets()
	var delChains []string
	var delSets []*nftables.Set
	type elemOp struct {
		set  *nftables.Set
		vals []nftables.SetElement
	}
	var dels, adds []elemOp
	changedAny := false
	for k, nf := range next {
		of := b.current[k]
		if reflect.DeepEqual(of, nf) {
			continue
		}
		changedAny = true
		oldChains := map[string]Chain{}
		if of != nil {
			for _, ch := range of.Chains {
				oldChains[ch.Name] = ch
			}
		}
		newSets := map[string]bool{}
		if nf != nil {
			for _, a := range nf.Affinity {
				newSets[a.Name] = true
				s := affinityNFT(b.table, a)
				if of == nil || !hasAffinity(of, a) {
					if err := b.conn.AddSet(s, nil); err != nil {
						return err
					}
				}
				sets[a.Name] = s
			}
			for _, ch := range nf.Chains {
				if _, ok := oldChains[ch.Name]; !ok {
					b.conn.AddChain(b.chain(ch.Name))
				}
			}
			for _, ch := range nf.Chains {
				old, ok := oldChains[ch.Name]
				if ok && reflect.DeepEqual(old.Rules, ch.Rules) {
					continue
				}
				if ok {
					b.conn.FlushChain(b.chain(ch.Name))
				}
				b.addRules(b.chain(ch.Name), ch.Rules, sets)
			}
		}
		oe, ne := elems(of), elems(nf)
		for name, s := range sets {
			var d, a []nftables.SetElement
			for key, e := range oe[name] {
				if _, keep := ne[name][key]; !keep {
					d = append(d, e)
				}
			}
			for key, e := range ne[name] {
				if _, had := oe[name][key]; !had {
					a = append(a, e)
				}
			}
			if len(d) > 0 {
				dels = append(dels, elemOp{s, d})
			}
			if len(a) > 0 {
				adds = append(adds, elemOp{s, a})
			}
		}
		newChains := map[string]bool{}
		if nf != nil {
			for _, ch := range nf.Chains {
				newChains[ch.Name] = true
			}
		}
		for name := range oldChains {
			if !newChains[name] {
				delChains = append(delChains, name)
			}
		}
		if of != nil {
			for _, a := range of.Affinity {
				if !newSets[a.Name] {
					delSets = append(delSets, affinityNFT(b.table, a))
				}
			}
		}
	}
	if !changedAny {
		return nil
	}
	for _, op := range dels { // deletions first: a key whose verdict changed is deleted, then added
		if err := b.elements(op.set, op.vals, false); err != nil {
			return err
		}
	}
	for _, op := range adds {
		if err := b.elements(op.set, op.vals, true); err != nil {
			return err
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
	}
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables partial sync: %w", err)
	}
	var filters []netlink.CustomConntrackFilter
	var fresh []netip.Addr
	for k, nf := range next {
		g, f := staleUDP(b.current[k], nf)
		if len(g) > 0 {
			filters = append(filters, udpFilters(b.current[k], g)...)
		}
		fresh = append(fresh, f...)
	}
	if err := clearConntrack(filters, fresh); err != nil {
		b.log("clearing stale UDP conntrack entries failed", err)
	}
	for k, nf := range next {
		if nf == nil {
			delete(b.current, k)
		} else {
			b.current[k] = nf
		}
	}
	return nil
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

// Retire leaves the table with only its (empty) NAT base chains, for a switch
// to another backend: connections already DNATed or masqueraded stay
// translated by conntrack only while NAT hooks are registered. Cleanup (or the
// next full sync of this backend) removes the rest.
func (b *Backend) Retire() error {
	if err := b.clearTable(); err != nil {
		return err
	}
	b.current = nil
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables retire: %w", err)
	}
	return nil
}

// Cleanup deletes the table (svcnet agent --cleanup, or a switch of backend).
func (b *Backend) Cleanup() error {
	b.conn.AddTable(b.table)
	b.conn.DelTable(b.table)
	b.current = nil
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables cleanup: %w", err)
	}
	return nil
}
