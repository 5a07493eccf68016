package gateway

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/airelay/airelay/src/internal/access"
	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/h1"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/stats"
)

// exchange is one device request and its attempts (the provider, then its fallbacks), all on
// the device connection's goroutine. One lives in each devConn and is reset per request.
type exchange struct {
	g      *Gateway
	d      *devConn
	t      *config.Table
	m      *config.Main   // &t.Main
	client *config.Client // the device's section; nil: none
	r      *h1.Request
	dev    *stats.Device
	path   string // the device's path, raw, for the debug log (a copy; "" without it)
	rest   string // path after the prefix: valid only until the answer's head went out
	start  time.Time
	method string // for the debug log only

	hasBody  bool
	keepConn bool        // takeBody answered: whether the connection may serve another
	cutTimer *time.Timer // schedule_cut's, stopped by finish
	body     body
	kept     *[]byte // the whole body, or its first part (partial), in memory; nil: streamed
	partial  bool    // kept holds only the start of a body that goes on streaming
	small    bool    // the body was read whole: kept holds all of it
	sent     bool    // the streamed body has been sent once: no second attempt
	// stream_usage: kept, asking for usage (usageAsk), made once for every provider with it;
	// nil: not made, or nothing to ask
	asking    *[]byte
	askingOK  bool
	askingNew bool // the edit asks for usage the device did not ask for
	ask       usageAsk

	// Usage that no provider reports is estimated from the bytes for a device with a daily
	// token quota.
	quota  bool
	upN    uint64 // body bytes the device sent
	downN  uint64 // body bytes of the answer
	events uint64 // SSE "data:" lines of the answer, counted only with quota
	sse    bool

	// The current attempt.
	p             *config.Provider
	pl            *pool
	uc            *upConn
	conn          stats.Conn
	err           error // why the attempt failed; nil: the answer went to the device
	upStatus      int   // a refused 429/5xx
	status        int   // what the device got; 0: nothing yet
	statusCounted bool  // status is in the device's counters already (countStatus)
	committed     bool  // the answer's head went to the device: no more failover
	devGone       bool  // the device left
	cut           bool  // the answer to the device was cut: close its connection
	deadline      time.Time
	timeoutErr    error
	streaming     bool
	ub            *[]byte // the provider's bytes; pooled
	ur, uw        int
	upRdFn        func(fd uintptr) bool // rawUpRead, made once per device connection
	passFn        func(fd uintptr) bool // rawPass, the same
	passMode      int                   // pass's mode, for rawPass
	passErr       error                 // what ended rawPass besides the provider's read
	sw            sweepState            // the device check of a streaming answer (sweep.go)
	enc           encodeState           // encode's, between its steps
	encFn         func(fd uintptr) bool // rawEncode, made once per device connection
	inRaw         bool                  // upFill runs inside rawEncode: it reads rawFD itself (readIn)
	rawFD         uintptr
	// A request held whole in memory for a plain provider is written from inside the RawRead
	// that waits for its answer (rawUpRead): a read is never tried before the answer can have
	// come. reqOut is the pooled buffer reqPend lies in.
	reqPend   []byte
	reqOut    *[]byte
	gotData   bool // bytes came from the provider since its read deadline last fired
	upRn      int
	upErr     error
	res       h1.Response
	headLen   int // the response head, at (*x.ub)[x.ur:]
	ch        h1.Chunked
	left      int64 // Content-Length bytes of the answer still to come
	bodyEnd   bool  // the answer's body ended cleanly
	askUsage  bool  // the answer carries usage the device did not ask for: strip it
	noScan    bool
	uncounted bool // bytes down are counted by strip
	scan      usageScanner
	strip     usageStrip
	tokIn     uint64
	tokOut    uint64
	pend      []byte // data next() returned that dataReader has not passed on yet
}

// Causes of a failed or cut attempt besides the provider's own errors.
var (
	errDeviceGone = errors.New("the device left")
	errUpgrade    = errors.New("the provider switched protocols")
	errUpHead     = errors.New("malformed response head")
)

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// handle serves the request in d.req; it reports whether the connection may serve another.
//
// Its frame, and attempt's, try's and respond's, stay on the goroutine's stack for as long as a
// stream lasts; the work around them is in functions that return first (prepare, takeBody,
// failed, noteFallback), so that the stack a waiting stream uses is small enough for the runtime to
// shrink it to 4 KiB (it halves a stack of which less than a quarter is in use).
func (g *Gateway) handle(d *devConn) bool {
	x, p, cutIn, keep := g.prepare(d)
	if x == nil {
		return keep
	}
	if cutIn > 0 {
		// schedule_cut: a stream still open that long after the window closes ends (finish
		// stops the timer)
		x.cutTimer = time.AfterFunc(cutIn, d.cut)
	}
	// finish is called, not deferred: a defer's record would stay in the frame.
	replayable, ok := x.takeBody(p)
	if !ok {
		x.finish(p)
		return x.keepConn
	}
	t, ps := x.t, g.poolsFor(x.t)
	var last *config.Provider
	for i := 0; i <= len(p.Fallback); i++ {
		q := p
		if i > 0 {
			q = p.Fallback[i-1]
			if !t.Access(x.client, q) || ps.p[q.Index] == nil {
				continue
			}
		}
		if last != nil {
			x.noteFallback(last, q)
		}
		more := replayable && hasNext(t, x.client, ps, p, i)
		x.attempt(q, ps.p[q.Index], more)
		last = q
		if x.err == nil || x.committed || !more || !x.retryable() {
			break
		}
	}
	keep = !x.cut && !x.devGone
	if !x.committed && x.err != nil {
		keep = x.failed(last)
	}
	x.finish(p)
	return keep
}

// prepare routes the request in d.req, decides its access and readies d.x for it; a nil
// exchange when it was answered here (keep: whether the connection may serve another).
//
//go:noinline
func (g *Gateway) prepare(d *devConn) (x *exchange, p *config.Provider, cutIn time.Duration, keep bool) {
	t := g.o.Table()
	r := &d.req
	mac := d.device()
	dev := d.dev
	if dev == nil || dev.Retired() { // retired: the registry made room; ask for it again
		dev = g.o.Stats.Device(d.addr)
		d.dev = dev
	} else {
		dev.Touch()
	}
	dev.SetMAC(mac)
	dev.Total.Requests.Add(1)
	bodyPending := r.Chunked || r.ContentLength > 0

	// path and rest point into the request's head, which stays put (pinned) until the answer's
	// head goes out; nothing uses them after that.
	path := unsafe.String(unsafe.SliceData(r.Path), len(r.Path))
	p, rest := t.Route(path)
	if p == nil {
		dev.Total.AddStatus(errNoRoute.status)
		return nil, nil, 0, d.reply(errNoRoute, bodyPending)
	}
	if !t.Main.Enabled {
		// option enabled '0' relays nothing: the DNS answers as if airelay were not there
		// and the relay takes no name, so no request goes on with the router's key either.
		g.refuse(dev, p, errDisabled, false)
		return nil, nil, 0, d.reply(errDisabled, bodyPending)
	}
	if hasDotSegment(path) {
		g.refuse(dev, p, errBadPath, false)
		return nil, nil, 0, d.reply(errBadPath, bodyPending)
	}
	client := d.clientFor(t, mac)
	dec := g.o.Guard.Check(t, client, p, d.addr, access.Gateway)
	if !dec.Allowed {
		e := errDenied
		if dec.Reason != access.Denied {
			e = policyError(dec, g.o.Guard.Now())
		}
		g.refuse(dev, p, e, true)
		return nil, nil, 0, d.reply(e, bodyPending)
	}
	cutIn = dec.CutIn
	m := &t.Main
	if m.MaxBody > 0 && r.ContentLength > m.MaxBody {
		g.refuse(dev, p, errTooLarge, false)
		return nil, nil, 0, d.reply(errTooLarge, true)
	}

	x = d.x
	fn, pfn, efn := x.upRdFn, x.passFn, x.encFn
	*x = exchange{} // cleared in place: a composite literal would be built on the stack first
	x.g, x.d, x.t, x.m, x.r, x.dev, x.upRdFn, x.passFn, x.encFn = g, d, t, m, r, dev, fn, pfn, efn
	x.rest, x.start, x.hasBody, x.client = rest, time.Now(), bodyPending, client
	if q := m.DefaultQuota; q.Tokens > 0 || client != nil && client.Quota.Tokens > 0 {
		x.quota = true
	}
	if g.o.Log.Enabled(logging.LevelDebug) {
		x.method, x.path = string(r.Method), strings.Clone(path)
	}
	return x, p, cutIn, true
}

// takeBody reads a small request body into memory (x.kept) and reports whether it may be sent
// again to a fallback; false when the request was answered here (x.keepConn: whether the
// connection may serve another).
//
//go:noinline
func (x *exchange) takeBody(p *config.Provider) (replayable, ok bool) {
	if !x.hasBody {
		return true, true
	}
	d, r, m := x.d, x.r, x.m
	x.body.init(d, r, m.MaxBody)
	if r.Expect100 && d.r == d.w {
		if err := d.write(continue100); err != nil {
			d.countWriteTimeout(err)
			x.keepConn = false
			return false, false
		}
	}
	var e *apiError
	switch {
	case !r.Chunked && r.ContentLength <= smallBody:
		e = x.keepBody(r.ContentLength)
		x.small = e == nil
		replayable = m.RetryBody > 0 && r.ContentLength <= m.RetryBody
	case len(p.Fallback) > 0 && m.RetryBody > 0 && (r.Chunked || r.ContentLength <= m.RetryBody):
		// Keep the body for a fallback only when there is one and the body may fit.
		e = x.keepBody(max(m.RetryBody, smallBody))
		replayable = !x.partial && int64(len(*x.kept)) <= m.RetryBody
		x.small = e == nil && !x.partial
	case r.Chunked:
		// A small chunked body is read whole too, so that it goes on with a Content-Length
		// and only once it is known to be well formed.
		e = x.keepBody(smallBody)
		x.small = e == nil && !x.partial
		replayable = x.small && m.RetryBody > 0 && int64(len(*x.kept)) <= m.RetryBody
	}
	if e != nil {
		x.g.refuseStatus(x.dev, p, e)
		x.countStatus(e.status)
		x.keepConn = d.reply(e, !x.body.done)
		return false, false
	}
	return replayable, true
}

// noteFallback logs the move to a fallback (out of handle's frame).
//
//go:noinline
func (x *exchange) noteFallback(last, q *config.Provider) {
	x.g.o.Log.Info("gateway: trying fallback", "provider", last.ID, "fallback", q.ID, "err", x.err)
}

// failed answers a request no provider answered; it reports whether the connection may serve
// another.
//
//go:noinline
func (x *exchange) failed(last *config.Provider) bool {
	var e *apiError
	switch {
	case x.body.over:
		e = errTooLarge
	case x.devGone:
		return false // nobody to tell
	case x.body.failed:
		e = errBadBody
	default:
		e = classify(last.ID, x.err, nil, x.upStatus)
	}
	x.countStatus(e.status)
	return x.d.reply(e, x.hasBody && !x.body.done)
}

// reply answers with one of the gateway's errors; a request whose body was not read closes the
// connection after it.
func (d *devConn) reply(e *apiError, closeConn bool) bool {
	closeConn = closeConn || d.req.Close
	out := getOut()
	*out = e.appendResponse(*out, closeConn)
	err := d.write(*out)
	d.countWriteTimeout(err)
	putOut(out)
	d.release()
	return err == nil && !closeConn
}

// hasNext reports whether a fallback after position i may be tried.
func hasNext(t *config.Table, c *config.Client, ps *pools, p *config.Provider, i int) bool {
	for _, q := range p.Fallback[i:] {
		if t.Access(c, q) && ps.p[q.Index] != nil {
			return true
		}
	}
	return false
}

// retryable reports whether a failed attempt may go to the next provider: not when the device
// left, its body broke or was too large.
func (x *exchange) retryable() bool {
	return !x.devGone && !x.body.over && !x.body.failed
}

// refuse answers without asking a provider, counting the request on p.
func (g *Gateway) refuse(dev *stats.Device, p *config.Provider, e *apiError, denied bool) {
	c := g.o.Stats.Begin(dev, p.ID)
	c.Provider.Requests.Add(1)
	c.DeviceProvider.Requests.Add(1)
	if denied {
		c.Each(func(k *stats.Counters) { k.Denied.Add(1) })
	}
	c.Each(func(k *stats.Counters) { k.AddStatus(e.status) })
	c.End()
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

// smallBody is the largest body of known length read whole before the first attempt: the
// request's head and body then go to the provider in one write, the body can be resent to a
// fallback, and stream_usage can look into it. Most API requests are this small.
const smallBody = 16 << 10

// keepBody reads the body into memory up to limit bytes. A larger one keeps what was read as
// its start (partial) and streams the rest, and is not retried.
func (x *exchange) keepBody(limit int64) *apiError {
	b := getOut()
	x.kept = b
	for {
		if len(*b) == cap(*b) {
			*b = append(*b, 0)[:len(*b)]
		}
		n, err := x.body.Read((*b)[len(*b):cap(*b)])
		*b = (*b)[:len(*b)+n]
		switch {
		case err == io.EOF:
			return nil
		case x.body.over:
			return errTooLarge
		case err != nil:
			return errBadBody
		case int64(len(*b)) > limit:
			x.partial = true
			return nil
		case x.body.done:
			return nil
		}
	}
}

// countStatus sets and counts the status of the gateway's own answer before it is written, so
// that a device (or a test) that has the answer finds it counted.
func (x *exchange) countStatus(status int) {
	x.status, x.statusCounted = status, true
	x.dev.Total.AddStatus(status)
}

// finish counts what the device got and frees what the request held.
func (x *exchange) finish(routed *config.Provider) {
	if x.cutTimer != nil {
		x.cutTimer.Stop()
		x.cutTimer = nil
	}
	x.dropPend()
	if x.kept != nil {
		putOut(x.kept)
		x.kept = nil
	}
	if x.asking != nil {
		putOut(x.asking)
		x.asking = nil
	}
	if x.strip.pooled != nil {
		*x.strip.pooled = x.strip.buf[:0] // kept when it did not grow past the pool's bound
		putOut(x.strip.pooled)
		x.strip = usageStrip{}
	}
	if x.ub != nil {
		putBuf(x.ub)
		x.ub = nil
	}
	x.d.release()
	if !x.statusCounted {
		x.dev.Total.AddStatus(x.status)
	}
	if log := x.g.o.Log; log.Enabled(logging.LevelDebug) {
		id := routed.ID
		if x.p != nil {
			id = x.p.ID
		}
		log.Debug("gateway request", "device", x.dev.Addr.String(), "provider", id,
			"method", x.method, "path", x.path, "status", x.status, "took", time.Since(x.start),
			"tokens_in", x.tokIn, "tokens_out", x.tokOut)
	}
}

// attempt sends the request to p through its pool and, when p answers in a way the device
// should see, passes the answer on.
func (x *exchange) attempt(p *config.Provider, pl *pool, canRetry bool) {
	x.p, x.pl = p, pl
	x.err, x.upStatus, x.askUsage, x.streaming = nil, 0, false, false
	x.conn = x.g.o.Stats.Begin(x.dev, p.ID)
	x.conn.Provider.Requests.Add(1)
	x.conn.DeviceProvider.Requests.Add(1)
	x.deadline = time.Time{} // first_byte_timeout counts from when this attempt starts
	if x.m.FirstByteTimeout > 0 {
		x.deadline = time.Now().Add(x.m.FirstByteTimeout)
	}
	x.timeoutErr = errFirstByte

	x.try(canRetry)
	if x.uc != nil {
		x.uc.c.Close()
		x.uc = nil
	}
	if x.err != nil && !x.committed && !x.devGone {
		x.attemptFailed(p)
	}
	x.conn.End()
}

// attemptFailed counts and logs a failed attempt (out of attempt's frame: see handle).
//
//go:noinline
func (x *exchange) attemptFailed(p *config.Provider) {
	e := classify(p.ID, x.err, nil, x.upStatus)
	st := e.status
	if x.upStatus != 0 {
		st = x.upStatus
	}
	x.conn.Provider.AddStatus(st)
	x.conn.DeviceProvider.AddStatus(st)
	x.conn.Each(func(k *stats.Counters) { k.Errors.Add(1) })
	x.g.o.Log.Warn("gateway: provider failed", "provider", p.ID, "status", st, "err", x.err)
}

func (x *exchange) try(canRetry bool) {
	uc := x.pl.get()
	if uc == nil {
		var err error
		if uc, err = x.pl.dialConn(context.Background()); err != nil {
			x.err = err
			return
		}
	}
	x.uc = uc
	for {
		err := x.send()
		if err == nil {
			err = x.readHead()
		}
		if err == nil {
			break
		}
		// A kept-alive connection the provider closed meanwhile: once more on a new one, when
		// the request can be sent again and nothing came back.
		if x.uc.reused && x.uw == 0 && !x.sent && !x.devGone && err != x.timeoutErr {
			x.uc.c.Close()
			x.uc = nil
			if err == errStale { // found stale as it was about to be used: the next kept one
				if x.uc = x.pl.get(); x.uc != nil {
					continue
				}
			}
			if x.uc, err = x.pl.dialConn(context.Background()); err == nil {
				continue
			}
		}
		x.err = err
		return
	}
	code := x.res.Status
	if canRetry && (code == h1.StatusTooManyRequests || code >= 500) {
		x.upStatus = code
		x.err = errRetryStatus
		return
	}
	if code == h1.StatusSwitchingProtocols {
		x.err = errUpgrade
		return
	}
	x.status = code
	x.conn.Provider.AddStatus(code)
	x.conn.DeviceProvider.AddStatus(code)
	x.respond()
}

// skipHeader names the fields never forwarded to a provider besides hop-by-hop ones: no
// Accept-Encoding, so that usage can be read from the answer; no Expect, which the gateway
// answered itself; no X-Forwarded-* or Forwarded, which would name the device.
func skipHeader(name []byte) bool {
	if len(name) > 12 && h1.EqualFold(name[:12], "x-forwarded-") {
		return true
	}
	switch len(name) {
	case len("expect"):
		return h1.EqualFold(name, "expect")
	case len("forwarded"):
		return h1.EqualFold(name, "forwarded")
	case len("accept-encoding"):
		return h1.EqualFold(name, "accept-encoding")
	}
	return false
}

// send writes the request to the provider: its head, and the body with it when in memory, in
// one write; a streamed body follows as the device sends it.
func (x *exchange) send() error {
	r, pl, p := x.r, x.pl, x.p
	x.ur, x.uw = 0, 0
	x.dropPend()
	out := getOut()
	defer func() {
		if out != nil {
			putOut(out)
		}
	}()
	b := append(*out, r.Method...)
	b = append(b, ' ')
	b = append(b, pl.basePath...)
	b = append(b, x.rest...)
	if len(pl.basePath)+len(x.rest) == 0 {
		b = append(b, '/')
	}
	withKey := routerKey(p, r)
	if len(r.Query) > 0 {
		if _, has := queryKey(r.Query); withKey && has {
			b = append(b, '?')
			n := len(b)
			if b = appendQueryWithoutKey(b, r.Query); len(b) == n {
				b = b[:n-1]
			}
		} else {
			b = append(b, '?')
			b = append(b, r.Query...)
		}
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, pl.host...)
	b = append(b, '\r', '\n')
	for _, h := range r.Headers {
		if r.Hop(h.Name) || skipHeader(h.Name) || withKey && isKeyHeader(h.Name) {
			continue
		}
		b = append(b, h.Name...)
		b = append(b, ':', ' ')
		b = append(b, h.Value...)
		b = append(b, '\r', '\n')
	}
	if withKey {
		b = appendKeyHeader(b, p)
	}
	var inMem []byte
	// stream_usage: a completion request is made to ask for its usage (usageAsk); a body
	// streamed upstream is edited as it passes, and goes chunked (its length may change).
	asks := x.hasBody && p.StreamUsage && string(r.Method) == "POST" && hasSuffix(x.rest, "/completions")
	switch {
	case !x.hasBody:
		if r.ContentLength == 0 {
			b = append(b, "Content-Length: 0\r\n"...)
		}
	case x.kept != nil && !x.partial:
		inMem = *x.kept
		if asks {
			x.makeAsking(inMem)
			if x.asking != nil {
				inMem, x.askUsage = *x.asking, x.askingNew
			}
		}
		b = append(b, "Content-Length: "...)
		b = appendInt(b, len(inMem))
		b = append(b, '\r', '\n')
	case r.Chunked || asks:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		b = append(b, "Content-Length: "...)
		b = appendInt(b, int(r.ContentLength))
		b = append(b, '\r', '\n')
	}
	b = append(b, '\r', '\n')
	b = append(b, inMem...)
	*out = b
	whole := inMem != nil || !x.hasBody
	switch {
	case x.uc.raw != nil && whole:
		// Written by rawUpRead, inside the RawRead that waits for the answer.
		x.reqPend, x.reqOut, out = b, out, nil
	case x.uc.check && whole:
		x.armRead()
		if err := x.sendChecked(b); err != nil {
			return err
		}
	default:
		if x.uc.check {
			if x.uc.check = false; x.uc.stale() {
				return errStale
			}
		}
		if _, err := x.uc.c.Write(b); err != nil {
			return err
		}
	}
	if inMem != nil {
		x.conn.AddBytes(uint64(len(*x.kept)), 0) // what the device sent
		x.upN = uint64(len(*x.kept))
	} else if x.hasBody {
		if err := x.sendBody(asks); err != nil {
			return err
		}
		x.askUsage = asks && x.ask.asked()
	}
	x.armRead()
	return nil
}

// errStale: a kept connection the provider sent bytes on, or closed, after its last answer
// (see upConn.stale); try dials a new one.
var errStale = errors.New("the kept connection is stale")

// sendChecked makes a kept TLS connection's check (stale) and writes the request inside one
// RawRead of its socket, then waits there for the answer: the check's read is the only one
// before the answer, where a check, the write and a read that finds nothing were three calls.
// RawRead begins by making the runtime's poller forget what it saw of the socket, so whatever
// comes after the check (the answer) wakes it.
func (x *exchange) sendChecked(b []byte) error {
	uc := x.uc
	uc.check = false
	var werr error
	stale, wrote := false, false
	err := uc.sock.Read(func(fd uintptr) bool {
		if wrote {
			return true // the answer came (or the deadline fired, or the socket closed)
		}
		uc.inFD = fd // stale's read goes to fd directly: this RawRead holds the socket's read lock
		if stale = uc.stale(); !stale {
			_, werr = uc.c.Write(b)
		}
		uc.inFD = 0
		wrote = !stale && werr == nil
		return !wrote
	})
	switch {
	case stale:
		return errStale
	case werr != nil:
		return werr
	case !wrote:
		return err
	}
	// A deadline that fired while it waited is the answer's read's to handle (upFill).
	return nil
}

// sendBody streams the rest of the device's body to the provider (chunk by chunk when the
// device sent it chunked, or when ask edits it), after the part kept in memory.
func (x *exchange) sendBody(ask bool) error {
	x.sent = true
	if x.m.FirstByteTimeout > 0 {
		x.uc.c.SetWriteDeadline(x.deadline)
		defer x.uc.c.SetWriteDeadline(time.Time{})
	}
	chunked := x.r.Chunked || ask
	x.ask = usageAsk{}
	buf := getBuf()
	defer putBuf(buf)
	b := *buf
	const room = 18 // a chunk's size line before the data, CRLF after
	var ob *[]byte  // with ask: the edited bytes, after room for the size line
	if ask {
		ob = getOut()
		defer func() { putOut(ob) }()
	}
	if x.kept != nil { // the start of the body, read while it might have fitted
		kept := *x.kept
		x.conn.AddBytes(uint64(len(kept)), 0)
		x.upN += uint64(len(kept))
		if ask {
			*ob = x.ask.rewrite((*ob)[:0], kept)
			kept = *ob
		}
		var err error
		if chunked {
			_, err = x.uc.c.Write(h1.AppendChunkHeader(b[:0], len(kept)))
		}
		if err == nil {
			_, err = x.uc.c.Write(kept)
		}
		if err == nil && chunked {
			_, err = x.uc.c.Write(crlf)
		}
		if err != nil {
			return err
		}
	}
	for {
		// frame is the data at frame[room:room+n], with room before it for a chunk's size line
		// and two bytes after it for its CRLF.
		var frame []byte
		var n int
		var err error
		if ask {
			// Read into b, edit into ob after the room: what an edit adds may not fit in b.
			n, err = x.body.Read(b)
			x.conn.AddBytes(uint64(n), 0)
			x.upN += uint64(n)
			o := x.ask.rewrite((*ob)[:room], b[:n])
			if err == io.EOF {
				o = x.ask.finish(o)
			}
			n = len(o) - room
			*ob = append(o, '\r', '\n')
			frame = *ob
		} else {
			n, err = x.body.Read(b[room : len(b)-2])
			x.conn.AddBytes(uint64(n), 0)
			x.upN += uint64(n)
			frame = b
		}
		if n > 0 {
			out := frame[room : room+n]
			if chunked {
				var tmp [16]byte
				hdr := h1.AppendChunkHeader(tmp[:0], n)
				start := room - len(hdr)
				copy(frame[start:], hdr)
				frame[room+n], frame[room+n+1] = '\r', '\n'
				out = frame[start : room+n+2]
			}
			if _, werr := x.uc.c.Write(out); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			if chunked {
				_, err := x.uc.c.Write(lastChunk)
				return err
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// makeAsking makes, once per request, the body in memory asking for its usage: x.asking, nil
// when it asks nothing new (not a stream, or the device asked itself).
func (x *exchange) makeAsking(body []byte) {
	if x.askingOK {
		return
	}
	x.askingOK = true
	x.ask.prescan(body)
	if !x.ask.streamNotFalse() {
		return
	}
	out := getOut()
	*out = x.ask.finish(x.ask.rewrite(*out, body))
	if !x.ask.edited {
		putOut(out)
		return
	}
	x.asking, x.askingNew = out, x.ask.asked()
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

func appendInt(b []byte, n int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// armRead sets the provider connection's read deadline: the current limit (first byte, then
// stream idle) or the next check on the device, whichever comes first.
//
// A deadline already set that comes first is kept: it fires, the limit is checked and the
// deadline set again. So a busy connection changes its timer about once per probeEvery, not
// once per request.
func (x *exchange) armRead() {
	now := time.Now()
	next := now.Add(probeEvery)
	if !x.deadline.IsZero() && x.deadline.Before(next) {
		next = x.deadline
	}
	if a := x.uc.armed; a.After(now) && !a.After(next) {
		return
	}
	x.uc.armed = next
	x.uc.c.SetReadDeadline(next)
}

// fresh notes that data came from the provider. A stream in the sweep moves its
// stream_idle_timeout on once half of it has gone (so its deadline never fires while it flows).
func (x *exchange) fresh() {
	x.gotData = true
	if !x.sw.on {
		return
	}
	if !x.sw.flowing.Load() {
		x.sw.flowing.Store(true)
	}
	idle := x.m.StreamIdleTimeout
	if idle <= 0 {
		return
	}
	now := time.Now()
	if x.deadline.Sub(now) >= idle/2 {
		return
	}
	x.deadline = now.Add(idle)
	x.gotData = false
	x.uc.armed = x.deadline
	x.uc.c.SetReadDeadline(x.deadline)
}

// upFill reads more of the provider's answer into x.ub. While it waits it checks every
// probeEvery that the device is still there, and holds to the first-byte or stream-idle limit.
func (x *exchange) upFill(maxHead int) error {
	if x.ub != nil && x.ur == x.uw {
		x.ur, x.uw = 0, 0
	}
	if x.ub != nil && x.uw == len(*x.ub) {
		if x.ur > 0 {
			x.uw = copy(*x.ub, (*x.ub)[x.ur:x.uw])
			x.ur = 0
		} else {
			n := min(2*len(*x.ub), maxHead)
			if n <= len(*x.ub) {
				return errUpHead
			}
			b := make([]byte, n)
			copy(b, (*x.ub)[:x.uw])
			putBuf(x.ub)
			x.ub = &b
		}
	}
	if x.streaming && !x.sw.on {
		x.startSweep()
	}
	for {
		if x.sw.swept.Load() {
			x.devGone = true
			return errDeviceGone
		}
		var err error
		if x.inRaw {
			if x.ub == nil {
				x.ub, x.ur, x.uw = getBuf(), 0, 0
			}
			n, err := x.uc.readIn(x.rawFD, (*x.ub)[x.uw:])
			if err != nil {
				if err == errWouldBlock && x.ur == x.uw {
					putBuf(x.ub)
					x.ub = nil
				}
				return err
			}
			x.uw += n
			x.fresh()
			return nil
		}
		if x.uc.raw != nil {
			x.upRn, x.upErr = 0, nil
			err = x.uc.raw.Read(x.upRdFn)
			if err == nil && x.reqPend != nil {
				// The socket did not take the whole request at once: the rest with a
				// write that waits, then the answer is read as usual.
				_, err = x.uc.c.Write(x.reqPend)
				x.dropPend()
				if err != nil {
					return err
				}
				continue
			}
			if err == nil {
				err = x.upErr
				if err == nil && x.upRn == 0 {
					err = io.EOF
				}
			}
		} else {
			if x.ub == nil {
				x.ub, x.ur, x.uw = getBuf(), 0, 0
			}
			x.upRn, err = x.uc.c.Read((*x.ub)[x.uw:])
		}
		if x.upRn > 0 {
			x.uw += x.upRn
			x.fresh()
			return nil
		}
		if err == nil {
			continue
		}
		if err = x.waited(err); err != nil {
			return err
		}
	}
}

// waited handles a read of the provider that ended in err without data: when its deadline
// fired, it holds to the first-byte or stream-idle limit and checks that the device is still
// there, and returns nil when the read should go on (the deadline set again).
func (x *exchange) waited(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if x.sw.swept.Load() {
		x.devGone = true
		return errDeviceGone
	}
	now := time.Now()
	if x.gotData && x.streaming && x.m.StreamIdleTimeout > 0 {
		// Data came since the deadline was set: the idle limit counts from about now.
		x.deadline = now.Add(x.m.StreamIdleTimeout)
	}
	x.gotData = false
	if !x.deadline.IsZero() && !now.Before(x.deadline) {
		return x.timeoutErr
	}
	if x.sw.on { // the sweeper checks the device; the deadline is the idle limit, moved
		x.uc.armed = x.deadline
		x.uc.c.SetReadDeadline(x.deadline)
		return nil
	}
	if x.d.gone() {
		x.devGone = true
		return errDeviceGone
	}
	x.armRead()
	return nil
}

// dropPend gives back the buffer of a request not (or no longer) waiting to be written.
func (x *exchange) dropPend() {
	if x.reqOut != nil {
		putOut(x.reqOut)
	}
	x.reqPend, x.reqOut = nil, nil
}

// rawUpRead reads from a plain provider connection into x.ub, giving the buffer back while it
// waits when nothing unread is in it (a stream between events holds no buffer).
func (x *exchange) rawUpRead(fd uintptr) bool {
	if x.reqPend != nil {
		// The request first, then wait for the answer: the runtime's poller was told to
		// forget what it had seen of this socket when this RawRead began, so what the
		// provider sends from now on wakes it, and no read is tried before that.
		n, err := writeFD(fd, x.reqPend)
		if err == nil && n == len(x.reqPend) {
			x.dropPend()
			return false
		}
		if err == nil && n > 0 {
			x.reqPend = x.reqPend[n:]
		}
		return true // upFill writes the rest
	}
	if x.ub == nil {
		x.ub, x.ur, x.uw = getBuf(), 0, 0
	}
	n, err := readFD(fd, (*x.ub)[x.uw:])
	if err == syscall.EAGAIN {
		if testHookEmptyRead != nil {
			testHookEmptyRead()
		}
		if x.ur == x.uw {
			putBuf(x.ub)
			x.ub = nil
		}
		return false
	}
	x.upRn, x.upErr = n, err
	return true
}

// readHead reads the provider's response head into x.res; informational answers are skipped.
func (x *exchange) readHead() error {
	for {
		if x.ur < x.uw {
			n, err := h1.ParseResponse((*x.ub)[x.ur:x.uw], &x.res)
			if err != nil {
				return errUpHead
			}
			if n > 0 {
				x.headLen = n
				if x.res.Status >= 100 && x.res.Status < 200 && x.res.Status != h1.StatusSwitchingProtocols {
					x.ur += n
					continue
				}
				return nil
			}
		}
		if err := x.upFill(maxResponseHead); err != nil {
			if err == io.EOF && x.uw > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
}

// hasDotSegment reports a "." or ".." path segment, which an upstream would resolve: on a host
// that serves two providers under two base paths (an AI gateway), /openai/../anthropic/… would
// reach the other one with the first one's key. What an upstream, or a CDN in front of it,
// takes for one is refused too: a dot written %2e, and a segment that ends at '\' (which many
// normalisers, Cloudflare's among them, read as '/'), at %5c or %2f (nginx decodes before it
// resolves dot segments) or at ';' (Tomcat and Jetty read "..;x" as ".."), in any case. No
// API path has a segment made of dots alone, whatever ends it.
func hasDotSegment(p string) bool {
	dots := 0 // the dots the segment is made of so far; -1: it holds something else
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			switch hi, lo := p[i+1], p[i+2]|0x20; { // lo: a letter in lower case
			case hi == '2' && lo == 'e':
				c = '.'
			case hi == '2' && lo == 'f', hi == '5' && lo == 'c':
				c = '/'
			}
			if c != '%' {
				i += 2
			}
		}
		switch c {
		case '/', '\\', ';':
			if dots == 1 || dots == 2 {
				return true
			}
			dots = 0
		case '.':
			if dots >= 0 {
				dots++
			}
		default:
			dots = -1
		}
	}
	return dots == 1 || dots == 2
}
