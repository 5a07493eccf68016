package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/airelay/airelay/src/internal/config"
)

// Upstream connections: one pool of kept-alive HTTP/1.1 connections per provider of a table,
// plain TCP or TLS (ALPN http/1.1 only). HTTP/2 is not spoken: one request per connection at a
// time needs no stream multiplexer, no flow-control windows and no second goroutine per
// connection, and a provider's keep-alive connection costs a socket and its TLS state. A burst
// of parallel requests dials more connections, which then wait here for the next ones.

const (
	idleConnTTL = 90 * time.Second
	// Idle upstream connections kept per provider: enough that a burst of devices in parallel
	// reuses them instead of dialling (and TLS-handshaking) anew; idleConnTTL prunes them when
	// the burst is over.
	maxIdlePerHost = 64
)

// pool is one provider's idle connections.
type pool struct {
	p        *config.Provider
	addr     string // what is dialled: connect override or the upstream's host:port
	host     string // the Host header
	basePath string // the upstream's escaped path, before the device's rest
	tls      *tls.Config
	dial     func(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error)
	timeout  time.Duration // connect_timeout, TLS handshake included

	mu      sync.Mutex
	idle    []*upConn // most recently used last
	closed  bool      // a newer table's pools replaced this one: no more keeping
	pruning bool
}

// upConn is one connection to a provider.
type upConn struct {
	c      net.Conn
	raw    syscall.RawConn // the socket, for reads that hold no buffer while they wait; nil over TLS
	in     inqReader       // the reads of sock inside a RawRead that waits when they took all (readIn)
	pool   *pool
	idleAt time.Time
	armed  time.Time // the read deadline set on c
	reused bool

	// readIn's: drained, the last read took all the socket held, its close too (inqReader), so
	// the next one waits for the poller; tlsFD, the socket while tls.Conn reads it inside a
	// RawRead (nbConn reads it directly then, never waiting).
	drained bool
	tlsFD   uintptr

	// stale's read that never waits: over TLS, tls.Conn reads through sock (nbConn), which
	// answers errWouldBlock instead of waiting while noWait is set.
	sock   syscall.RawConn // the TCP socket under c; nil when the dialer gave no syscall.Conn
	noWait bool
	// check: over TLS, get left stale's check to the request's send, which makes it inside the
	// wait for the answer (sendChecked); inFD is the socket while that runs, read directly.
	check   bool
	inFD    uintptr
	nbFn    func(fd uintptr) bool // made once per connection, so a check allocates nothing
	nbBuf   []byte
	nbN     int
	nbErr   error
	scratch [1]byte
}

// stale reports whether an idle connection may not carry another request: the provider sent
// bytes after its last answer (which would be read as the next device's answer), closed it, or
// it broke. Nothing waits: only what has already arrived is looked at.
func (uc *upConn) stale() bool {
	if uc.sock == nil {
		// No socket to look at without waiting (a dialer other than egress's): not reused.
		return true
	}
	uc.noWait = true
	var n int
	var err error
	if uc.raw != nil {
		n, err = uc.readNoWait(uc.scratch[:])
	} else {
		n, err = uc.c.Read(uc.scratch[:]) // tls.Conn: buffered plaintext, records, then nbConn
	}
	uc.noWait = false
	return n > 0 || err != errWouldBlock
}

// readNoWait reads what the socket holds now; errWouldBlock when it holds nothing.
func (uc *upConn) readNoWait(p []byte) (int, error) {
	uc.nbBuf, uc.nbN, uc.nbErr = p, 0, nil
	if uc.inFD != 0 { // inside a RawRead of this socket already (sendChecked)
		uc.nbRead(uc.inFD)
	} else if err := uc.sock.Read(uc.nbFn); err != nil {
		return 0, err
	}
	uc.nbBuf = nil
	if uc.nbErr == syscall.EAGAIN {
		return 0, errWouldBlock
	}
	if uc.nbErr == nil && uc.nbN == 0 {
		return 0, io.EOF
	}
	return uc.nbN, uc.nbErr
}

func (uc *upConn) nbRead(fd uintptr) bool {
	uc.nbN, uc.nbErr = readFD(fd, uc.nbBuf)
	if uc.nbErr == syscall.EAGAIN {
		uc.nbN = 0
	}
	return true // never wait
}

// readIn reads the provider's answer inside a RawRead of its socket fd (passRaw, encode), plain
// or through tls.Conn, and never waits: errWouldBlock when the socket holds nothing now, after
// which the RawRead's function returns false and the runtime's poller says when more came. A
// read that took all the socket held is followed by that wait, not by a read that finds nothing
// (a new RawRead could not: it forgets what the poller said before it, so its first read is
// always tried).
func (uc *upConn) readIn(fd uintptr, b []byte) (int, error) {
	if uc.raw != nil {
		return uc.rawIn(fd, b)
	}
	uc.tlsFD = fd
	n, err := uc.c.Read(b)
	uc.tlsFD = 0
	if n > 0 {
		// An error that came with data comes again with the next read: tls.Conn keeps a
		// lasting one, and errWouldBlock is temporary.
		return n, nil
	}
	return 0, err
}

// rawIn reads the socket fd once unless the last read took all it held.
func (uc *upConn) rawIn(fd uintptr, b []byte) (int, error) {
	if uc.drained {
		uc.drained = false
		return 0, errWouldBlock
	}
	n, inq, err := uc.in.read(fd, b)
	switch {
	case err == syscall.EAGAIN:
		if testHookEmptyRead != nil {
			testHookEmptyRead()
		}
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	uc.drained = inq == 0
	return n, nil
}

// errWouldBlock is "nothing yet" from a read that never waits (stale's check, readIn): a
// temporary net.Error, after which tls.Conn keeps its state and reads on later.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// nbConn is the TCP connection under a tls.Conn: reads wait as usual, except in stale's check
// and inside readIn.
type nbConn struct {
	net.Conn
	uc *upConn
}

func (c nbConn) Read(p []byte) (int, error) {
	switch {
	case c.uc.noWait:
		return c.uc.readNoWait(p)
	case c.uc.tlsFD != 0:
		return c.uc.rawIn(c.uc.tlsFD, p)
	}
	return c.Conn.Read(p)
}

func newPool(g *Gateway, m *config.Main, p *config.Provider) *pool {
	u := p.Upstream
	pl := &pool{p: p, host: u.Host, basePath: strings.TrimSuffix(u.EscapedPath(), "/"), dial: g.o.Dial, timeout: m.ConnectTimeout}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	pl.addr = net.JoinHostPort(u.Hostname(), port)
	if p.Connect != "" {
		pl.addr = p.Connect
	}
	if u.Scheme == "https" {
		pl.tls = &tls.Config{
			ServerName:         u.Hostname(),
			RootCAs:            g.o.RootCAs,
			MinVersion:         tls.VersionTLS12,
			NextProtos:         []string{"http/1.1"},
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
	}
	return pl
}

// get returns an idle connection, or nil. One the provider wrote to or closed while it was idle
// is closed, never used (see stale).
func (pl *pool) get() *upConn {
	for {
		pl.mu.Lock()
		n := len(pl.idle)
		if n == 0 {
			pl.mu.Unlock()
			return nil
		}
		c := pl.idle[n-1]
		pl.idle[n-1] = nil
		pl.idle = pl.idle[:n-1]
		pl.mu.Unlock()
		if time.Since(c.idleAt) < idleConnTTL {
			if c.raw == nil && c.sock != nil {
				c.check, c.reused = true, true // over TLS: checked as the request goes (send)
				return c
			}
			if !c.stale() {
				c.reused = true
				return c
			}
		}
		c.c.Close()
	}
}

// put keeps c for the next request, or closes it.
func (pl *pool) put(c *upConn) {
	pl.mu.Lock()
	if pl.closed || len(pl.idle) >= maxIdlePerHost || c.sock == nil {
		pl.mu.Unlock()
		c.c.Close()
		return
	}
	c.idleAt = time.Now()
	pl.idle = append(pl.idle, c)
	if !pl.pruning {
		pl.pruning = true
		time.AfterFunc(idleConnTTL, pl.prune)
	}
	pl.mu.Unlock()
}

// prune closes connections idle past idleConnTTL, and comes back while any are left.
func (pl *pool) prune() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	keep := pl.idle[:0]
	for _, c := range pl.idle {
		if time.Since(c.idleAt) >= idleConnTTL {
			c.c.Close()
		} else {
			keep = append(keep, c)
		}
	}
	clear(pl.idle[len(keep):])
	pl.idle = keep
	if len(pl.idle) > 0 {
		time.AfterFunc(idleConnTTL, pl.prune)
	} else {
		pl.pruning = false
	}
}

// close closes the idle connections; with retire, connections in use are closed when they are
// done instead of kept.
func (pl *pool) close(retire bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, c := range pl.idle {
		c.c.Close()
	}
	clear(pl.idle)
	pl.idle = pl.idle[:0]
	if retire {
		pl.closed = true
	}
}

// dialConn opens a connection through the provider's egress, within connect_timeout (the TLS
// handshake included).
func (pl *pool) dialConn(ctx context.Context) (*upConn, error) {
	if pl.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pl.timeout)
		defer cancel()
	}
	var c net.Conn
	var err error
	if pl.dial != nil {
		c, err = pl.dial(ctx, pl.p, "tcp", pl.addr)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", pl.addr)
	}
	if err != nil {
		return nil, err
	}
	uc := &upConn{c: c, pool: pl}
	if sc, ok := c.(syscall.Conn); ok {
		if uc.sock, _ = sc.SyscallConn(); uc.sock != nil {
			uc.nbFn = uc.nbRead
		}
	}
	if pl.tls != nil {
		under := c
		if uc.sock != nil {
			under = nbConn{Conn: c, uc: uc}
		}
		tc := tls.Client(under, pl.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		uc.c = tc
	} else {
		uc.raw = uc.sock
	}
	return uc, nil
}

// pools holds the pools of one table (by Provider.Index).
type pools struct {
	t    *config.Table
	p    []*pool // nil where a provider has no upstream
	prev *pools  // the set before, for requests that began under the old table
}

func (ps *pools) close(retire bool) {
	for _, p := range ps.p {
		if p != nil {
			p.close(retire)
		}
	}
}

// poolsFor returns the pools of table t, building them when t is new; the old set's idle
// connections are closed (busy ones finish first, then close).
func (g *Gateway) poolsFor(t *config.Table) *pools {
	if cur := g.pools.Load(); cur != nil {
		if cur.t == t {
			return cur
		}
		if cur.prev != nil && cur.prev.t == t {
			return cur.prev
		}
	}
	g.poolMu.Lock()
	defer g.poolMu.Unlock()
	cur := g.pools.Load()
	if cur != nil && cur.t == t {
		return cur
	}
	ps := &pools{t: t, p: make([]*pool, len(t.Providers))}
	for _, p := range t.Providers {
		if p.Upstream != nil {
			ps.p[p.Index] = newPool(g, &t.Main, p)
		}
	}
	if cur != nil {
		cur.close(true)
		ps.prev = &pools{t: cur.t, p: cur.p}
	}
	g.pools.Store(ps)
	return ps
}
