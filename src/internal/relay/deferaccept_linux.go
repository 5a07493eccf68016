package relay

import (
	"net"
	"syscall"
	"time"
)

// deferAccept asks the kernel to hand over a connection only once its first bytes (the
// ClientHello) have arrived: the accept then finds the hello waiting, and no goroutine is
// started for a connection that sends nothing within timeout.
func deferAccept(ln net.Listener, timeout time.Duration) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	secs := max(int((timeout+time.Second-1)/time.Second), 1)
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secs)
	})
}
