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
// as idle). A connection silent both ways is closed between idle and 2×idle.
func splice(client, upstream net.Conn, idle time.Duration) (up, down int64) {
	var idleUp, idleDown atomic.Bool
	done := make(chan int64, 1)
	go func() { done <- copyHalf(client, upstream, idle, &idleDown, &idleUp) }() // provider → device
	up = copyHalf(upstream, client, idle, &idleUp, &idleDown)
	down = <-done
	return up, down
}

// copyHalf copies src to dst. A read error other than EOF (reset, both directions idle) closes
// both connections so the other direction ends too.
//
// It is a named function so goroutine dumps of a busy relay read well.
func copyHalf(dst, src net.Conn, idle time.Duration, mine, other *atomic.Bool) int64 {
	var total int64
	for {
		deadline := time.Now().Add(idle)
		_ = src.SetReadDeadline(deadline)
		_ = dst.SetWriteDeadline(deadline)
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
			return total
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && !(n == 0 && other.Load()) {
			continue
		}
		src.Close()
		dst.Close()
		return total
	}
}
