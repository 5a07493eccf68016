// Package relay routes TLS connections by the SNI of their ClientHello and splices them to the
// real provider, end to end encrypted: airelay never terminates TLS here and holds no
// certificate.
//
// Per connection: count it for its device (its MAC, else its IPv4 address or IPv6 /64; past
// max_conns_per_device it is closed), read the ClientHello within a size bound and a deadline,
// match its name against the frozen table, check the device's access, dial the provider
// through its egress, write the peeked bytes, then hand both sockets to the poller (poller_linux.go): one goroutine
// for all open connections, moving their bytes with splice(2), never through user space, so an
// open connection costs no goroutine. (Elsewhere than Linux, two goroutines copy each.) Unknown or missing names go to
// tls_fallback (the router's own HTTPS) or are closed with a TLS alert, as are connections whose
// provider cannot be reached. This package does not listen, resolve or
// choose egress itself: the service hands it listeners and a Dial function.
package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airelay/airelay/src/internal/access"
	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/egress"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/sni"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/internal/usage"
)

// Relay serves the SNI relay. Fields are set before the first Serve and not changed after.
type Relay struct {
	Table func() *config.Table
	Stats *stats.Registry
	// Dial connects to a provider; addr is host:port (the SNI name and 443, or the provider's
	// connect override). It may leave TCP keep-alive off: the relay turns it on
	// (egress.KeepAliveConfig) itself, off the handshake's path (the poller's sweep).
	Dial func(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error)
	MAC  func(netip.Addr) net.HardwareAddr // neighbour lookup; nil → none
	// Direct, when set, lets the relay connect to a provider itself (setup_linux.go): the
	// addresses to try for addr in order and the interface to bind to ("" none); ok false
	// when the provider's egress is a proxy, and Dial is used.
	Direct func(ctx context.Context, p *config.Provider, network, addr string) (to []netip.AddrPort, iface string, ok bool, err error)
	// Guard adds schedules and daily quotas to the client rules; nil: the rules alone.
	Guard *access.Guard
	Log   *logging.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	lsocks    map[*sock]struct{} // listening sockets serveRaw waits for: Shutdown wakes them
	conns     map[any]usage.ID   // open connections (*net.TCPConn, *rawConn), by the device they count for
	perDevice map[usage.ID]int   // open connections per device, for max_conns_per_device
	active    atomic.Int64
	slot      chan struct{} // signalled when a connection ends, for max_conns
	closing   atomic.Bool
	forced    atomic.Bool  // Shutdown's deadline passed: what is left is closed
	capLogged atomic.Int64 // when a refusal past max_conns_per_device was last logged (unix ns)
}

// testHookSocket, when set (by tests), is called with each provider socket the relay opens
// itself (setup_linux.go), before it connects.
var testHookSocket atomic.Pointer[func(fd int)] // atomic: the test sets it, then connects

// helloBufs holds read buffers for ClientHellos; a buffer is held only until the hello is
// forwarded, so a handful serve any number of established connections.
var helloBufs = sync.Pool{New: func() any { b := make([]byte, sni.MaxHello+5*sni.MaxRecords); return &b }}

// TLS fatal alerts, so that a device's error says why its connection ended: access_denied(49)
// for a device the rules refuse, unrecognized_name(112) for a name the relay does not serve,
// internal_error(80) when the provider (or the router's own server) cannot be reached.
var (
	deniedAlert        = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49}
	unrecognizedAlert  = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112}
	internalErrorAlert = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80}
	alertWriteTimeout  = time.Second
)

// alert sends a TLS alert before the connection is closed; a device that does not take it
// within a second does not get it.
func alert(c net.Conn, a []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(alertWriteTimeout))
	_, _ = c.Write(a)
}

func (r *Relay) init() {
	r.mu.Lock()
	if r.listeners == nil {
		r.listeners = map[net.Listener]struct{}{}
		r.lsocks = map[*sock]struct{}{}
		r.conns = map[any]usage.ID{}
		r.perDevice = map[usage.ID]int{}
		r.slot = make(chan struct{}, 1)
	}
	r.mu.Unlock()
}

// Serve accepts connections on ln until ln is closed or Shutdown is called.
func (r *Relay) Serve(ln net.Listener) error {
	r.init()
	r.mu.Lock()
	r.listeners[ln] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.listeners, ln)
		r.mu.Unlock()
	}()
	if tl, ok := ln.(*net.TCPListener); ok {
		if served, err := r.serveRaw(tl); served {
			return err
		}
	}
	var backoff time.Duration
	for {
		r.waitSlot()
		c, err := ln.Accept()
		if err != nil {
			if r.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if backoff = acceptBackoff(err, backoff); backoff > 0 {
				r.Log.Warn("relay accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		tc, ok := c.(*net.TCPConn)
		if !ok { // only TCP listeners are handed to the relay
			c.Close()
			continue
		}
		r.track(tc, true)
		go r.handle(tc)
	}
}

// waitSlot waits while max_conns connections are open: new ones wait in the kernel's queue.
func (r *Relay) waitSlot() {
	for r.active.Load() >= int64(r.Table().Main.MaxConns) && !r.closing.Load() {
		select {
		case <-r.slot:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// acceptBackoff is how long to wait before accepting again after err, last the wait before;
// 0: err is not worth retrying.
func acceptBackoff(err error, last time.Duration) time.Duration {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
		return min(max(2*last, 5*time.Millisecond), time.Second)
	}
	return 0
}

// isTemporary reports accept errors worth retrying (EMFILE, ENFILE, ECONNABORTED…).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (r *Relay) track(c any, add bool) {
	r.mu.Lock()
	if add {
		r.conns[c] = usage.ID{}
		r.active.Add(1)
	} else if id, ok := r.conns[c]; ok {
		delete(r.conns, c)
		r.active.Add(-1)
		if id.Valid() {
			if n := r.perDevice[id] - 1; n > 0 {
				r.perDevice[id] = n
			} else {
				delete(r.perDevice, id)
			}
		}
	}
	r.mu.Unlock()
	if !add {
		select {
		case r.slot <- struct{}{}:
		default:
		}
	}
}

// claim counts open connection c for device id; false when the device already has max open
// connections (max_conns_per_device), and c is not counted for it.
func (r *Relay) claim(c any, id usage.ID, max int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.conns[c]; !ok || max > 0 && r.perDevice[id] >= max {
		return false
	}
	r.conns[c] = id
	r.perDevice[id]++
	return true
}

// Active returns the number of open connections.
func (r *Relay) Active() int64 { return r.active.Load() }

// Shutdown stops accepting, waits for open connections to finish until ctx ends, then closes
// what is left.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.init()
	r.closing.Store(true)
	r.mu.Lock()
	lns := make([]net.Listener, 0, len(r.listeners))
	for ln := range r.listeners {
		lns = append(lns, ln)
	}
	for ls := range r.lsocks {
		ls.kick() // its Serve sees closing, not a second later
	}
	r.mu.Unlock()
	for _, ln := range lns {
		// Not under r.mu: a listener's Close waits for serveRaw's Control to return.
		ln.Close()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for r.active.Load() > 0 {
		select {
		case <-ctx.Done():
			r.forced.Store(true) // a connection the poller is taking now is closed by pollStart
			r.mu.Lock()
			for c := range r.conns {
				switch c := c.(type) {
				case net.Conn:
					c.Close()
				case *rawConn:
					c.kick() // its setup sees forced and ends
				}
			}
			r.mu.Unlock()
			if p := getPoller(); p != nil {
				p.closeAll(r)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// handle sets a connection up (hello, match, access, dial, hello forwarded) and hands it to
// the poller or two fresh copy goroutines (see relayed), so the stack this setup grew, dial
// included, is not kept for the connection's life. setup_linux.go does the same steps on raw
// sockets; the steps they share are the methods below.
func (r *Relay) handle(c *net.TCPConn) {
	var from netip.AddrPort
	if ap, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		from = ap.AddrPort()
	}
	t := r.Table()
	mac, ok := r.admit(c, t, from)
	if !ok {
		r.drop(c)
		return
	}
	bufp := helloBufs.Get().(*[]byte)
	hello, name, err := readHello(c, *bufp, t.Main.HelloTimeout)
	if err != nil {
		r.helloFailed(from, err)
		helloBufs.Put(bufp)
		r.drop(c)
		return
	}
	r.proceed(c, t, from, mac, bufp, hello, name)
}

// proceed is handle past the ClientHello (in bufp): on to the provider, tls_fallback or an
// alert. It owns c and bufp.
func (r *Relay) proceed(c *net.TCPConn, t *config.Table, from netip.AddrPort, mac net.HardwareAddr, bufp *[]byte, hello []byte, name string) {
	p := r.match(t, name)
	if p == nil {
		r.fallback(c, t, hello, name, from)
		helloBufs.Put(bufp)
		r.drop(c)
		return
	}
	sc, dec, ok := r.decide(t, p, from, mac, name)
	if !ok {
		alert(c, deniedAlert)
		helloBufs.Put(bufp)
		r.drop(c)
		return
	}
	r.dialGo(c, t, p, from, name, sc, dec, bufp, hello)
}

// dialGo dials p with r.Dial, forwards the hello and starts the relayed connection. It owns c,
// sc and bufp (back to the pool once the hello is sent, or on failure).
func (r *Relay) dialGo(c *net.TCPConn, t *config.Table, p *config.Provider, from netip.AddrPort, name string, sc stats.Conn, dec access.Decision, bufp *[]byte, hello []byte) {
	defer helloBufs.Put(bufp) // hello is written (or dropped) before this returns
	addr := providerAddr(p, name)
	ctx, cancel := context.WithTimeout(context.Background(), t.Main.ConnectTimeout)
	up, err := r.Dial(ctx, p, "tcp", addr)
	cancel()
	if err != nil {
		r.dialFailed(sc, from, p, addr, err)
		alert(c, internalErrorAlert)
		r.drop(c)
		return
	}
	_ = up.SetWriteDeadline(time.Now().Add(t.Main.ConnectTimeout))
	if _, err := up.Write(hello); err != nil {
		up.Close()
		r.writeFailed(sc, p, err)
		alert(c, internalErrorAlert)
		r.drop(c)
		return
	}
	r.Log.Debug("relay: open", "client", from.Addr().String(), "provider", p.ID, "sni", name, "upstream", up.RemoteAddr().String())
	rc := r.newRelayed(c, c, up, sc, from, p, len(hello), dec)
	rc.start(t.Main.IdleTimeout, t.Main.WriteTimeout)
}

// drop closes c, a connection that is not relayed, and stops counting it.
func (r *Relay) drop(c *net.TCPConn) {
	c.Close()
	r.track(c, false)
}

// newRelayed records a connection past its setup (its key in r.conns; c and up nil when set up
// on raw sockets), with its schedule_cut timer when its window closes while it may be open.
func (r *Relay) newRelayed(key any, c *net.TCPConn, up net.Conn, sc stats.Conn, from netip.AddrPort, p *config.Provider, hello int, dec access.Decision) *relayed {
	rc := &relayed{r: r, key: key, c: c, up: up, sc: sc, from: from, provider: p.ID, up0: int64(hello)}
	if dec.CutIn > 0 {
		rc.cut = time.AfterFunc(dec.CutIn, rc.cutNow)
	}
	return rc
}

// admit counts connection c (its key in r.conns) for its device and returns the device's MAC;
// false: the device (its MAC, else its IPv4 address or IPv6 /64) already holds
// max_conns_per_device of the relay's connections, so that it cannot take every slot, and c
// is to be closed.
func (r *Relay) admit(c any, t *config.Table, from netip.AddrPort) (net.HardwareAddr, bool) {
	var mac net.HardwareAddr
	if r.MAC != nil {
		mac = r.MAC(from.Addr())
	}
	if !r.claim(c, usage.IDOf(from.Addr(), mac), t.Main.MaxConnsPerDevice) {
		if now := time.Now().UnixNano(); now-r.capLogged.Load() > int64(time.Second) {
			r.capLogged.Store(now)
			r.Log.Info("relay: device at max_conns_per_device; connection closed", "client", from.Addr().String(), "mac", macString(mac), "max", t.Main.MaxConnsPerDevice)
		}
		return mac, false
	}
	return mac, true
}

func (r *Relay) helloFailed(from netip.AddrPort, err error) {
	if errors.Is(err, sni.ErrNotTLS) || errors.Is(err, errNoData) {
		r.Log.Debug("relay: not TLS", "client", from.String(), "err", err)
	} else {
		r.Log.Info("relay: unreadable ClientHello", "client", from.String(), "err", err)
	}
}

// match is the provider serving name; nil: tls_fallback or an alert.
func (r *Relay) match(t *config.Table, name string) *config.Provider {
	if t.Main.Enabled && name != "" {
		return t.MatchHost(name)
	}
	return nil
}

// decide counts the connection for its device and provider and checks its access. false: it
// is refused, counted and logged before the device hears of it (so whoever looks after the
// device's error finds why), and sc has ended.
func (r *Relay) decide(t *config.Table, p *config.Provider, from netip.AddrPort, mac net.HardwareAddr, name string) (stats.Conn, access.Decision, bool) {
	dev := r.Stats.Device(from.Addr())
	dev.SetMAC(mac)
	client := t.ClientFor(from.Addr(), mac)
	sc := r.Stats.Begin(dev, p.ID)
	sc.Each(func(k *stats.Counters) { k.Conns.Add(1) })
	dec := r.Guard.Check(t, client, p, from.Addr(), access.Relay)
	if !dec.Allowed {
		sc.Each(func(k *stats.Counters) { k.Denied.Add(1) })
		r.Log.Info("relay: denied", "client", from.Addr().String(), "mac", macString(mac), "provider", p.ID, "sni", name, "why", dec.Code())
		sc.End()
		return sc, dec, false
	}
	return sc, dec, true
}

// dialFailed counts and logs a provider that could not be reached, and ends sc.
func (r *Relay) dialFailed(sc stats.Conn, from netip.AddrPort, p *config.Provider, addr string, err error) {
	sc.Each(func(k *stats.Counters) { k.Errors.Add(1) })
	sc.End()
	r.Log.Warn("relay: dial failed", "client", from.Addr().String(), "provider", p.ID, "addr", addr, "err", err)
}

// writeFailed counts and logs a provider that took the connection but not the hello, and
// ends sc.
func (r *Relay) writeFailed(sc stats.Conn, p *config.Provider, err error) {
	sc.Each(func(k *stats.Counters) { k.Errors.Add(1) })
	sc.End()
	r.Log.Warn("relay: upstream write failed", "provider", p.ID, "err", err)
}

// providerAddr is where a connection for name goes: the provider's connect override, else the
// name itself on 443.
func providerAddr(p *config.Provider, name string) string {
	if p.Connect != "" {
		return p.Connect
	}
	return net.JoinHostPort(name, "443")
}

// relayed is a connection past its setup: two goroutines copy it, one each way, and the one
// that ends last closes both sides and counts it. Both start fresh, with the small stack a
// blocked copy needs.
type relayed struct {
	r        *Relay
	key      any          // in r.conns
	c        *net.TCPConn // nil when set up raw (setup_linux.go)
	up       net.Conn     // nil when set up raw
	sc       stats.Conn
	from     netip.AddrPort
	provider string
	up0      int64 // the ClientHello, sent before the copy began

	idleUp, idleDown atomic.Bool
	upBytes          int64 // device → provider; written by its copier before left drops
	downBytes        int64
	left             atomic.Int32
	cut              *time.Timer            // schedule_cut; nil: none
	cutPoll          atomic.Pointer[func()] // set when the poller took the connection: how to end it there
	cutFired         atomic.Bool            // cutNow ran
}

// cutNow ends the connection when its client's schedule_cut passes: through the poller when it
// holds the sockets, else by closing them under the copiers.
func (rc *relayed) cutNow() {
	rc.cutFired.Store(true) // for pollStart, should the poller be taking the sockets right now
	if f := rc.cutPoll.Load(); f != nil {
		(*f)()
		return
	}
	if rc.c != nil {
		rc.c.Close()
		rc.up.Close()
	}
}

func (rc *relayed) start(idle, wt time.Duration) {
	if pollStart(rc, idle, wt) {
		return // the poller's sweep turns the provider's keep-alive on
	}
	if tc, ok := rc.up.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(egress.KeepAliveConfig)
	}
	rc.left.Store(2)
	go rc.copyDown(idle, wt)
	go rc.copyUp(idle)
}

// copyDown copies provider → device; a device that takes nothing for wt is cut.
func (rc *relayed) copyDown(idle, wt time.Duration) {
	var stalled bool
	rc.downBytes, stalled = copyHalf(rc.c, rc.up, idle, wt, &rc.idleDown, &rc.idleUp)
	if stalled {
		rc.sc.Each(func(k *stats.Counters) { k.WriteTimeouts.Add(1) })
		rc.r.Log.Info("relay: device took nothing for write_timeout; closed", "client", rc.from.Addr().String(), "provider", rc.provider)
	}
	rc.done()
}

// copyUp copies device → provider.
func (rc *relayed) copyUp(idle time.Duration) {
	rc.upBytes, _ = copyHalf(rc.up, rc.c, idle, 0, &rc.idleUp, &rc.idleDown)
	rc.done()
}

func (rc *relayed) done() {
	if rc.left.Add(-1) != 0 {
		return
	}
	if rc.cut != nil {
		rc.cut.Stop()
	}
	if rc.c != nil {
		rc.up.Close()
		rc.c.Close()
	}
	rc.sc.AddBytes(uint64(rc.upBytes+rc.up0), uint64(rc.downBytes))
	rc.sc.End()
	rc.r.track(rc.key, false)
	rc.r.Log.Debug("relay: closed", "client", rc.from.Addr().String(), "provider", rc.provider, "up", rc.upBytes+rc.up0, "down", rc.downBytes)
}

// fallback hands a connection that is not for a provider to tls_fallback, or closes it.
func (r *Relay) fallback(c *net.TCPConn, t *config.Table, hello []byte, name string, from netip.AddrPort) {
	if t.Main.TLSFallback == "" {
		r.Log.Debug("relay: no provider for name; closed", "client", from.String(), "sni", name)
		alert(c, unrecognizedAlert)
		return
	}
	d := net.Dialer{Timeout: t.Main.ConnectTimeout}
	up, err := d.Dial("tcp", t.Main.TLSFallback)
	if err != nil {
		r.Log.Warn("relay: fallback dial failed", "addr", t.Main.TLSFallback, "err", err)
		alert(c, internalErrorAlert)
		return
	}
	defer up.Close()
	if _, err := up.Write(hello); err != nil {
		return
	}
	splice(c, up, t.Main.IdleTimeout, t.Main.WriteTimeout)
}

var errNoData = errors.New("connection closed before any byte")

// readHello reads until buf holds a whole ClientHello and returns it with its server name.
func readHello(c net.Conn, buf []byte, timeout time.Duration) ([]byte, string, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, "", err
	}
	n := 0
	for {
		name, need, err := sni.Parse(buf[:n])
		if err != nil {
			return nil, "", err
		}
		if need == 0 {
			return buf[:n], name, c.SetReadDeadline(time.Time{})
		}
		if need > len(buf) {
			return nil, "", sni.ErrTooLarge
		}
		m, err := io.ReadAtLeast(c, buf[n:], need-n)
		n += m
		if err != nil {
			if n == 0 && errors.Is(err, io.EOF) {
				return nil, "", errNoData
			}
			return nil, "", err
		}
	}
}

func macString(m net.HardwareAddr) string {
	if m == nil {
		return ""
	}
	return m.String()
}
