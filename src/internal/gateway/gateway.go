// Package gateway is airelay's HTTP gateway. A device sends plain HTTP to the router, like
// http://router:8080/openai/v1/chat/completions, and the gateway forwards it over HTTPS to the
// provider whose prefix starts the path, with the router's key put on it, and streams the answer
// back as the provider writes it.
//
//	g := gateway.New(gateway.Options{Table: current.Load, Stats: reg, Dial: egress.Dial, MAC: neigh.Lookup, Log: log})
//	go g.Serve(ln)         // once per listener
//	…
//	g.Shutdown(ctx)        // stop accepting; open streams finish until ctx ends
//
// It owns: routing by path prefix, access checks, key injection (key_policy), streaming both
// ways (httputil.ReverseProxy; streams flushed on every write), pooled upstream transports per provider
// (HTTP/2 when offered, rebuilt when the table changes), failover to fallback providers before
// the first byte reaches the device, timeouts and size limits, usage counting (requests, status
// classes, bytes, and tokens scanned from the bytes as they pass) and its own errors in the
// OpenAI JSON shape. It does not load config, resolve names, choose egress or open listeners:
// the service hands it the current table, a Dial function and listeners. See README.md.
package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airelay/airelay/src/internal/config"
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
	// RootCAs verifies providers; nil: the system roots.
	RootCAs *x509.CertPool
	Log     *slog.Logger
}

// Gateway serves the HTTP gateway. Make one with New.
type Gateway struct {
	o     Options
	proxy httputil.ReverseProxy

	trMu sync.Mutex
	trs  atomic.Pointer[transports]

	mu      sync.Mutex
	servers map[*http.Server]struct{}
	closing bool
}

// New returns a gateway; it opens nothing until Serve.
func New(o Options) *Gateway {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Stats == nil {
		o.Stats = stats.New()
	}
	g := &Gateway{o: o, servers: map[*http.Server]struct{}{}}
	g.proxy = httputil.ReverseProxy{
		Rewrite:   g.rewrite,
		Transport: attemptTransport{},
		// 0: ReverseProxy itself flushes every write of SSE and of bodies of unknown length
		// (streams), while a body of known length goes out in as few writes as net/http's
		// buffer allows. Flushing those too cost half the gateway's CPU in write syscalls.
		FlushInterval:  0,
		BufferPool:     copyBufs{},
		ErrorHandler:   g.proxyError,
		ModifyResponse: g.modifyResponse,
		ErrorLog:       slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	return g
}

// Serve accepts devices on ln until Shutdown, at most max_conns connections at once. Header
// size and header read time come from the table current when it starts. It returns nil after Shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	m := g.o.Table().Main
	srv := &http.Server{
		Handler:                      g,
		ReadHeaderTimeout:            m.HeaderTimeout,
		IdleTimeout:                  m.IdleTimeout,
		MaxHeaderBytes:               int(m.MaxHeaderBytes),
		ConnContext:                  connContext,
		ErrorLog:                     slog.NewLogLogger(g.o.Log.Handler(), slog.LevelWarn),
		DisableGeneralOptionsHandler: true,
	}
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return http.ErrServerClosed
	}
	g.servers[srv] = struct{}{}
	g.mu.Unlock()
	err := srv.Serve(newLimitListener(ln, func() int { return g.o.Table().Main.MaxConns }))
	g.mu.Lock()
	delete(g.servers, srv)
	g.mu.Unlock()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets requests in progress (streams too) finish until ctx ends,
// then cuts what is left, which cancels their upstream requests.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closing = true
	srvs := make([]*http.Server, 0, len(g.servers))
	for s := range g.servers {
		srvs = append(srvs, s)
	}
	g.mu.Unlock()
	errs := make([]error, len(srvs))
	var wg sync.WaitGroup
	for i, s := range srvs {
		wg.Go(func() {
			if err := s.Shutdown(ctx); err != nil {
				errs[i] = err
				s.Close()
			}
		})
	}
	wg.Wait()
	if ts := g.trs.Load(); ts != nil {
		ts.closeIdle()
	}
	return errors.Join(errs...)
}

// connInfo is what the gateway knows of a device connection; HTTP/1 serves one request at a
// time per connection, so it needs no lock.
type connInfo struct {
	addr netip.Addr
	mac  net.HardwareAddr
}

type connKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ci.addr = ta.AddrPort().Addr().Unmap()
	} else if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		ci.addr = ap.Addr().Unmap()
	}
	return context.WithValue(ctx, connKey{}, ci)
}

// device returns the device's address and MAC; the MAC is looked up once per connection (again
// while unknown).
func (g *Gateway) device(r *http.Request) (netip.Addr, net.HardwareAddr) {
	ci, ok := r.Context().Value(connKey{}).(*connInfo)
	if !ok {
		ci = &connInfo{}
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ci.addr = ap.Addr().Unmap()
		}
	}
	if ci.mac == nil && g.o.MAC != nil && ci.addr.IsValid() {
		ci.mac = g.o.MAC(ci.addr)
	}
	return ci.addr, ci.mac
}

// ServeHTTP routes one device request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.o.Table()
	addr, mac := g.device(r)
	dev := g.o.Stats.Device(addr)
	dev.SetMAC(mac)
	dev.Total.Requests.Add(1)

	p, rest := t.Route(r.URL.Path)
	if p == nil {
		dev.Total.AddStatus(errNoRoute.status)
		errNoRoute.write(w)
		return
	}
	if hasDotSegment(r.URL.Path) {
		g.refuse(w, dev, p, errBadPath, false)
		return
	}
	client := t.ClientFor(addr, mac)
	if !t.Access(client, p) {
		g.refuse(w, dev, p, errDenied, true)
		return
	}
	m := &t.Main
	if m.MaxBody > 0 && r.ContentLength > m.MaxBody {
		g.refuse(w, dev, p, errTooLarge, false)
		return
	}

	ex := &exchange{g: g, m: m, w: w, dev: dev, rest: rest, start: time.Now()}
	if r.URL.RawPath != "" {
		ex.restRaw, _ = strings.CutPrefix(r.URL.RawPath, p.Prefix)
	}
	ex.in = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
	ex.body.r, ex.body.max = r.Body, m.MaxBody
	ex.hasBody = r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	defer ex.finish(p)

	replayable := !ex.hasBody
	if ex.hasBody {
		ex.stream = &ex.body
		var e *apiError
		switch {
		case r.ContentLength > 0 && r.ContentLength <= smallBody && r.ContentLength <= m.MaxBody:
			e = ex.readSmall(r.ContentLength)
			replayable = m.RetryBody > 0 && r.ContentLength <= m.RetryBody
		case len(p.Fallback) > 0 && m.RetryBody > 0 && r.ContentLength <= m.RetryBody:
			// Keep the body for a fallback only when there is one and the body may fit.
			e = ex.keepBody(m.RetryBody)
			replayable = ex.replay != nil
		}
		if e != nil {
			g.refuseStatus(dev, p, e)
			ex.status = e.status
			e.write(w)
			return
		}
	}

	ts := g.transportsFor(t)
	var last *config.Provider
	for i := 0; i <= len(p.Fallback); i++ {
		q := p
		if i > 0 {
			q = p.Fallback[i-1]
			if !t.Access(client, q) || ts.tr[q.Index] == nil {
				continue
			}
		}
		if last != nil {
			g.o.Log.Info("gateway: trying fallback", "provider", last.ID, "fallback", q.ID, "err", logErr(ex.err))
		}
		more := replayable && hasNext(t, client, ts, p, i)
		ex.attempt(q, ts.tr[q.Index], more)
		last = q
		if ex.err == nil || ex.status != 0 || !more || !g.retryable(ex) {
			break
		}
	}
	if ex.err == nil || ex.status != 0 && ex.status != http.StatusSwitchingProtocols {
		return
	}
	var e *apiError
	switch {
	case ex.body.over.Load():
		e = errTooLarge
	case r.Context().Err() != nil:
		return // the device went away; nobody to tell
	case ex.body.failed.Load():
		e = errBadBody
	default:
		e = classify(last.ID, ex.err, ex.cause, ex.upStatus)
	}
	ex.status = e.status
	e.write(w)
}

// hasNext reports whether a fallback after position i may be tried.
func hasNext(t *config.Table, c *config.Client, ts *transports, p *config.Provider, i int) bool {
	for _, q := range p.Fallback[i:] {
		if t.Access(c, q) && ts.tr[q.Index] != nil {
			return true
		}
	}
	return false
}

// retryable reports whether a failed attempt may go to the next provider: not when the device
// left, its body broke or was too large.
func (g *Gateway) retryable(ex *exchange) bool {
	return ex.in.Context().Err() == nil && !ex.body.over.Load() && !ex.body.failed.Load()
}

// refuse answers without asking a provider, counting the request on p.
func (g *Gateway) refuse(w http.ResponseWriter, dev *stats.Device, p *config.Provider, e *apiError, denied bool) {
	c := g.o.Stats.Begin(dev, p.ID)
	c.Provider.Requests.Add(1)
	c.DeviceProvider.Requests.Add(1)
	if denied {
		c.Each(func(k *stats.Counters) { k.Denied.Add(1) })
	}
	c.Each(func(k *stats.Counters) { k.AddStatus(e.status) })
	c.End()
	e.write(w)
}

// refuseStatus counts an answer given after the request began but before any attempt.
func (g *Gateway) refuseStatus(dev *stats.Device, p *config.Provider, e *apiError) {
	c := g.o.Stats.Begin(dev, p.ID)
	c.Provider.Requests.Add(1)
	c.DeviceProvider.Requests.Add(1)
	c.Provider.AddStatus(e.status)
	c.DeviceProvider.AddStatus(e.status)
	c.End()
}

// hasDotSegment reports a "." or ".." path segment, which upstreams would resolve differently.
func hasDotSegment(p string) bool {
	for p != "" {
		seg := p
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
