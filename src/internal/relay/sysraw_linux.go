//go:build linux && !386

package relay

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// Raw system calls for the setup path (setup_linux.go): all on non-blocking sockets, so none
// blocks, and none is announced to the runtime (see sys_linux.go: an announced call after an
// idle spell wakes sysmon). 386 multiplexes socket calls through socketcall and keeps the
// net.Conn path.

func sysErr(e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// acceptFD accepts one connection on the listening socket lfd: non-blocking, close-on-exec.
func acceptFD(lfd int) (int, netip.AddrPort, error) {
	var rsa syscall.RawSockaddrAny
	n := uint32(unsafe.Sizeof(rsa))
	fd, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(fd), addrPortOf(&rsa), nil
}

func addrPortOf(rsa *syscall.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 && a.IsLinkLocalUnicast() {
			a = a.WithZone(zoneName(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// zoneName is the name of the router's device with index i, as Go's net package names the
// zone of a link-local peer: the network a link-local address is on is told by it alone
// (config.Network.Contains). Asked of the kernel each time, on link-local connections only;
// the index when it has no name.
func zoneName(i uint32) string {
	if ifi, err := net.InterfaceByIndex(int(i)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(i), 10)
}

// socketFD opens a non-blocking, close-on-exec TCP socket for to's family.
func socketFD(to netip.AddrPort) (int, error) {
	family := syscall.AF_INET6
	if to.Addr().Is4() {
		family = syscall.AF_INET
	}
	fd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(family), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// connectFD starts a connection to to; EINPROGRESS: it completes when fd turns writable.
func connectFD(fd int, to netip.AddrPort) error {
	port := to.Port()
	var e syscall.Errno
	if a := to.Addr(); a.Is4() {
		sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	} else {
		sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16(), Scope_id: zoneIndex(a.Zone())}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	return sysErr(e)
}

// zoneIndex is the interface index of an IPv6 zone (fe80::1%br-lan): a name or a number.
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0 // connect says what is wrong
}

func setsockoptInt(fd, level, opt, v int) error {
	v32 := int32(v)
	_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v32)), 4, 0)
	return sysErr(e)
}

// bindToDeviceFD is SO_BINDTODEVICE: the connection leaves through that interface.
func bindToDeviceFD(fd int, name string) error {
	b := make([]byte, len(name)+1)
	copy(b, name)
	_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0)
	return sysErr(e)
}

// soError is the socket's pending error (SO_ERROR), the outcome of a failed connect.
func soError(fd int) error {
	var v int32
	n := uint32(4)
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return e
	}
	return sysErr(syscall.Errno(v))
}

// shutdownFD passes a half-close on (the poller, when one side has ended).
func shutdownFD(fd, how int) { syscall.RawSyscall(syscall.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0) }

func readFD(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func writeFD(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
