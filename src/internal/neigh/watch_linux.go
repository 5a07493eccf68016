package neigh

import (
	"fmt"
	"syscall"
	"unsafe"
)

// rtmgrpNeigh is the bit of RTNLGRP_NEIGH (3) in a netlink bind's group mask: the kernel's
// announcements of every change to a neighbour entry, IPv4 and IPv6.
const rtmgrpNeigh = 1 << (3 - 1)

// fdEvents is a non-blocking rtnetlink socket subscribed to neighbour changes.
type fdEvents int

// openEvents subscribes to the kernel's neighbour changes in the network namespace of the
// calling thread. rtnetlink lets an unprivileged process listen to this group.
func openEvents() (events, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: neighbour events: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: rtmgrpNeigh}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netlink: neighbour events: %w", err)
	}
	return fdEvents(fd), nil
}

// read returns the next message the kernel queued: one change per read. It does not wait:
// errWouldBlock when none is queued, errOverrun when the socket's buffer overflowed and
// changes were lost. The socket never blocks, so the read is a raw system call: it does not
// hand the goroutine's thread to the scheduler and back, which costs as much as the read.
func (f fdEvents) read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(f), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errWouldBlock
		case syscall.ENOBUFS:
			return 0, errOverrun
		}
		return 0, fmt.Errorf("netlink: neighbour events: %w", errno)
	}
}

func (f fdEvents) close() error { return syscall.Close(int(f)) }
