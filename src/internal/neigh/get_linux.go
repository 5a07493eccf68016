package neigh

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Route and neighbour request numbers (linux/rtnetlink.h) not in package syscall for every
// architecture.
const (
	rtmsgLen = 12 // family, dst_len, src_len, tos, table, protocol, scope, type u8; flags u32
	rtaDst   = 1
	rtaOIF   = 4
)

// getNeighbour asks the kernel for ip's neighbour entry alone: a route get tells the device
// the address is reached on (a neighbour get needs it), then a neighbour get on that device.
// It returns the raw reply, which parseDump reads; "no entry" comes back as an nlError.
func getNeighbour(ip netip.Addr) ([]byte, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	family, dst := byte(afInet), ip.AsSlice()
	if ip.Is6() {
		family = afInet6
	}
	buf := make([]byte, 4096)

	req := request(syscall.RTM_GETROUTE, rtmsgLen, dst)
	req[nlmsgHdrLen] = family
	req[nlmsgHdrLen+1] = byte(8 * len(dst)) // dst_len: a host route
	reply, err := roundTrip(fd, req, buf)
	if err != nil {
		return nil, err
	}
	ifindex, err := routeOIF(reply)
	if err != nil {
		return nil, err
	}

	req = request(syscall.RTM_GETNEIGH, ndmsgLen, dst)
	req[nlmsgHdrLen] = family
	ne.PutUint32(req[nlmsgHdrLen+4:], ifindex)
	return roundTrip(fd, req, buf)
}

// request builds a netlink request of type typ: a header of hdrLen zero bytes (filled in by
// the caller) and one attribute (NDA_DST and RTA_DST are both 1) holding dst.
func request(typ uint16, hdrLen int, dst []byte) []byte {
	n := nlmsgHdrLen + hdrLen + rtaHdrLen + len(dst)
	b := make([]byte, n)
	ne.PutUint32(b[0:], uint32(n))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(b[8:], 1) // seq
	a := b[nlmsgHdrLen+hdrLen:]
	ne.PutUint16(a[0:], uint16(rtaHdrLen+len(dst)))
	ne.PutUint16(a[2:], rtaDst)
	copy(a[rtaHdrLen:], dst)
	return b
}

func roundTrip(fd int, req, buf []byte) ([]byte, error) {
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink: send: %w", err)
	}
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return nil, fmt.Errorf("netlink: receive: %w", err)
	}
	return buf[:n], nil
}

// routeOIF reads the output device of a route get's reply.
func routeOIF(b []byte) (uint32, error) {
	if len(b) < nlmsgHdrLen {
		return 0, errTruncated
	}
	l := int(ne.Uint32(b[0:4]))
	if l < nlmsgHdrLen || l > len(b) {
		return 0, errTruncated
	}
	msg := b[nlmsgHdrLen:l]
	switch ne.Uint16(b[4:6]) {
	case nlmsgError:
		if len(msg) >= 4 {
			return 0, nlError(-int32(ne.Uint32(msg[0:4])))
		}
		return 0, errTruncated
	case syscall.RTM_NEWROUTE:
	default:
		return 0, fmt.Errorf("netlink: unexpected reply type %d to a route get", ne.Uint16(b[4:6]))
	}
	if len(msg) < rtmsgLen {
		return 0, errTruncated
	}
	for a := msg[rtmsgLen:]; len(a) >= rtaHdrLen; {
		al := int(ne.Uint16(a[0:2]))
		if al < rtaHdrLen || al > len(a) {
			break
		}
		if ne.Uint16(a[2:4])&nlaTypeMask == rtaOIF && al == rtaHdrLen+4 {
			return ne.Uint32(a[rtaHdrLen:]), nil
		}
		a = a[min(align4(al), len(a)):]
	}
	return 0, nlError(syscall.ENETUNREACH)
}

// isNotFound tells the kernel's "no such neighbour" (or no route, so no neighbour) from a
// failure to ask.
func isNotFound(err error) bool {
	var e nlError
	if !errors.As(err, &e) {
		return false
	}
	switch syscall.Errno(e) {
	case syscall.ENOENT, syscall.ENETUNREACH, syscall.EHOSTUNREACH:
		return true
	}
	return false
}
