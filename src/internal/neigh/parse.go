package neigh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Netlink and rtnetlink numbers (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h). They
// are spelled out here so that the parser stays a pure function that builds anywhere.
const (
	nlmsgHdrLen = 16 // len u32, type u16, flags u16, seq u32, pid u32
	ndmsgLen    = 12 // family u8, pad u8, pad u16, ifindex s32, state u16, flags u8, type u8
	rtaHdrLen   = 4  // len u16, type u16

	nlmsgError  = 2
	nlmsgDone   = 3
	rtmNewNeigh = 28
	rtmDelNeigh = 29

	ndaDst      = 1
	ndaLLAddr   = 2
	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER

	afInet  = 2
	afInet6 = 10

	nudIncomplete = 0x01
	nudReachable  = 0x02
	nudFailed     = 0x20
	nudNoARP      = 0x40
	nudPermanent  = 0x80

	ntfProxy = 0x08 // ndm_flags: a proxy ARP/ND entry, not a neighbour
)

// Netlink is in the host's byte order.
var ne = binary.NativeEndian

// entry is one neighbour message: an address on an interface and, unless gone, its 6-byte
// link-layer address.
type entry struct {
	ip      netip.Addr
	ifindex int32
	mac     [6]byte
	state   uint16
	gone    bool // deleted, or no usable link-layer address (failed, incomplete, none, zero)
}

var errTruncated = errors.New("netlink: truncated message")

// nlError is a netlink error reply: the kernel's errno, positive.
type nlError int32

func (e nlError) Error() string {
	return fmt.Sprintf("netlink: neighbour request failed: errno %d", int32(e))
}

// parseDump appends to dst every usable neighbour in b, the concatenated replies to an
// RTM_GETNEIGH dump or get: the entries parseMessages reads, without the gone ones.
func parseDump(b []byte, dst []entry) ([]entry, error) {
	n := len(dst)
	dst, err := parseMessages(b, dst)
	keep := dst[:n]
	for _, e := range dst[n:] {
		if !e.gone {
			keep = append(keep, e)
		}
	}
	return keep, err
}

// parseMessages appends to dst one entry per IPv4 or IPv6 neighbour message in b (replies to
// a dump or a get, or the kernel's announcements of changes): RTM_NEWNEIGH of a usable
// entry; RTM_NEWNEIGH without a 6-byte, non-zero link-layer address or in state FAILED or
// INCOMPLETE, and RTM_DELNEIGH, as gone. Messages of other families (a bridge's forwarding
// database), proxy entries and malformed neighbour messages are skipped. A malformed netlink
// header ends the parse with an error, as does a netlink error message.
func parseMessages(b []byte, dst []entry) ([]entry, error) {
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return dst, errTruncated
		}
		l := int(ne.Uint32(b[0:4]))
		if l < nlmsgHdrLen || l > len(b) {
			return dst, fmt.Errorf("netlink: message length %d with %d bytes left", l, len(b))
		}
		msg := b[nlmsgHdrLen:l]
		switch typ := ne.Uint16(b[4:6]); typ {
		case nlmsgDone:
			return dst, nil
		case nlmsgError:
			if len(msg) >= 4 {
				if errno := int32(ne.Uint32(msg[0:4])); errno != 0 {
					return dst, nlError(-errno)
				}
			}
		case rtmNewNeigh, rtmDelNeigh:
			if e, ok := parseNeigh(msg); ok {
				if typ == rtmDelNeigh {
					e.gone, e.mac = true, [6]byte{}
				}
				dst = append(dst, e)
			}
		}
		b = b[min(align4(l), len(b)):]
	}
	return dst, nil
}

// parseNeigh reads an ndmsg and its NDA_DST and NDA_LLADDR attributes. It reports false for
// a message that names no IPv4 or IPv6 address, a proxy entry and a malformed message.
func parseNeigh(msg []byte) (entry, bool) {
	var e entry
	if len(msg) < ndmsgLen || msg[10]&ntfProxy != 0 {
		return e, false
	}
	family := msg[0]
	e.ifindex = int32(ne.Uint32(msg[4:8]))
	e.state = ne.Uint16(msg[8:10])
	var haveMAC bool
	for a := msg[ndmsgLen:]; len(a) >= rtaHdrLen; {
		l := int(ne.Uint16(a[0:2]))
		if l < rtaHdrLen || l > len(a) {
			return e, false
		}
		v := a[rtaHdrLen:l]
		switch ne.Uint16(a[2:4]) & nlaTypeMask {
		case ndaDst:
			switch {
			case family == afInet && len(v) == 4:
				e.ip = netip.AddrFrom4([4]byte(v))
			case family == afInet6 && len(v) == 16:
				e.ip = netip.AddrFrom16([16]byte(v)).Unmap()
			}
		case ndaLLAddr:
			if len(v) == 6 {
				e.mac = [6]byte(v)
				haveMAC = e.mac != [6]byte{}
			}
		}
		a = a[min(align4(l), len(a)):]
	}
	e.gone = !haveMAC || e.state&(nudIncomplete|nudFailed) != 0
	if e.gone {
		e.mac = [6]byte{}
	}
	return e, e.ip.IsValid()
}

func align4(n int) int { return (n + 3) &^ 3 }
