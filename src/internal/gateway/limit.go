package gateway

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitListener holds Accept while max() connections are open, so devices past the limit wait
// in the kernel's accept queue (as the relay's do) instead of each costing a goroutine, buffers
// and an upstream stream. max is read at every Accept, so a reload changes it in place.
type limitListener struct {
	net.Listener
	max func() int
	// reclaim closes an idle connection to make room (with probe: only says whether one is
	// there); nil: none is ever closed.
	reclaim func(probe bool) bool
	open    atomic.Int64
	freed   chan struct{} // a token when a connection closes, or goes idle while at the limit
	closed  chan struct{}
	once    sync.Once
}

func newLimitListener(ln net.Listener, max func() int) *limitListener {
	return &limitListener{Listener: ln, max: max, freed: make(chan struct{}, 1), closed: make(chan struct{})}
}

// Accept waits while max() connections are open and none of them is idle. When some are
// idle, it takes the next device at once and closes an idle one for it (reclaim), so kept-alive
// connections nobody uses cannot keep a new device in the accept queue.
func (l *limitListener) Accept() (net.Conn, error) {
	for int(l.open.Load()) >= l.max() && (l.reclaim == nil || !l.reclaim(true)) {
		select {
		case <-l.freed:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for int(l.open.Load()) >= l.max() {
		// Past the limit: an idle connection makes room, or the new one waits for a slot.
		if l.reclaim != nil && l.reclaim(false) {
			continue
		}
		select {
		case <-l.freed:
		case <-l.closed:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	l.open.Add(1)
	return &limitedConn{Conn: c, l: l}, nil
}

// idled tells a waiting Accept that a connection went idle, when at the limit.
func (l *limitListener) idled() {
	if int(l.open.Load()) >= l.max() {
		select {
		case l.freed <- struct{}{}:
		default:
		}
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *limitListener) release() {
	l.open.Add(-1)
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}
