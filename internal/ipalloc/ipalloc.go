// Package ipalloc hands out cluster IPs and node ports from their ranges. It only
// computes: the API server records each allocation in storage (as a claim key in
// the Service's own transaction) and keeps these allocators as its fast index.
package ipalloc

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
)

// Errors with Kubernetes' own wording.
var (
	ErrAllocated  = errors.New("provided IP is already allocated")
	ErrPortTaken  = errors.New("provided port is already allocated")
	ErrFull       = errors.New("range is full")
	errOutOfRange = errors.New("not in range")
)

// bitmap tracks used offsets in [0, size). Dynamic picks prefer the upper band,
// leaving the lower band to users who ask for a specific value (as Kubernetes
// does since 1.24/1.27), so a static request rarely collides.
type bitmap struct {
	size, used int
	bits       big.Int
	lowerBand  int
}

func newBitmap(size int) *bitmap {
	band := size / 16
	band = max(16, min(band, 256))
	if band >= size {
		band = 0
	}
	return &bitmap{size: size, lowerBand: band}
}

func (b *bitmap) has(i int) bool { return b.bits.Bit(i) == 1 }

func (b *bitmap) set(i int) bool {
	if b.has(i) {
		return false
	}
	b.bits.SetBit(&b.bits, i, 1)
	b.used++
	return true
}

func (b *bitmap) clear(i int) {
	if b.has(i) {
		b.bits.SetBit(&b.bits, i, 0)
		b.used--
	}
}

// next picks a free offset: random start in the upper band, then a scan of it,
// then a scan of the lower band.
func (b *bitmap) next() (int, bool) {
	if b.used >= b.size {
		return 0, false
	}
	scan := func(lo, hi int) (int, bool) {
		if hi <= lo {
			return 0, false
		}
		start := lo + rand.IntN(hi-lo)
		for k := 0; k < hi-lo; k++ {
			i := lo + (start-lo+k)%(hi-lo)
			if !b.has(i) {
				return i, true
			}
		}
		return 0, false
	}
	if i, ok := scan(b.lowerBand, b.size); ok {
		return i, true
	}
	return scan(0, b.lowerBand)
}

// IPRange allocates addresses of one CIDR, excluding its network address and, for
// IPv4, its broadcast address.
type IPRange struct {
	prefix netip.Prefix
	first  netip.Addr
	bm     *bitmap
}

// NewIPRange parses a CIDR such as 10.96.0.0/12. Ranges larger than 2^20
// addresses are capped there, as Kubernetes does for IPv6.
func NewIPRange(cidr string) (*IPRange, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return nil, fmt.Errorf("invalid CIDR %q: %w", cidr, err)
	}
	p = p.Masked()
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits > 20 {
		hostBits = 20
	}
	size := 1 << hostBits
	reserved := 1 // network address
	if p.Addr().Is4() {
		reserved = 2 // and broadcast
	}
	if size <= reserved {
		return nil, fmt.Errorf("CIDR %s is too small to allocate from", cidr)
	}
	return &IPRange{prefix: p, first: p.Addr().Next(), bm: newBitmap(size - reserved)}, nil
}

// String returns the CIDR.
func (r *IPRange) String() string { return r.prefix.String() }

// Size returns how many addresses can be allocated.
func (r *IPRange) Size() int { return r.bm.size }

// Free returns how many addresses are left.
func (r *IPRange) Free() int { return r.bm.size - r.bm.used }

func (r *IPRange) offset(ip netip.Addr) (int, error) {
	if !r.prefix.Contains(ip) {
		return 0, errOutOfRange
	}
	a, f := ip.As16(), r.first.As16()
	var ai, fi big.Int
	ai.SetBytes(a[:])
	fi.SetBytes(f[:])
	d := new(big.Int).Sub(&ai, &fi)
	if d.Sign() < 0 || !d.IsInt64() || d.Int64() >= int64(r.bm.size) {
		return 0, errOutOfRange
	}
	return int(d.Int64()), nil
}

func (r *IPRange) addr(off int) netip.Addr {
	f := r.first.As16()
	var n big.Int
	n.SetBytes(f[:])
	n.Add(&n, big.NewInt(int64(off)))
	var b [16]byte
	n.FillBytes(b[:])
	a := netip.AddrFrom16(b)
	if r.first.Is4() {
		a = a.Unmap()
	}
	return a
}

// Contains reports whether ip can be allocated from this range.
func (r *IPRange) Contains(ip netip.Addr) bool {
	_, err := r.offset(ip)
	return err == nil
}

// OutOfRangeError says a requested IP is outside the range, in Kubernetes' words.
type OutOfRangeError struct{ IP, Range string }

func (e *OutOfRangeError) Error() string {
	return fmt.Sprintf("provided IP (%s) is not in the valid range. The range of valid IPs is %s", e.IP, e.Range)
}

// Allocate marks ip as used.
func (r *IPRange) Allocate(ip netip.Addr) error {
	off, err := r.offset(ip)
	if err != nil {
		return &OutOfRangeError{IP: ip.String(), Range: r.prefix.String()}
	}
	if !r.bm.set(off) {
		return ErrAllocated
	}
	return nil
}

// AllocateNext picks and marks a free address.
func (r *IPRange) AllocateNext() (netip.Addr, error) {
	off, ok := r.bm.next()
	if !ok {
		return netip.Addr{}, ErrFull
	}
	r.bm.set(off)
	return r.addr(off), nil
}

// Release frees ip (no-op when outside the range or free).
func (r *IPRange) Release(ip netip.Addr) {
	if off, err := r.offset(ip); err == nil {
		r.bm.clear(off)
	}
}

// Has reports whether ip is marked used.
func (r *IPRange) Has(ip netip.Addr) bool {
	off, err := r.offset(ip)
	return err == nil && r.bm.has(off)
}

// PortRange allocates ports of an inclusive range such as 30000-32767.
type PortRange struct {
	Base, Last int
	bm         *bitmap
}

// ParsePortRange parses "30000-32767" (or a single port).
func ParsePortRange(s string) (*PortRange, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return nil, fmt.Errorf("invalid port range %q: want FROM-TO with 1 <= FROM <= TO <= 65535", s)
	}
	return &PortRange{Base: a, Last: b, bm: newBitmap(b - a + 1)}, nil
}

// String returns the range as FROM-TO.
func (r *PortRange) String() string { return fmt.Sprintf("%d-%d", r.Base, r.Last) }

// Free returns how many ports are left.
func (r *PortRange) Free() int { return r.bm.size - r.bm.used }

// Contains reports whether port is in the range.
func (r *PortRange) Contains(port int) bool { return port >= r.Base && port <= r.Last }

// PortOutOfRangeError says a requested port is outside the range.
type PortOutOfRangeError struct {
	Port  int
	Range string
}

func (e *PortOutOfRangeError) Error() string {
	return fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", e.Range)
}

// Allocate marks port as used.
func (r *PortRange) Allocate(port int) error {
	if !r.Contains(port) {
		return &PortOutOfRangeError{Port: port, Range: r.String()}
	}
	if !r.bm.set(port - r.Base) {
		return ErrPortTaken
	}
	return nil
}

// AllocateNext picks and marks a free port.
func (r *PortRange) AllocateNext() (int, error) {
	off, ok := r.bm.next()
	if !ok {
		return 0, ErrFull
	}
	r.bm.set(off)
	return r.Base + off, nil
}

// Release frees port.
func (r *PortRange) Release(port int) {
	if r.Contains(port) {
		r.bm.clear(port - r.Base)
	}
}

// Has reports whether port is marked used.
func (r *PortRange) Has(port int) bool { return r.Contains(port) && r.bm.has(port-r.Base) }
