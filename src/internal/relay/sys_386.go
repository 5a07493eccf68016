//go:build linux && 386

package relay

import (
	"syscall"
	"time"

	"github.com/airelay/airelay/src/internal/egress"
)

// 386 multiplexes socket calls through socketcall, which package syscall wraps: these are
// announced calls there, made only when one side has ended or once a second by the sweep.

// shutdownFD passes a half-close on.
func shutdownFD(fd, how int) { syscall.Shutdown(fd, how) }

// keepAliveFD turns TCP keep-alive on for a provider's socket (egress.KeepAliveConfig).
func keepAliveFD(fd int) {
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(egress.KeepAliveConfig.Idle/time.Second))
}
