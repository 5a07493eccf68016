package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/stats"
)

// exchange is one device request and its attempts (the provider, then its fallbacks). The
// reverse proxy finds it in the request context; every callback runs on the handler goroutine
// except the body readers the transport drives, which touch only their own fields and atomics.
type exchange struct {
	g             *Gateway
	m             *config.Main
	in            *http.Request // the device's request, carrying the exchange in its context
	w             http.ResponseWriter
	dev           *stats.Device
	rest, restRaw string // path after the prefix; restRaw only when the device escaped it oddly
	start         time.Time

	hasBody bool
	body    limitBody  // the device's body, held to max_body
	small   []byte     // a small body read whole before the first attempt; see readSmall
	usage   []byte     // small with stream_options.include_usage added; nil: not applicable
	usageOK bool       // usage has been worked out
	replay  *replayBuf // the body kept for a fallback; nil when streamed
	stream  io.Reader  // what an attempt sends when not replaying

	// The current attempt.
	p         *config.Provider
	tr        http.RoundTripper
	conn      stats.Conn
	ctx       context.Context
	timer     *time.Timer // first byte, then idle gaps: cancels ctx when it fires
	streaming atomic.Bool // the timer now measures idle gaps
	canRetry  bool        // a 429/5xx may be refused for the next provider
	err       error       // what the proxy reported; nil: the response went to the device
	cause     error       // why ctx ended, if it did
	upStatus  int         // a refused 429/5xx
	status    int         // what the device got; 0: nothing yet
	down      downBody
	strip     usageStrip // the provider's stream when this attempt asked for usage itself
	askUsage  bool       // this attempt's request asked for usage on the device's behalf
	tokIn     uint64
	tokOut    uint64
}

type exchangeKey struct{}

func exchangeOf(ctx context.Context) *exchange { return ctx.Value(exchangeKey{}).(*exchange) }

// attempt sends the request to p through tr.
func (ex *exchange) attempt(p *config.Provider, tr http.RoundTripper, canRetry bool) {
	ex.p, ex.tr, ex.canRetry = p, tr, canRetry
	ex.err, ex.cause, ex.upStatus, ex.askUsage = nil, nil, 0, false
	ex.streaming.Store(false)
	ex.conn = ex.g.o.Stats.Begin(ex.dev, p.ID)
	defer ex.conn.End()
	ex.conn.Provider.Requests.Add(1)
	ex.conn.DeviceProvider.Requests.Add(1)

	ctx, cancel := context.WithCancelCause(ex.in.Context())
	defer cancel(nil)
	ex.ctx = ctx
	streaming := &ex.streaming
	ex.timer = time.AfterFunc(orForever(ex.m.FirstByteTimeout), func() {
		if streaming.Load() {
			cancel(errStreamIdle)
		} else {
			cancel(errFirstByte)
		}
	})
	defer ex.timer.Stop()

	ex.g.proxy.ServeHTTP(ex.w, ex.in.WithContext(ctx))

	if ex.err != nil && ex.status == 0 {
		ex.cause = context.Cause(ctx)
		if ex.in.Context().Err() != nil {
			return // the device left: not the provider's fault
		}
		e := classify(p.ID, ex.err, ex.cause, ex.upStatus)
		st := e.status
		if ex.upStatus != 0 {
			st = ex.upStatus
		}
		ex.conn.Provider.AddStatus(st)
		ex.conn.DeviceProvider.AddStatus(st)
		ex.conn.Each(func(k *stats.Counters) { k.Errors.Add(1) })
		ex.g.o.Log.Warn("gateway: provider failed", "provider", p.ID, "status", st, "err", logErr(ex.err))
	}
}

// finish counts what the device got and frees the kept body.
func (ex *exchange) finish(routed *config.Provider) {
	if ex.replay != nil {
		ex.replay.release()
	}
	ex.dev.Total.AddStatus(ex.status)
	if log := ex.g.o.Log; log.Enabled(context.Background(), slog.LevelDebug) {
		id := routed.ID
		if ex.p != nil {
			id = ex.p.ID
		}
		log.LogAttrs(context.Background(), slog.LevelDebug, "gateway request",
			slog.String("device", ex.dev.Addr.String()), slog.String("provider", id),
			slog.String("method", ex.in.Method), slog.String("path", ex.in.URL.Path),
			slog.Int("status", ex.status), slog.Duration("took", time.Since(ex.start)),
			slog.Uint64("tokens_in", ex.tokIn), slog.Uint64("tokens_out", ex.tokOut))
	}
}

// keepBody reads the body up to limit bytes so that a fallback can resend it. A larger body is
// sent as read so far plus the rest, and not retried.
func (ex *exchange) keepBody(limit int64) *apiError {
	buf := getBuf()
	_, err := buf.ReadFrom(io.LimitReader(&ex.body, limit+1))
	switch {
	case ex.body.over.Load():
		putBuf(buf)
		return errTooLarge
	case err != nil:
		putBuf(buf)
		return errBadBody
	case int64(buf.Len()) <= limit:
		ex.replay = &replayBuf{buf: buf}
		ex.replay.refs.Store(1)
	default:
		// The transport may read this after the handler returns: leave it to the GC.
		ex.stream = io.MultiReader(bytes.NewReader(buf.Bytes()), &ex.body)
	}
	return nil
}

// smallBody is the largest body of known length read whole before the first attempt. The
// transport then writes the request's head and body to the provider in one write (one packet)
// instead of flushing the head alone first, as it must for a body it cannot see into; and the
// body can be resent to a fallback. Most API requests are this small.
const smallBody = 16 << 10

// readSmall reads the body of known length n (0 < n <= smallBody) into a buffer of its own. It
// is not pooled: the transport may still be writing it after the handler returned (a provider
// that answers before reading the whole request), and a reused buffer would then send another
// device's bytes.
func (ex *exchange) readSmall(n int64) *apiError {
	b := make([]byte, n)
	if _, err := io.ReadFull(&ex.body, b); err != nil {
		if ex.body.over.Load() {
			return errTooLarge
		}
		return errBadBody
	}
	ex.small = b
	return nil
}

// rewrite is the single place an outbound request is shaped: the attempt's upstream and path,
// the Host, the key, and no Accept-Encoding so that usage can be read from the body (the
// transport neither asks for nor undoes compression), nor Expect. The proxy has already dropped hop-by-hop
// and X-Forwarded-* headers.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.Out.Context())
	out, up := pr.Out, ex.p.Upstream
	u := out.URL
	u.Scheme, u.Host, u.User = up.Scheme, up.Host, nil
	u.Path = up.Path + ex.rest
	u.RawPath = ""
	if ex.restRaw != "" {
		u.RawPath = up.EscapedPath() + ex.restRaw
	}
	out.Host = ""
	applyKey(ex.p, out.Header, u)
	delete(out.Header, "Accept-Encoding")
	delete(out.Header, "Expect") // net/http already answered the device's 100-continue
	if !ex.hasBody {
		return
	}
	if b := ex.small; b != nil {
		if ex.p.StreamUsage && ex.in.Method == http.MethodPost && strings.HasSuffix(ex.rest, "/chat/completions") {
			if !ex.usageOK {
				ex.usage, ex.usageOK = withStreamUsage(b), true
			}
			if ex.usage != nil {
				b, ex.askUsage = ex.usage, true
			}
		}
		out.Body = io.NopCloser(bytes.NewReader(b)) // seen by the transport as in memory
		out.ContentLength = int64(len(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		ex.conn.AddBytes(uint64(len(ex.small)), 0) // what the device sent
		return
	}
	if rb := ex.replay; rb != nil {
		conn := ex.conn
		out.Body = rb.reader(conn)
		out.ContentLength = int64(rb.buf.Len())
		out.GetBody = func() (io.ReadCloser, error) { return rb.reader(conn), nil }
		return
	}
	out.Body = &upBody{r: ex.stream, conn: ex.conn}
}

// attemptTransport sends a request through its attempt's provider transport.
type attemptTransport struct{}

func (attemptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return exchangeOf(r.Context()).tr.RoundTrip(r)
}

// proxyError notes a failure before anything reached the device; ServeHTTP decides between the
// next provider and an error answer.
func (g *Gateway) proxyError(_ http.ResponseWriter, r *http.Request, err error) {
	exchangeOf(r.Context()).err = err
}

// modifyResponse runs when the provider's headers arrive, before anything goes to the device:
// the last moment to fail over.
func (g *Gateway) modifyResponse(res *http.Response) error {
	ex := exchangeOf(res.Request.Context())
	if !ex.timer.Stop() {
		return errFirstByte
	}
	code := res.StatusCode
	if ex.canRetry && (code == http.StatusTooManyRequests || code >= 500) {
		ex.upStatus = code
		return errRetryStatus
	}
	ex.status = code
	ex.conn.Provider.AddStatus(code)
	ex.conn.DeviceProvider.AddStatus(code)
	if code == http.StatusSwitchingProtocols {
		return nil // the proxy splices the upgraded connection itself
	}
	ce := res.Header.Get("Content-Encoding")
	ex.down = downBody{rc: res.Body, ex: ex, noScan: ce != "" && ce != "identity"}
	ex.streaming.Store(true)
	ex.timer.Reset(orForever(ex.m.StreamIdleTimeout))
	res.Body = &ex.down
	if ex.askUsage && code == http.StatusOK && strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		ex.down.uncounted = true // the device's bytes are counted as they leave the strip
		ex.strip = usageStrip{r: &ex.down, counted: ex.conn}
		res.Body = &ex.strip
	}
	return nil
}

// downBody is the provider's response body on its way to the device: it restarts the idle
// timer, counts bytes and scans for usage as the proxy reads.
type downBody struct {
	rc        io.ReadCloser
	ex        *exchange
	scan      usageScanner
	noScan    bool // compressed: nothing to read
	uncounted bool // bytes are counted further down the line
	failed    bool
	closed    bool
}

func (b *downBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	ex := b.ex
	if n > 0 {
		ex.timer.Reset(orForever(ex.m.StreamIdleTimeout))
		if !b.noScan {
			b.scan.Feed(p[:n])
		}
		if !b.uncounted {
			ex.conn.AddBytes(0, uint64(n))
		}
	}
	if err != nil && err != io.EOF && !b.failed {
		b.failed = true
		cause := context.Cause(ex.ctx)
		switch {
		case cause == errStreamIdle:
			ex.conn.Each(func(k *stats.Counters) { k.Errors.Add(1) })
			ex.g.o.Log.Warn("gateway: stream cut", "provider", ex.p.ID, "err", cause)
		case ex.in.Context().Err() != nil:
			// the device left; its context cancelled the upstream request
		default:
			ex.conn.Each(func(k *stats.Counters) { k.Errors.Add(1) })
			ex.g.o.Log.Warn("gateway: provider broke off", "provider", ex.p.ID, "err", logErr(err))
		}
	}
	return n, err
}

func (b *downBody) Close() error {
	if !b.closed {
		b.closed = true
		in, out := b.scan.Tokens()
		if in|out != 0 {
			b.ex.conn.AddTokens(in, out)
			b.ex.tokIn, b.ex.tokOut = in, out
		}
	}
	return b.rc.Close()
}

// limitBody is the device's request body, held to max_body. The transport reads it on its own
// goroutine, hence the atomics.
type limitBody struct {
	r      io.Reader
	n, max int64
	over   atomic.Bool // past max_body
	failed atomic.Bool // the device's body broke (not EOF)
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.over.Load() {
		return 0, errTooLarge
	}
	if b.max > 0 && int64(len(p)) > b.max-b.n+1 {
		p = p[:b.max-b.n+1]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.max > 0 && b.n > b.max {
		b.over.Store(true)
		return 0, errTooLarge
	}
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

// errTooLarge doubles as the read error a body past max_body returns.
func (e *apiError) Error() string { return e.message }

// upBody is what one attempt sends: it counts bytes up and releases its share of a kept body
// when the transport closes it.
type upBody struct {
	r      io.Reader
	conn   stats.Conn
	rb     *replayBuf
	closed atomic.Bool
}

func (b *upBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.conn.AddBytes(uint64(n), 0)
	}
	return n, err
}

func (b *upBody) Close() error {
	if b.closed.CompareAndSwap(false, true) && b.rb != nil {
		b.rb.release()
	}
	return nil
}

// replayBuf is a kept request body shared by the attempts that send it. The transport closes a
// request body only when done with it, possibly after the handler returned, so the buffer goes
// back to the pool when the last reader is closed.
type replayBuf struct {
	buf  *bytes.Buffer
	refs atomic.Int32
}

func (rb *replayBuf) reader(c stats.Conn) *upBody {
	rb.refs.Add(1)
	return &upBody{r: bytes.NewReader(rb.buf.Bytes()), conn: c, rb: rb}
}

func (rb *replayBuf) release() {
	if rb.refs.Add(-1) == 0 {
		putBuf(rb.buf)
	}
}

// Buffers: kept request bodies, and the proxy's copy buffers. Copy buffers are small because a
// stream holds one for its whole life and SSE events are small.
var (
	bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	copyPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}
)

const (
	copyBufSize   = 4 << 10  // one device write (net/http's 4K bufio) per read; an SSE event fits many times
	maxPooledBody = 64 << 10 // larger kept bodies are left to the GC, not hoarded
	idleConnTTL   = 90 * time.Second
	// Idle upstream connections kept per provider: enough that a burst of devices in parallel
	// reuses them instead of dialling (and TLS-handshaking) anew once it exceeds the pool;
	// idleConnTTL prunes them when the burst is over.
	maxIdlePerHost = 64
)

func getBuf() *bytes.Buffer { return bodyBufs.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		b.Reset()
		bodyBufs.Put(b)
	}
}

type copyBufs struct{}

func (copyBufs) Get() []byte { return *copyPool.Get().(*[]byte) }
func (copyBufs) Put(b []byte) {
	if cap(b) == copyBufSize {
		copyPool.Put(&b)
	}
}

func orForever(d time.Duration) time.Duration {
	if d <= 0 {
		return 1<<63 - 1
	}
	return d
}

// transports holds one pooled http.Transport per provider of one table (by Provider.Index).
type transports struct {
	t    *config.Table
	tr   []*http.Transport // nil where a provider has no upstream
	prev *transports       // the set before, for requests that began under the old table
}

func (ts *transports) closeIdle() {
	for _, tr := range ts.tr {
		if tr != nil {
			tr.CloseIdleConnections()
		}
	}
}

// transportsFor returns the transports of table t, building them when t is new; the old set's
// idle connections are closed (busy ones finish first).
func (g *Gateway) transportsFor(t *config.Table) *transports {
	if cur := g.trs.Load(); cur != nil {
		if cur.t == t {
			return cur
		}
		if cur.prev != nil && cur.prev.t == t {
			return cur.prev
		}
	}
	g.trMu.Lock()
	defer g.trMu.Unlock()
	cur := g.trs.Load()
	if cur != nil && cur.t == t {
		return cur
	}
	ts := &transports{t: t, tr: make([]*http.Transport, len(t.Providers))}
	for _, p := range t.Providers {
		if p.Upstream != nil {
			ts.tr[p.Index] = g.newTransport(&t.Main, p)
		}
	}
	if cur != nil {
		cur.closeIdle()
		ts.prev = &transports{t: cur.t, tr: cur.tr}
	}
	g.trs.Store(ts)
	return ts
}

// newTransport makes p's pooled transport: dialled through p's egress (and connect override),
// HTTP/2 when the provider offers it, no proxy from the environment, no transparent
// decompression.
func (g *Gateway) newTransport(m *config.Main, p *config.Provider) *http.Transport {
	timeout, dial := m.ConnectTimeout, g.o.Dial
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p.Connect != "" {
				addr = p.Connect
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			if dial != nil {
				return dial(ctx, p, network, addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			RootCAs:            g.o.RootCAs,
			MinVersion:         tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		},
		TLSHandshakeTimeout:    timeout,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true,
		MaxIdleConns:           4 * maxIdlePerHost,
		MaxIdleConnsPerHost:    maxIdlePerHost,
		IdleConnTimeout:        idleConnTTL,
		MaxResponseHeaderBytes: 256 << 10,
		HTTP2:                  &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
}
