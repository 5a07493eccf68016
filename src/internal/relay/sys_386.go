//go:build linux && 386

package relay

import "syscall"

// 386 multiplexes socket calls through socketcall, which package syscall wraps: these are
// announced calls there, made only when one side has ended or once a second by the sweep.

// shutdownFD passes a half-close on.
func shutdownFD(fd, how int) { syscall.Shutdown(fd, how) }

func setsockoptInt(fd, level, opt, v int) error { return syscall.SetsockoptInt(fd, level, opt, v) }
