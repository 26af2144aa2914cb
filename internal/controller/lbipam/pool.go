// Package lbipam gives LoadBalancer Services their external IPs from address
// pools, as MetalLB's and Cilium's LB IPAM do on bare metal: pools are the
// cluster-scoped LoadBalancerPool objects (svcnet.io/v1alpha1, a CRD installed
// at start; `svcnet up --load-balancer-pool` writes the pool "default"), each
// with addresses (ranges or CIDRs) and optional Service and namespace
// selectors. A Service of type LoadBalancer without a loadBalancerClass (or
// with ours) gets one address per IP family in status.loadBalancer.ingress,
// the one it asked for (spec.loadBalancerIP or the svcnet.io/load-balancer-ips
// annotation) or the first free one; the allocation itself is a pure function.
package lbipam

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Names of the API svcnet's load balancer answers to.
const (
	// Class is the spec.loadBalancerClass svcnet serves (besides none).
	Class = "svcnet.io/load-balancer"
	// IPsAnnotation asks for specific addresses, comma separated.
	IPsAnnotation = "svcnet.io/load-balancer-ips"
	// DefaultPool is the pool `svcnet up --load-balancer-pool` writes.
	DefaultPool = "default"
)

// Range is an inclusive range of addresses of one family.
type Range struct{ From, To netip.Addr }

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.From.BitLen() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// String renders r as a-b, or one address.
func (r Range) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// ParseAddresses parses pool addresses: "a-b" ranges, CIDRs (every address of
// them, as MetalLB) or single addresses, each an element of list or comma
// separated.
func ParseAddresses(list []string) ([]Range, error) {
	var out []Range
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			r, err := parseRange(s)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no addresses")
	}
	return out, nil
}

func parseRange(s string) (Range, error) {
	if from, to, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(from))
		b, err2 := netip.ParseAddr(strings.TrimSpace(to))
		if err1 != nil || err2 != nil {
			return Range{}, fmt.Errorf("%q: not an address range a-b", s)
		}
		if a.BitLen() != b.BitLen() {
			return Range{}, fmt.Errorf("%q: both ends must be of one IP family", s)
		}
		if b.Less(a) {
			return Range{}, fmt.Errorf("%q: the range ends before it starts", s)
		}
		return Range{a.Unmap(), b.Unmap()}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Range{}, fmt.Errorf("%q: %v", s, err)
		}
		p = p.Masked()
		return Range{p.Addr(), lastAddr(p)}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Range{}, fmt.Errorf("%q: not an address, range or CIDR", s)
	}
	return Range{a, a}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Pool is a LoadBalancerPool as the allocator sees it.
type Pool struct {
	Name   string
	Ranges []Range
	// Services and Namespaces select what may use the pool (nil: everything).
	Services, Namespaces labels.Selector
}

// Service is what the allocator needs to know of a Service.
type Service struct {
	Key             string // namespace/name
	Labels          map[string]string
	NamespaceLabels map[string]string
	// Requested are the addresses asked for (spec.loadBalancerIP, the annotation).
	Requested []netip.Addr
	// Current are the addresses it holds now (status.loadBalancer.ingress).
	Current []netip.Addr
	// IPv4, IPv6 say which families it wants an address of (spec.ipFamilies).
	IPv4, IPv6 bool
}

func (p *Pool) admits(s *Service) bool {
	return (p.Services == nil || p.Services.Matches(labels.Set(s.Labels))) &&
		(p.Namespaces == nil || p.Namespaces.Matches(labels.Set(s.NamespaceLabels)))
}

func (p *Pool) contains(a netip.Addr) bool {
	for _, r := range p.Ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// Assign returns the addresses of s: the requested ones, or per wanted family
// the current one while it stays valid, else the first free one of the pools
// that admit s (in name order). inUse maps addresses to the Service holding them.
func Assign(s Service, pools []Pool, inUse map[netip.Addr]string) ([]netip.Addr, error) {
	pools = append([]Pool(nil), pools...)
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	var mine []*Pool
	for i := range pools {
		if pools[i].admits(&s) {
			mine = append(mine, &pools[i])
		}
	}
	free := func(a netip.Addr) bool { k, ok := inUse[a]; return !ok || k == s.Key }
	inPools := func(a netip.Addr) bool {
		for _, p := range mine {
			if p.contains(a) {
				return true
			}
		}
		return false
	}
	if len(s.Requested) > 0 {
		for _, a := range s.Requested {
			if !inPools(a) {
				return nil, fmt.Errorf("requested address %s is in no pool for this Service", a)
			}
			if !free(a) {
				return nil, fmt.Errorf("requested address %s is already in use by %s", a, inUse[a])
			}
		}
		return s.Requested, nil
	}
	if len(mine) == 0 {
		return nil, fmt.Errorf("no pool admits this Service")
	}
	var out []netip.Addr
	for _, v4 := range []bool{true, false} {
		if (v4 && !s.IPv4) || (!v4 && !s.IPv6) {
			continue
		}
		a, ok := pick(s, mine, v4, free, inPools)
		if !ok {
			fam := "IPv6"
			if v4 {
				fam = "IPv4"
			}
			return nil, fmt.Errorf("no free %s address in pools %s", fam, poolNames(mine))
		}
		out = append(out, a)
	}
	return out, nil
}

func pick(s Service, pools []*Pool, v4 bool, free, inPools func(netip.Addr) bool) (netip.Addr, bool) {
	for _, a := range s.Current {
		if a.Is4() == v4 && inPools(a) && free(a) {
			return a, true
		}
	}
	for _, p := range pools {
		for _, r := range p.Ranges {
			if r.From.Is4() != v4 {
				continue
			}
			for a := r.From; a.IsValid() && a.Compare(r.To) <= 0; a = a.Next() {
				if free(a) {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

func poolNames(ps []*Pool) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return "[" + strings.Join(names, " ") + "]"
}
