// Package gateway is airelay's HTTP gateway. A device sends plain HTTP to the router, like
// http://router:8080/openai/v1/chat/completions, and the gateway forwards it to the provider
// whose prefix starts the path, with the router's key put on it, and streams the answer back as
// the provider writes it.
//
//	g := gateway.New(gateway.Options{Table: current.Load, Stats: reg, Dial: egress.Dial, MAC: neigh.Lookup, Log: log})
//	go g.Serve(ln)         // once per listener
//	…
//	g.Shutdown(ctx)        // stop accepting; open streams finish until ctx ends
//
// It owns: routing by path prefix, access checks, key injection (key_policy), streaming both
// ways, pooled kept-alive upstream connections per provider (rebuilt when the table changes),
// failover to fallback providers before the first byte reaches the device, timeouts and size
// limits, usage counting (requests, status classes, bytes, and tokens scanned from the bytes as
// they pass) and its own errors in the OpenAI JSON shape. It does not load config, resolve
// names, choose egress or open listeners: the service hands it the current table, a Dial
// function and listeners. See README.md.
//
// The data path is its own strict HTTP/1.1 (package h1), not net/http: per request it reads the
// head into a pooled buffer, routes, checks access, puts the key on, writes head and body to a
// kept-alive provider connection in one write, and passes the answer through as it arrives
// (chunked framing untouched) while scanning usage on the side — one goroutine per device
// connection, buffers from pools only while in use. h1's package doc says why not net/http or
// fasthttp; BENCHMARKS.md has the numbers.
package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airelay/airelay/src/internal/access"
	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/stats"
)

// Options is what the service hands the gateway.
type Options struct {
	// Table returns the current table (an atomic load); it is called once per request, so a
	// request sees one table from start to end.
	Table func() *config.Table
	Stats *stats.Registry
	// Dial connects to a provider through its egress; addr is host:port (the upstream's, or the
	// provider's connect override). nil: a plain net.Dialer.
	Dial func(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error)
	// MAC looks a device up in the neighbour table; nil: no MACs.
	MAC func(netip.Addr) net.HardwareAddr
	// Guard adds schedules and daily quotas to the client rules; nil: the rules alone.
	Guard *access.Guard
	// RootCAs verifies providers; nil: the system roots.
	RootCAs *x509.CertPool
	Log     *logging.Logger // nil: none
}

// Gateway serves the HTTP gateway. Make one with New.
type Gateway struct {
	o Options

	poolMu sync.Mutex
	pools  atomic.Pointer[pools]

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*devConn]struct{}
	perDev    map[devKey]int // open connections per device
	closing   atomic.Bool

	sweepMu  sync.Mutex
	sweeping map[*exchange]struct{} // streams whose devices the sweeper checks (sweep.go)
	sweeper  bool                   // the sweeper runs
}

// devKey is what counts as one device for max_conns_per_device: its MAC when the neighbour
// table knows it (so the many addresses of one IPv6 device count together), else its address.
type devKey struct {
	mac  [6]byte
	addr netip.Addr // zero when mac is set
}

func keyOf(addr netip.Addr, mac net.HardwareAddr) devKey {
	if len(mac) == 6 {
		var k devKey
		copy(k.mac[:], mac)
		return k
	}
	return devKey{addr: addr}
}

// New returns a gateway; it opens nothing until Serve.
func New(o Options) *Gateway {
	if o.Stats == nil {
		o.Stats = stats.New()
	}
	return &Gateway{o: o, listeners: map[net.Listener]struct{}{}, conns: map[*devConn]struct{}{}, perDev: map[devKey]int{}}
}

// ErrServerClosed is what Serve returns when called after Shutdown.
var ErrServerClosed = errors.New("gateway: closed")

// Serve accepts devices on ln until Shutdown, at most max_conns connections at once (read at
// every accept, so a reload changes it), each served by one goroutine. It returns nil after
// Shutdown, ErrServerClosed when called after it.
func (g *Gateway) Serve(ln net.Listener) error {
	ll := newLimitListener(ln, func() int { return g.o.Table().Main.MaxConns })
	ll.reclaim = g.reclaimIdle
	g.mu.Lock()
	if g.closing.Load() {
		g.mu.Unlock()
		return ErrServerClosed
	}
	g.listeners[ll] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, ll)
		g.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ll.Accept()
		if err != nil {
			if g.closing.Load() {
				return nil
			}
			if isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				g.o.Log.Warn("gateway: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		d := newDevConn(g, c)
		g.mu.Lock()
		if g.closing.Load() {
			g.mu.Unlock()
			c.Close()
			return nil
		}
		g.conns[d] = struct{}{}
		g.mu.Unlock()
		go d.serve()
	}
}

// isTemporary reports an accept error that an accept loop waits out (no file descriptors or
// buffers left), as net/http's does.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (g *Gateway) forget(d *devConn) {
	g.mu.Lock()
	delete(g.conns, d)
	if d.counted {
		if n := g.perDev[d.key] - 1; n > 0 {
			g.perDev[d.key] = n
		} else {
			delete(g.perDev, d.key)
		}
	}
	g.mu.Unlock()
}

// admit counts a new connection against its device's max_conns_per_device. A device already at
// its limit gets its longest-idle connection closed for the new one; when none of its
// connections is idle, admit reports false and the new one is refused.
func (g *Gateway) admit(d *devConn, limit int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	d.counted = true
	n := g.perDev[d.key]
	g.perDev[d.key] = n + 1
	if limit <= 0 || n < limit {
		return true
	}
	for {
		v := g.oldestIdle(func(c *devConn) bool { return c.counted && c.key == d.key && c != d })
		if v == nil {
			return false
		}
		if v.reclaim() {
			return true
		}
	}
}

// reclaimIdle closes an idle device connection to make room under max_conns: the longest-idle
// one of the device that holds the most connections. It reports whether there was one; with
// probe it closes nothing.
func (g *Gateway) reclaimIdle(probe bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	most := 0
	for c := range g.conns {
		if c.state.Load() == stateIdle && c.counted {
			most = max(most, g.perDev[c.key])
		}
	}
	if most == 0 {
		return false
	}
	for {
		v := g.oldestIdle(func(c *devConn) bool { return c.counted && g.perDev[c.key] == most })
		if v == nil || probe || v.reclaim() {
			return v != nil
		}
	}
}

// oldestIdle returns the idle connection that has waited longest among those ok accepts; g.mu
// is held.
func (g *Gateway) oldestIdle(ok func(*devConn) bool) *devConn {
	var v *devConn
	for c := range g.conns {
		if c.state.Load() == stateIdle && ok(c) && (v == nil || c.idleSince.Load() < v.idleSince.Load()) {
			v = c
		}
	}
	return v
}

func (g *Gateway) isClosing() bool { return g.closing.Load() }

// Shutdown stops accepting, closes idle device connections, lets requests in progress (streams
// too) finish until ctx ends, then cuts what is left, which cancels their upstream requests.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closing.Store(true)
	g.mu.Lock()
	for ln := range g.listeners {
		ln.Close()
	}
	g.mu.Unlock()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var err error
	for {
		g.mu.Lock()
		for d := range g.conns {
			if d.state.CompareAndSwap(stateIdle, stateClosed) {
				d.c.Close()
			}
		}
		left := len(g.conns)
		g.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
			err = ctx.Err()
			g.mu.Lock()
			for d := range g.conns {
				d.cut()
			}
			g.mu.Unlock()
		}
		break
	}
	if ps := g.pools.Load(); ps != nil {
		ps.close(false)
	}
	return err
}
