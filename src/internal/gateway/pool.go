package gateway

import (
	"context"
	"crypto/tls"
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
	pool   *pool
	idleAt time.Time
	armed  time.Time // the read deadline set on c
	reused bool
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

// get returns an idle connection, or nil.
func (pl *pool) get() *upConn {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for n := len(pl.idle); n > 0; n = len(pl.idle) {
		c := pl.idle[n-1]
		pl.idle[n-1] = nil
		pl.idle = pl.idle[:n-1]
		if time.Since(c.idleAt) < idleConnTTL {
			c.reused = true
			return c
		}
		c.c.Close()
	}
	return nil
}

// put keeps c for the next request, or closes it.
func (pl *pool) put(c *upConn) {
	pl.mu.Lock()
	if pl.closed || len(pl.idle) >= maxIdlePerHost {
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
	if pl.tls != nil {
		tc := tls.Client(c, pl.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		uc.c = tc
	} else if sc, ok := c.(syscall.Conn); ok {
		uc.raw, _ = sc.SyscallConn()
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
