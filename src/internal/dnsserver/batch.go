package dnsserver

import (
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/airelay/airelay/src/internal/logging"
)

// batch is how many datagrams one recvmmsg/sendmmsg moves.
const batch = 32

// NewUDPServer returns the miekg/dns server for pc. When pc is a UDP socket bound to one
// address (dns_listen '127.0.0.1:5353', what dnsmasq forwards to), it reads and answers in
// batches (recvmmsg/sendmmsg) and answers intercepted names on the fast path, handing only the
// rest to miekg/dns. A socket bound to a wildcard address needs the per-datagram destination
// address (IP_PKTINFO) that only miekg/dns's own reader keeps, so it is served as before.
func NewUDPServer(h *Handler, pc net.PacketConn, udpSize int) *dns.Server {
	s := &dns.Server{PacketConn: pc, Handler: h, UDPSize: udpSize}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return s
	}
	local, ok := uc.LocalAddr().(*net.UDPAddr)
	if !ok || local.IP.IsUnspecified() {
		return s
	}
	br := &batchReader{h: h, size: udpSize}
	if ip, _ := netip.AddrFromSlice(local.IP); ip.Unmap().Is4() {
		br.bc = ipv4.NewPacketConn(uc)
	} else {
		br.bc = ipv6.NewPacketConn(uc)
	}
	br.init()
	// miekg/dns reads a *net.UDPConn itself; any other PacketConn goes through the reader's
	// ReadPacketConn, and its answers through WriteTo.
	s.PacketConn = plainPacketConn{uc}
	s.DecorateReader = func(r dns.Reader) dns.Reader { br.Reader = r; return br }
	return s
}

// plainPacketConn hides the *net.UDPConn from miekg/dns's type switch.
type plainPacketConn struct{ *net.UDPConn }

// batchConn is what ipv4.PacketConn and ipv6.PacketConn share.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchReader is miekg/dns's reader for a batched socket. Only the server's read loop calls it.
type batchReader struct {
	dns.Reader // TCP and *net.UDPConn reads, unused here
	h          *Handler
	bc         batchConn
	size       int

	in   []ipv4.Message
	out  []ipv4.Message
	outb [][maxFastReply]byte
	slow []int // indexes into in of the datagrams for miekg/dns
	next int   // slow[next:] are not handed over yet
}

func (r *batchReader) init() {
	r.slow = make([]int, 0, batch)
	r.in = make([]ipv4.Message, batch)
	r.out = make([]ipv4.Message, batch)
	r.outb = make([][maxFastReply]byte, batch)
	for i := range r.in {
		r.in[i].Buffers = [][]byte{make([]byte, r.size)}
		r.out[i].Buffers = [][]byte{nil}
	}
}

// ReadPacketConn returns the next datagram that needs miekg/dns, answering the ones that do
// not on the way. The deadline miekg/dns sets on shutdown ends the read.
func (r *batchReader) ReadPacketConn(conn net.PacketConn, _ time.Duration) ([]byte, net.Addr, error) {
	for r.next == len(r.slow) {
		n, err := r.bc.ReadBatch(r.in, 0)
		if err != nil {
			return nil, nil, err
		}
		r.answer(n)
	}
	m := &r.in[r.slow[r.next]]
	r.next++
	// A copy: the next batch reuses the buffer while miekg/dns still works on this one.
	return append([]byte(nil), m.Buffers[0][:m.N]...), m.Addr, nil
}

// answer sends the fast answers among the first n datagrams read and queues the others.
func (r *batchReader) answer(n int) {
	t := r.h.Table()
	fast := !r.h.Log.Enabled(logging.LevelDebug) // debug logs each answer: general path
	w := 0
	r.slow, r.next = r.slow[:0], 0
	for i := range n {
		m := &r.in[i]
		if m.N < hdrLen || m.Flags&syscall.MSG_TRUNC != 0 {
			continue // as miekg/dns does: a reply could only amplify garbage
		}
		if fast {
			if k := fastAnswer(t, m.Buffers[0][:m.N], r.outb[w][:]); k > 0 {
				r.out[w].Buffers[0] = r.outb[w][:k]
				r.out[w].Addr = m.Addr
				w++
				continue
			}
		}
		r.slow = append(r.slow, i)
	}
	for sent := 0; sent < w; {
		k, err := r.bc.WriteBatch(r.out[sent:w], 0)
		if err != nil {
			// One bad destination must not cost the others their answers: skip it.
			r.h.Log.Debug("dns write failed", "client", r.out[sent].Addr.String(), "err", err)
			k = max(k, 1)
		}
		sent += k
	}
}
