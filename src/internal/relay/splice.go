package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// halfCloser is what a TCP connection offers for half-close.
type halfCloser interface{ CloseWrite() error }

// splice copies both ways until both directions have ended, and returns the bytes copied from
// client to upstream and back. One direction's EOF is passed on as a half-close, so a client that
// shuts down its sending side still receives the whole response.
//
// Idle timeout: while io.Copy splices, bytes are only counted when it returns, which it does at
// each read deadline. So each direction records whether its last full deadline period moved no
// byte, and the connection is closed when both directions are idle (a finished direction counts
// as idle). A connection silent both ways is closed between idle and 2×idle. wt is the device's
// write_timeout (see copyHalf).
func splice(client, upstream net.Conn, idle, wt time.Duration) (up, down int64) {
	var idleUp, idleDown atomic.Bool
	done := make(chan int64, 1)
	go func() { // provider → device
		n, _ := copyHalf(client, upstream, idle, wt, &idleDown, &idleUp)
		done <- n
	}()
	up, _ = copyHalf(upstream, client, idle, 0, &idleUp, &idleDown)
	down = <-done
	return up, down
}

// copyHalf copies src to dst. A read error other than EOF (reset, both directions idle) closes
// both connections so the other direction ends too. With wt > 0, a round in which dst took no
// byte for wt while a write waited on it (a device that stopped reading) closes both too, and
// stalled says so.
//
// It is a named function so goroutine dumps of a busy relay read well.
func copyHalf(dst, src net.Conn, idle, wt time.Duration, mine, other *atomic.Bool) (total int64, stalled bool) {
	for {
		start := time.Now()
		deadline := start.Add(idle)
		_ = src.SetReadDeadline(deadline)
		if wt > 0 && wt < idle {
			_ = dst.SetWriteDeadline(start.Add(wt))
		} else {
			_ = dst.SetWriteDeadline(deadline)
		}
		n, err := io.Copy(dst, src) // *net.TCPConn on both sides: splice(2)
		total += n
		mine.Store(n == 0)
		if err == nil { // EOF from src: pass the half-close on
			mine.Store(true)
			if hc, ok := dst.(halfCloser); ok {
				_ = hc.CloseWrite()
			} else {
				dst.Close()
			}
			return total, false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Only the write deadline can have passed before idle: a write waited wt in vain.
			stalled = n == 0 && wt > 0 && time.Since(start) < idle
			if !stalled && !(n == 0 && other.Load()) {
				continue
			}
		}
		src.Close()
		dst.Close()
		return total, stalled
	}
}
