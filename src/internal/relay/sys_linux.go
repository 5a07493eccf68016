package relay

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/airelay/airelay/src/internal/egress"
)

// The poller's system calls never block (non-blocking sockets and pipes, SPLICE_F_NONBLOCK, an
// epoll wait with no timeout), so they are made raw: a call announced to the runtime
// (syscall.Syscall) wakes sysmon after an idle spell, which then polls in 20 µs steps — a futex
// and nanosleeps per handshake on a quiet relay.

// pollable puts the epoll set's descriptor in the runtime's poller: a goroutine can then park
// until the set has events (run). The runtime takes the descriptor over only when it is
// non-blocking.
// The File is kept with the poller: collected, it would close the descriptor.
func pollable(epfd int) (*os.File, syscall.RawConn, error) {
	if err := syscall.SetNonblock(epfd, true); err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(epfd), "relay-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	return f, rc, nil
}

// epollWaitNow returns the events ready in epfd now, without waiting.
func epollWaitNow(epfd int, events []syscall.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func epollCtl(epfd, op, fd int, ev *syscall.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func spliceFD(from, to int, n int) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n), spliceFlags)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func closeFD(fd int) { syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0) }

// keepAliveFD turns TCP keep-alive on for a provider's socket (egress.KeepAliveConfig).
func keepAliveFD(fd int) {
	_ = setsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
	_ = setsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(egress.KeepAliveConfig.Idle/time.Second))
}
