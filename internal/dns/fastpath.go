package dns

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The UDP fast path. Cluster answers change only when the index does, so the
// packed response to a (lower-case name, type, EDNS) question is kept and reused
// until the index generation moves: a query costs a header parse, a map lookup,
// an ID patch and one write, with no allocation and no per-packet goroutine.
// Anything unusual (upper case, other opcodes, several questions, options beyond
// a plain OPT, forwarded names, truncation) takes the full path.

type packed struct {
	gen     uint64
	wire    []byte
	counter prometheus.Counter // requests of this type and rcode; nil without metrics
}

// wireCache maps question keys to packed answers.
type wireCache struct {
	mu sync.RWMutex
	m  map[string]*packed
}

func (c *wireCache) get(key []byte, gen uint64) *packed {
	c.mu.RLock()
	p := c.m[string(key)] // no allocation for the lookup
	c.mu.RUnlock()
	if p == nil || p.gen != gen {
		return nil
	}
	return p
}

func (c *wireCache) put(key string, p *packed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 200000 {
		c.m = map[string]*packed{}
	}
	c.m[key] = p
}

// question parses the fixed part of a query: it returns the cache key (qname
// bytes as on the wire + type + class + EDNS marker) and the client's UDP size,
// or ok=false when the query needs the full path.
func question(msg []byte, key []byte) (k []byte, udpSize int, ok bool) {
	if len(msg) < 12+5 {
		return nil, 0, false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&0x8000 != 0 || (flags>>11)&0xF != 0 { // a response, or not a QUERY
		return nil, 0, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(msg[4:]), binary.BigEndian.Uint16(msg[6:]), binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint16(msg[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return nil, 0, false
	}
	i := 12
	for {
		if i >= len(msg) {
			return nil, 0, false
		}
		l := int(msg[i])
		if l == 0 {
			i++
			break
		}
		if l&0xC0 != 0 || i+1+l > len(msg) {
			return nil, 0, false
		}
		for _, b := range msg[i+1 : i+1+l] {
			if b >= 'A' && b <= 'Z' {
				return nil, 0, false // mixed case: answer echoes it, full path
			}
		}
		i += 1 + l
	}
	if i+4 > len(msg) {
		return nil, 0, false
	}
	end := i + 4
	k = append(key[:0], msg[12:end]...)
	udpSize = mdns.MinMsgSize
	if ar == 1 {
		// Exactly one plain OPT record: root name, type OPT, no options.
		if len(msg) != end+11 || msg[end] != 0 || binary.BigEndian.Uint16(msg[end+1:]) != mdns.TypeOPT ||
			binary.BigEndian.Uint16(msg[end+9:]) != 0 {
			return nil, 0, false
		}
		udpSize = max(int(binary.BigEndian.Uint16(msg[end+3:])), mdns.MinMsgSize)
		do := msg[end+7] & 0x80
		k = append(k, 'E', do)
	} else if len(msg) != end {
		return nil, 0, false
	}
	return k, udpSize, true
}

// fastAnswer answers msg from the packed cache into out, or returns nil.
func (s *Server) fastAnswer(msg, key, out []byte, from netip.Addr) ([]byte, *packed) {
	if !s.allowedAddr(from) {
		return nil, nil
	}
	k, size, ok := question(msg, key)
	if !ok {
		return nil, nil
	}
	p := s.wire.get(k, s.Index.Generation())
	if p == nil || len(p.wire) > size {
		return nil, nil
	}
	out = append(out[:0], p.wire...)
	out[0], out[1] = msg[0], msg[1]     // the query's ID
	out[2] = out[2]&^0x01 | msg[2]&0x01 // echo RD
	out[3] = out[3]&^0x10 | msg[3]&0x10 // and CD
	return out, p
}

// remember packs a full-path response under the question's wire key (nil: the
// question cannot use the fast path) for reuse when it depends only on the index.
func (s *Server) remember(key []byte, req, resp *mdns.Msg, gen uint64, cacheable bool) {
	if key == nil || !cacheable || resp.Truncated {
		return
	}
	wire, err := resp.Pack()
	if err != nil {
		return
	}
	p := &packed{gen: gen, wire: wire}
	if s.requests != nil {
		p.counter = s.requests.WithLabelValues(typeLabel(req.Question[0].Qtype), mdns.RcodeToString[resp.Rcode])
	}
	s.wire.put(string(key), p)
}

func typeLabel(t uint16) string {
	if s, ok := mdns.TypeToString[t]; ok {
		return s
	}
	return "other"
}

// batchConn reads and writes several datagrams per system call (recvmmsg and
// sendmmsg on Linux).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

const batch = 64

// serveUDP reads queries on pc in batches and answers cached ones inline, in one
// batched write; the rest go through the full path in their own goroutine.
func (s *Server) serveUDP(pc net.PacketConn) error {
	var bc batchConn
	if la, ok := pc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
		bc = ipv6.NewPacketConn(pc)
	} else {
		bc = ipv4.NewPacketConn(pc)
	}
	in, out := make([]ipv4.Message, batch), make([]ipv4.Message, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
		out[i].Buffers = [][]byte{make([]byte, 0, 4096)}
	}
	key := make([]byte, 0, 300)
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			return err
		}
		start := time.Now()
		k := 0
		for _, m := range in[:n] {
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			msg := m.Buffers[0][:m.N]
			resp, p := s.fastAnswer(msg, key, out[k].Buffers[0], ua.AddrPort().Addr().Unmap())
			if resp != nil {
				out[k].Buffers[0], out[k].Addr = resp, m.Addr
				k++
				if p.counter != nil {
					p.counter.Inc()
				}
				continue
			}
			// The full path may wait for an upstream: never in the read loop.
			req := new(mdns.Msg)
			if err := req.Unpack(msg); err != nil {
				continue // not DNS: drop, as servers do
			}
			k, _, ok := question(msg, nil) // a copy: buf is reused
			if !ok {
				k = nil
			}
			go func() {
				if wire, err := s.respond(req, ua, false, k).Pack(); err == nil {
					_, _ = pc.WriteTo(wire, ua)
				}
			}()
		}
		for sent := 0; sent < k; {
			w, err := bc.WriteBatch(out[sent:k], 0)
			if err != nil {
				break
			}
			sent += w
		}
		if k > 0 && s.latency != nil {
			s.latency.Observe(time.Since(start).Seconds() / float64(k))
		}
	}
}
