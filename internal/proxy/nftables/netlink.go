package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// batchSocket carries google/nftables' transactions over a plain blocking
// netlink socket. The library marshals every message; this sends the whole
// batch in one sendmsg (with SO_SNDBUFFORCE, as nft does) and, since the
// kernel handles a batch inside that sendmsg, drains all acknowledgements
// with a few recvmsg calls right after. The library's own receive loop pays
// scheduler round trips per acknowledgement (~100 µs each: over a second for
// a full sync of 1,000 Services); here the loop reads from memory.
type batchSocket struct {
	mu    sync.Mutex
	fd    int
	queue []netlink.Message
	err   error // the first error the kernel reported for the last batch
}

func newBatchSocket() (*batchSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	for opt, size := range map[int]int{unix.SO_SNDBUFFORCE: 256 << 20, unix.SO_RCVBUFFORCE: 64 << 20} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, size); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("netlink socket buffers: %w", err)
		}
	}
	return &batchSocket{fd: fd}, nil
}

// roundTrip is an nltest.Func: a batch goes out and its first reply comes
// back; each later call (req == nil) hands out the next reply.
func (b *batchSocket) roundTrip(req []netlink.Message) ([]netlink.Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req == nil {
		if len(b.queue) == 0 {
			return nil, syscall.ENOBUFS // the kernel sent no more: the library stops waiting
		}
		m := b.queue[0]
		b.queue = b.queue[1:]
		return []netlink.Message{m}, nil
	}
	var buf []byte
	for _, m := range req {
		data, err := m.MarshalBinary()
		if err != nil {
			return nil, err
		}
		buf = append(buf, data...)
	}
	b.queue, b.err = nil, nil
	if err := unix.Sendmsg(b.fd, buf, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0); err != nil {
		return nil, fmt.Errorf("sendmsg: %w", err)
	}
	rbuf := make([]byte, 1<<20)
	for {
		n, _, _, _, err := unix.Recvmsg(b.fd, rbuf, nil, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("recvmsg: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(rbuf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			nm := netlink.Message{Header: netlink.Header{Length: m.Header.Len, Type: netlink.HeaderType(m.Header.Type),
				Flags: netlink.HeaderFlags(m.Header.Flags), Sequence: m.Header.Seq, PID: m.Header.Pid}, Data: append([]byte(nil), m.Data...)}
			if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 && b.err == nil {
				if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
					b.err = syscall.Errno(-code)
				}
			}
			b.queue = append(b.queue, nm)
		}
	}
	if len(b.queue) == 0 {
		return nil, nil
	}
	m := b.queue[0]
	b.queue = b.queue[1:]
	return []netlink.Message{m}, nil
}

// lastError is what the kernel said of the last batch (nil: all acknowledged).
func (b *batchSocket) lastError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
