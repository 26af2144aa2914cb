package dns

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// SchemaVersion is the version of the Kubernetes DNS schema served in dns-version.
const SchemaVersion = "1.1.0"

// node is one DNS name: the records each source (a Service, a namespace, the
// zone) puts there, and all of them merged, sorted by type. A node with sources
// but no records is an empty non-terminal: it exists (NODATA), it just has
// nothing of that type. Slices, not maps: a node holds a handful of records and
// there are several nodes per Service.
type node struct {
	contrib []contribution
	rrs     []mdns.RR
}

type contribution struct {
	source string
	rrs    []mdns.RR
}

func (n *node) rebuild() {
	n.rrs = n.rrs[:0]
	for _, c := range n.contrib {
		n.rrs = append(n.rrs, c.rrs...)
	}
	sort.SliceStable(n.rrs, func(i, j int) bool { return n.rrs[i].Header().Rrtype < n.rrs[j].Header().Rrtype })
}

// of returns the node's records of type t (a sub-slice: no allocation).
func (n *node) of(t uint16) []mdns.RR {
	lo := -1
	for i, rr := range n.rrs {
		if rr.Header().Rrtype == t {
			if lo < 0 {
				lo = i
			}
		} else if lo >= 0 {
			return n.rrs[lo:i]
		}
	}
	if lo < 0 {
		return nil
	}
	return n.rrs[lo:]
}

func (n *node) remove(source string) {
	for i, c := range n.contrib {
		if c.source == source {
			n.contrib = append(n.contrib[:i], n.contrib[i+1:]...)
			return
		}
	}
}

func (n *node) add(source string, rr mdns.RR) bool {
	for i := range n.contrib {
		if n.contrib[i].source == source {
			if rr != nil {
				n.contrib[i].rrs = append(n.contrib[i].rrs, rr)
			}
			return false
		}
	}
	c := contribution{source: source}
	if rr != nil {
		c.rrs = []mdns.RR{rr}
	}
	n.contrib = append(n.contrib, c)
	return true
}

// Index holds every name of the cluster zone and the reverse zones, updated
// incrementally per Service and namespace.
type Index struct {
	zone       string // lower case, with trailing dot
	ttl        uint32
	mu         sync.RWMutex
	names      map[string]*node
	sources    map[string][]string // source -> names it contributes to
	namespaces map[string]bool
	serial     uint32
	synced     atomic.Bool
	gen        atomic.Uint64 // bumped on every change: packed answers of older generations are stale
}

// Generation returns a number that changes whenever any answer may change.
func (ix *Index) Generation() uint64 { return ix.gen.Load() }

// NewIndex returns an empty index for zone (e.g. "cluster.local") with record TTL ttl.
func NewIndex(zone string, ttl uint32) *Index {
	ix := &Index{zone: mdns.Fqdn(strings.ToLower(zone)), ttl: ttl, names: map[string]*node{},
		sources: map[string][]string{}, namespaces: map[string]bool{}}
	ix.mu.Lock()
	ix.replace("zone", ix.zoneRecords())
	ix.mu.Unlock()
	return ix
}

// Zone returns the cluster zone (with trailing dot).
func (ix *Index) Zone() string { return ix.zone }

// SetSynced marks the index complete: until then cluster names get SERVFAIL.
func (ix *Index) SetSynced() { ix.synced.Store(true); ix.gen.Add(1) }

// Synced reports whether the first full sync is done.
func (ix *Index) Synced() bool { return ix.synced.Load() }

func (ix *Index) hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: ix.ttl}
}

func (ix *Index) soa() *mdns.SOA {
	return &mdns.SOA{Hdr: ix.hdr(ix.zone, mdns.TypeSOA), Ns: "ns.dns." + ix.zone, Mbox: "hostmaster." + ix.zone,
		Serial: ix.serial, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: ix.ttl}
}

// record is one (name, RR) a source contributes; a nil RR makes the name exist.
type record struct {
	name string
	rr   mdns.RR
}

func (ix *Index) zoneRecords() []record {
	return []record{
		{ix.zone, &mdns.NS{Hdr: ix.hdr(ix.zone, mdns.TypeNS), Ns: "ns.dns." + ix.zone}},
		{"dns-version." + ix.zone, &mdns.TXT{Hdr: ix.hdr("dns-version."+ix.zone, mdns.TypeTXT), Txt: []string{SchemaVersion}}},
		{"svc." + ix.zone, nil},
		{"pod." + ix.zone, nil},
	}
}

// replace swaps everything source contributes. Callers hold mu.
func (ix *Index) replace(source string, recs []record) {
	for _, name := range ix.sources[source] {
		if n := ix.names[name]; n != nil {
			n.remove(source)
			if len(n.contrib) == 0 {
				delete(ix.names, name)
			} else {
				n.rebuild()
			}
		}
	}
	delete(ix.sources, source)
	touched := map[string]*node{}
	for _, r := range recs {
		name := strings.ToLower(r.name)
		n := ix.names[name]
		if n == nil {
			n = &node{}
			ix.names[name] = n
		}
		if n.add(source, r.rr) {
			ix.sources[source] = append(ix.sources[source], name)
		}
		touched[name] = n
	}
	for _, n := range touched {
		n.rebuild()
	}
	ix.serial = uint32(time.Now().Unix())
	ix.gen.Add(1)
}

func reverseName(ip string) string {
	r, err := mdns.ReverseAddr(ip)
	if err != nil {
		return ""
	}
	return r
}

func (ix *Index) addressRR(name, ip string) mdns.RR {
	p := net.ParseIP(ip)
	if p == nil {
		return nil
	}
	if v4 := p.To4(); v4 != nil {
		return &mdns.A{Hdr: ix.hdr(name, mdns.TypeA), A: v4}
	}
	return &mdns.AAAA{Hdr: ix.hdr(name, mdns.TypeAAAA), AAAA: p}
}

// serviceRecords computes every record of a Service.
func (ix *Index) serviceRecords(s *Service) []record {
	base := strings.ToLower(fmt.Sprintf("%s.%s.svc.%s", s.Name, s.Namespace, ix.zone))
	var recs []record
	srv := func(p Port, target string, weight uint16) {
		if p.Name == "" {
			return // unnamed ports have no SRV record
		}
		proto := "_" + p.Protocol + "." + base
		name := "_" + p.Name + "." + proto
		recs = append(recs, record{proto, nil},
			record{name, &mdns.SRV{Hdr: ix.hdr(name, mdns.TypeSRV), Priority: 0, Weight: weight, Port: uint16(p.Port), Target: target}})
	}
	switch {
	case s.ExternalName != "":
		recs = append(recs, record{base, &mdns.CNAME{Hdr: ix.hdr(base, mdns.TypeCNAME), Target: mdns.Fqdn(strings.ToLower(s.ExternalName))}})
	case s.Headless:
		if len(s.Endpoints) == 0 {
			return nil // no ready endpoints: the name does not exist (NXDOMAIN)
		}
		byHost := map[string]int{}
		for _, e := range s.Endpoints {
			byHost[e.Hostname]++
		}
		weight := uint16(100 / len(byHost))
		seen := map[string]bool{}
		for _, e := range s.Endpoints {
			host := e.Hostname + "." + base
			if rr := ix.addressRR(base, e.IP); rr != nil {
				recs = append(recs, record{base, rr}, record{host, ix.addressRR(host, e.IP)})
			}
			if r := reverseName(e.IP); r != "" {
				recs = append(recs, record{r, &mdns.PTR{Hdr: ix.hdr(r, mdns.TypePTR), Ptr: host}})
			}
			if !seen[e.Hostname] {
				seen[e.Hostname] = true
				for _, p := range s.Ports {
					srv(p, host, weight)
				}
			}
		}
	default:
		for _, ip := range s.ClusterIPs {
			if rr := ix.addressRR(base, ip); rr != nil {
				recs = append(recs, record{base, rr})
			}
			if r := reverseName(ip); r != "" {
				recs = append(recs, record{r, &mdns.PTR{Hdr: ix.hdr(r, mdns.TypePTR), Ptr: base}})
			}
		}
		for _, p := range s.Ports {
			srv(p, base, 100)
		}
	}
	return recs
}

// SetService adds or replaces a Service's records.
func (ix *Index) SetService(s *Service) {
	recs := ix.serviceRecords(s)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.replace("svc/"+s.Namespace+"/"+s.Name, recs)
}

// DeleteService removes a Service's records.
func (ix *Index) DeleteService(namespace, name string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.replace("svc/"+namespace+"/"+name, nil)
}

// SetNamespace records that a namespace exists: names in a namespace the index
// does not know are NXDOMAIN, as in CoreDNS.
func (ix *Index) SetNamespace(ns string, exists bool) {
	ns = strings.ToLower(ns)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if exists {
		ix.namespaces[ns] = true
		ix.replace("ns/"+ns, []record{{ns + ".svc." + ix.zone, nil}, {ns + ".pod." + ix.zone, nil}})
	} else {
		delete(ix.namespaces, ns)
		ix.replace("ns/"+ns, nil)
	}
}
