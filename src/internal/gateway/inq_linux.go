//go:build linux && !386

package gateway

import (
	"os"
	"syscall"
	"unsafe"
)

// tcpInq is TCP_INQ and TCP_CM_INQ (linux/tcp.h, Linux 4.18), the same on every architecture.
const tcpInq = 36

// inqReader reads a socket inside a RawRead that waits for the poller once a read took all the
// socket held (a device's in step, a plain provider's in passRaw and encode). It reads with
// recvmsg and TCP_INQ, which tells with each read what the socket still holds: 0 when nothing,
// not even the peer's close. A read that merely did not fill the buffer may have taken the
// close (a FIN) along with the last bytes, and of that the runtime says nothing more: only inq
// tells that the next read ends the connection. 386 makes socket calls through socketcall: it
// keeps read (inq_other.go).
type inqReader struct {
	tried, on bool // TCP_INQ was asked for; the socket has it
	msg       syscall.Msghdr
	iov       syscall.Iovec
	oob       [4]uint64 // the TCP_CM_INQ message (uint64: a cmsghdr's alignment)
}

// read reads into b from the non-blocking socket fd as read does; inq is what the
// socket holds after it (1 or more after a half-close), -1 when unknown.
func (r *inqReader) read(fd uintptr, b []byte) (n, inq int, err error) {
	if !r.tried {
		r.tried = true
		one := int32(1)
		_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, tcpInq, uintptr(unsafe.Pointer(&one)), 4, 0)
		r.on = e == 0
	}
	if !r.on {
		n, err = readFD(fd, b)
		return n, -1, err
	}
	r.iov.Base = &zeroByte
	if len(b) > 0 {
		r.iov.Base = &b[0]
	}
	r.iov.SetLen(len(b))
	r.msg.Iov, r.msg.Iovlen = &r.iov, 1
	r.msg.Control = (*byte)(unsafe.Pointer(&r.oob))
	r.msg.SetControllen(syscall.CmsgSpace(4))
	m, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
	for e == syscall.EINTR {
		m, _, e = syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
	}
	r.iov.Base = nil // (the buffer goes back to its pool)
	switch e {
	case 0:
	case syscall.EAGAIN:
		return 0, -1, syscall.EAGAIN
	default:
		return 0, -1, os.NewSyscallError("recvmsg", e)
	}
	inq = -1
	if h := (*syscall.Cmsghdr)(unsafe.Pointer(&r.oob)); int(r.msg.Controllen) >= syscall.CmsgLen(4) &&
		h.Level == syscall.IPPROTO_TCP && h.Type == tcpInq {
		inq = int(*(*int32)(unsafe.Add(unsafe.Pointer(&r.oob), syscall.CmsgLen(0))))
	}
	return int(m), inq, nil
}

// known reports whether reads tell what the socket still holds (TCP_INQ is on).
func (r *inqReader) known() bool { return r.on }

// inqBuilt: this build reads with TCP_INQ where the kernel has it.
const inqBuilt = true
