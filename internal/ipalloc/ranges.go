package ipalloc

import (
	"net/netip"
	"strings"
)

// CIDR is one range cluster IPs may come from: a ServiceCIDR's name and prefixes.
// Serving is false while the ServiceCIDR is not Ready or is being deleted: its IPs
// stay tracked but no new ones are handed out.
type CIDR struct {
	Name     string
	Prefixes []netip.Prefix
	Serving  bool
}

type namedRange struct {
	name    string
	serving bool
	r       *IPRange
}

// Ranges allocates cluster IPs from several ServiceCIDRs, in order (the default
// ServiceCIDR first): a new IP comes from the first serving range of the family with
// room, a requested IP must lie in a serving range. It remembers every used IP, also
// those outside all ranges, so ranges added later start with their IPs marked.
type Ranges struct {
	list []namedRange
	used map[netip.Addr]struct{}
}

// NewRanges builds the allocator over cidrs in priority order.
func NewRanges(cidrs []CIDR) (*Ranges, error) {
	rs := &Ranges{used: map[netip.Addr]struct{}{}}
	return rs, rs.SetCIDRs(cidrs)
}

// SetCIDRs replaces the ranges, keeping the used IPs.
func (rs *Ranges) SetCIDRs(cidrs []CIDR) error {
	var list []namedRange
	for _, c := range cidrs {
		for _, p := range c.Prefixes {
			r, err := NewIPRange(p.String())
			if err != nil {
				return err
			}
			for ip := range rs.used {
				_ = r.Allocate(ip)
			}
			list = append(list, namedRange{name: c.Name, serving: c.Serving, r: r})
		}
	}
	rs.list = list
	return nil
}

// String lists the serving ranges, comma separated (Kubernetes' error wording).
func (rs *Ranges) String() string {
	var out []string
	for _, n := range rs.list {
		if n.serving {
			out = append(out, n.r.String())
		}
	}
	return strings.Join(out, ",")
}

// Free counts the free addresses of the serving ranges (overlaps counted twice).
func (rs *Ranges) Free() int {
	free := 0
	for _, n := range rs.list {
		if n.serving {
			free += n.r.Free()
		}
	}
	return free
}

func (rs *Ranges) mark(ip netip.Addr) {
	rs.used[ip] = struct{}{}
	for _, n := range rs.list {
		_ = n.r.Allocate(ip)
	}
}

// Mark records ip as used wherever it lies, even outside every range (repair,
// IPAddress objects created by users).
func (rs *Ranges) Mark(ip netip.Addr) { rs.mark(ip.Unmap()) }

// Allocate takes a requested ip: ErrAllocated when used, *OutOfRangeError when no
// serving range holds it.
func (rs *Ranges) Allocate(ip netip.Addr) error {
	ip = ip.Unmap()
	inRange := false
	for _, n := range rs.list {
		inRange = inRange || (n.serving && n.r.Contains(ip))
	}
	if !inRange {
		return &OutOfRangeError{IP: ip.String(), Range: rs.String()}
	}
	if _, ok := rs.used[ip]; ok {
		return ErrAllocated
	}
	rs.mark(ip)
	return nil
}

// AllocateNext picks a free IP of the family (ipv6 or not) from the first serving
// range with room, ErrFull when none has.
func (rs *Ranges) AllocateNext(ipv6 bool) (netip.Addr, error) {
	for _, n := range rs.list {
		if !n.serving || n.r.prefix.Addr().Is6() != ipv6 {
			continue
		}
		for n.r.Free() > 0 {
			ip, err := n.r.AllocateNext()
			if err != nil {
				break
			}
			if _, ok := rs.used[ip]; ok {
				continue // marked here late; cannot happen while SetCIDRs marks all
			}
			rs.mark(ip)
			return ip, nil
		}
	}
	return netip.Addr{}, ErrFull
}

// Release frees ip in every range.
func (rs *Ranges) Release(ip netip.Addr) {
	ip = ip.Unmap()
	delete(rs.used, ip)
	for _, n := range rs.list {
		n.r.Release(ip)
	}
}

// Has reports whether ip is used.
func (rs *Ranges) Has(ip netip.Addr) bool {
	_, ok := rs.used[ip.Unmap()]
	return ok
}

// HasFamily reports whether some serving range is of the family.
func (rs *Ranges) HasFamily(ipv6 bool) bool {
	for _, n := range rs.list {
		if n.serving && n.r.prefix.Addr().Is6() == ipv6 {
			return true
		}
	}
	return false
}

// Family says which family new IPs come from by default: that of the first
// serving range (IPv4 when there is none).
func (rs *Ranges) Family() (ipv6 bool) {
	for _, n := range rs.list {
		if n.serving {
			return n.r.prefix.Addr().Is6()
		}
	}
	return false
}

// Orphans returns the ips that lie in one of own's prefixes and in none of others':
// a ServiceCIDR being deleted keeps its finalizer while this is not empty.
func Orphans(own []netip.Prefix, others []netip.Prefix, ips []netip.Addr) []netip.Addr {
	var out []netip.Addr
	in := func(ps []netip.Prefix, ip netip.Addr) bool {
		for _, p := range ps {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	for _, ip := range ips {
		ip = ip.Unmap()
		if in(own, ip) && !in(others, ip) {
			out = append(out, ip)
		}
	}
	return out
}
