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
	max    func() int
	open   atomic.Int64
	freed  chan struct{} // a token when a connection closes
	closed chan struct{}
	once   sync.Once
}

func newLimitListener(ln net.Listener, max func() int) *limitListener {
	return &limitListener{Listener: ln, max: max, freed: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for int(l.open.Load()) >= l.max() {
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
	l.open.Add(1)
	return &limitedConn{Conn: c, l: l}, nil
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
