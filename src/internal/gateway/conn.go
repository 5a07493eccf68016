package gateway

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/h1"
	"github.com/airelay/airelay/src/internal/stats"
)

// Buffers. A device connection holds one only while a request is read or its answer written;
// while it waits for the next request, and a stream while it waits for the next event from its
// provider (plain or TLS), it holds none (see devConn.idle, rawPass and rawEncode).
const (
	bufSize       = 4 << 10
	maxPooledBody = 64 << 10 // larger kept bodies and heads are left to the GC, not hoarded
	// maxResponseHead bounds a provider's response head.
	maxResponseHead = 256 << 10
	// probeEvery is how often a request waiting on a silent provider checks that its device is
	// still there; a device that left cancels the request within this time.
	probeEvery = 2 * time.Second
)

var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	outPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}
)

func getBuf() *[]byte {
	if testHookBufs != nil {
		testHookBufs(1)
	}
	return bufPool.Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if testHookBufs != nil && cap(*b) == bufSize { // (a grown buffer was never taken from the pool)
		testHookBufs(-1)
	}
	if cap(*b) == bufSize {
		*b = (*b)[:bufSize]
		bufPool.Put(b)
	}
}

func getOut() *[]byte {
	if testHookBufs != nil {
		testHookBufs(1)
	}
	return outPool.Get().(*[]byte)
}

func putOut(b *[]byte) {
	if testHookBufs != nil {
		testHookBufs(-1)
	}
	if cap(*b) <= maxPooledBody {
		*b = (*b)[:0]
		outPool.Put(b)
	}
}

// Device connection states, for Shutdown.
const (
	stateIdle   = iota // waiting for a request: Shutdown may close it
	stateBusy          // a request is in progress: Shutdown waits for it
	stateClosed        // Shutdown closed it
)

// devConn is one device connection, served by one goroutine from accept to close.
type devConn struct {
	g     *Gateway
	c     net.Conn              // as accepted (closing it frees its max_conns slot)
	raw   syscall.RawConn       // the socket; nil when the listener gave something else
	rdFn  func(fd uintptr) bool // rawRead
	wrFn  func(fd uintptr) bool // rawWrite
	wb    []byte                // what rawWrite writes; d.wn of it written
	wn    int
	werr  error
	addr  netip.Addr
	mac   net.HardwareAddr
	state atomic.Int32
	// For max_conns_per_device and reclaiming idle connections (Gateway.admit, reclaimIdle);
	// key and counted are set before the connection is counted and not changed after.
	key       devKey
	counted   bool
	idleSince atomic.Int64 // unix nanoseconds: since when it waits for a request

	buf   *[]byte // pooled; nil while nothing is buffered
	r, w  int     // unread bytes: (*buf)[r:w]
	pin   int     // (*buf)[:pin] is the head of the request in progress, which d.req points into
	rn    int     // what rawRead read
	rerr  error
	timed bool // the head in progress has its header_timeout
	inRaw bool // inside serveRaw's RawRead (step)
	// serveRaw's state, kept between calls of step (its RawRead function).
	m        *config.Main // the table's main section for the next request
	admitted bool         // within max_conns_per_device (Gateway.admit)
	headDone bool         // d.req holds a parsed head whose body step waits for
	bodyWait bool         // that body has its idle_timeout
	drained  bool         // step's last read left the socket empty, not even a half-close in it (inqReader)
	in       inqReader    // step's reads
	pending  bool         // step hands d.req to serveRaw, to be served outside the RawRead
	fresh    bool         // step's first call in this RawRead
	stop     bool         // step ends the connection
	stepFn   func(fd uintptr) bool
	armed    time.Time     // the read deadline set on c
	wt       time.Duration // write_timeout of the table in use
	wArmed   time.Time     // the write deadline set on c
	req      h1.Request
	tab      *config.Table // the table client was looked up in
	client   *config.Client
	x        *exchange // the request in progress, reused
	dev      *stats.Device
}

func newDevConn(g *Gateway, c net.Conn) *devConn {
	d := &devConn{g: g, c: c, x: &exchange{}}
	d.x.upRdFn, d.x.passFn, d.x.encFn = d.x.rawUpRead, d.x.rawPass, d.x.rawEncode
	inner := c
	if lc, ok := c.(*limitedConn); ok {
		inner = lc.Conn
	}
	if sc, ok := inner.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			d.raw = raw
			d.rdFn, d.wrFn, d.stepFn = d.rawRead, d.rawWrite, d.step
		}
	}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		d.addr = ta.AddrPort().Addr().Unmap()
	} else if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		d.addr = ap.Addr().Unmap()
	}
	return d
}

// device returns the device's MAC, looked up once per connection (again while unknown).
func (d *devConn) device() net.HardwareAddr {
	if d.mac == nil && d.g.o.MAC != nil && d.addr.IsValid() {
		d.mac = d.g.o.MAC(d.addr)
	}
	return d.mac
}

// clientFor returns the device's client section in t, looked up once per table.
func (d *devConn) clientFor(t *config.Table, mac net.HardwareAddr) *config.Client {
	if d.tab != t || d.client == nil && mac != nil {
		d.tab, d.client = t, t.ClientFor(d.addr, mac)
	}
	return d.client
}

// serve reads requests and answers them until the device closes, a request asks to close, or
// something is malformed.
func (d *devConn) serve() {
	d.start()
	if d.raw != nil {
		d.serveRaw()
	} else {
		for d.readHead(d.m) && d.serveOne() {
		}
	}
	d.close()
}

// start readies a new connection: its table, its device, its slot, its header_timeout. Not
// inlined, to keep serve's frame small (see Gateway.handle).
//
//go:noinline
func (d *devConn) start() {
	d.m = &d.g.o.Table().Main
	d.wt = d.m.WriteTimeout
	now := time.Now()
	d.idleSince.Store(now.UnixNano())
	d.key = keyOf(d.addr, d.device())
	d.admitted = d.g.admit(d, d.m.MaxConnsPerDevice)
	if d.m.HeaderTimeout > 0 {
		d.setReadDeadline(now.Add(d.m.HeaderTimeout))
	}
}

// serveOne answers the request in d.req and readies the connection for the next one; false
// when the connection ends.
func (d *devConn) serveOne() bool {
	if !d.admitted {
		d.tooMany()
		return false
	}
	if !d.begin() {
		return false
	}
	keep := d.g.handle(d)
	if !keep || d.req.Close || d.g.isClosing() {
		return false
	}
	d.idleSince.Store(time.Now().UnixNano())
	if !d.state.CompareAndSwap(stateBusy, stateIdle) {
		return false
	}
	if lc, ok := d.c.(*limitedConn); ok {
		lc.l.idled()
	}
	d.m = &d.g.o.Table().Main
	d.wt = d.m.WriteTimeout
	d.idleDeadline(d.m)
	return true
}

// begin marks the request in d.req in progress, from when its head is in (its body may still
// be coming): Shutdown and the reclaims for max_conns and max_conns_per_device leave the
// connection alone from then on. False when one of them closed it first.
func (d *devConn) begin() bool {
	return d.state.Load() == stateBusy || d.state.CompareAndSwap(stateIdle, stateBusy)
}

// serveRaw serves a connection whose socket it can reach, from inside one RawRead for as long
// as requests come whole (a head with a Content-Length body that fits the buffer): the runtime
// forgets what its poller saw of a socket when a RawRead begins, so only inside one does an
// answer written, then a wait, still see a request that came meanwhile. A read after which the
// socket holds nothing, not even the device's half-close (inqReader), took all there was; after
// the answer step then waits, as nginx does, instead of reading once more to find nothing (a
// system call per request). Whatever else comes (a chunked or larger body, Expect:
// 100-continue, a device that stops mid-body) is served outside, as serve does, by reads that
// each wait on their own.
//
// Inside the RawRead the goroutine holds the socket's read lock, so nothing it runs may read the
// device through the runtime (fill refuses to) and another goroutine must not Close the
// connection while it is busy, as Close waits for the lock: it cuts it (devConn.cut).
func (d *devConn) serveRaw() {
	for {
		// What is buffered is looked at first, and the first read is made whatever came of
		// the last one: the poller has just forgotten the socket.
		d.stop, d.pending, d.fresh, d.drained = false, false, true, false
		d.inRaw = true // (here rather than deferred in step: step's frame stays on the stack while a stream lasts)
		err := d.raw.Read(d.stepFn)
		d.inRaw = false
		if err != nil && d.headDone {
			// The wait for a body ended (idle_timeout): it is served outside, where its read
			// meets the same end and the device gets its 400, as serve's would.
			d.pending = true
		} else if err != nil || d.stop || !d.pending {
			return
		}
		d.headDone = false
		if !d.serveOne() {
			return
		}
		d.startHead()
	}
}

// step is serveRaw's RawRead function: it reads, serves the whole requests it has, and reports
// false to wait for the socket, true to leave the RawRead (d.stop, d.pending).
func (d *devConn) step(fd uintptr) bool {
	read := !d.fresh // a call comes after the socket was seen readable: read
	d.fresh = false
	for {
		if read {
			if err := d.room(int(d.m.MaxHeaderBytes)); err != nil {
				d.stop = true
				return true
			}
			n, inq, err := d.in.read(fd, (*d.buf)[d.w:])
			if err == syscall.EAGAIN {
				if testHookDeviceEmptyRead != nil {
					testHookDeviceEmptyRead()
				}
				d.idle()
				return false
			}
			if err != nil || n == 0 {
				// Gone, or mid-body: a request with a head is served outside, whose body read
				// then meets the end as serve's would.
				d.pending = d.headDone
				d.stop = !d.headDone
				return true
			}
			d.w += n
			d.drained = inq == 0
			read = false
		}
		if !d.headDone {
			switch d.parseHead(d.m) {
			case headBad:
				d.stop = true
				return true
			case headMore:
				if d.drained {
					d.idle()
					return false
				}
				read = true
				continue
			}
			d.headDone, d.bodyWait = true, false
			if d.admitted && !d.begin() {
				d.stop = true
				return true
			}
		}
		r := &d.req
		if have := int64(d.w - d.r); d.admitted && have < r.ContentLength {
			// Served here only once the body is whole: handle, with the table it loads, may
			// read it all (a request past max_body in d.m is refused there before its body,
			// unless a reload raised max_body since).
			if r.Expect100 || r.ContentLength > int64(len(*d.buf)-d.r) || d.m.MaxBody > 0 && r.ContentLength > d.m.MaxBody {
				d.pending = true
				return true
			}
			if !d.bodyWait {
				// A body still coming: idle_timeout per wait, as body.read gives it.
				d.bodyWait = true
				d.idleDeadline(d.m)
			}
			if d.drained {
				return false
			}
			read = true
			continue
		}
		if r.Chunked && d.admitted {
			d.pending = true
			return true
		}
		d.headDone = false
		if !d.serveOne() {
			d.stop = true
			return true
		}
		d.startHead()
		read = !d.drained && d.r == d.w
	}
}

// idle gives the buffer back when it holds nothing, before the goroutine waits.
func (d *devConn) idle() {
	if d.buf != nil && d.r == d.w && d.pin == 0 {
		putBuf(d.buf)
		d.buf = nil
	}
}

// cut ends a connection from another goroutine (schedule_cut, a forced Shutdown): it shuts the
// socket down, which wakes whatever the connection's goroutine waits on, and leaves the Close
// to that goroutine, which may hold the socket's read lock (serveRaw) that Close would wait for.
func (d *devConn) cut() {
	if d.raw == nil || d.raw.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }) != nil {
		d.c.Close()
	}
}

// reclaim closes an idle connection to make room for another (Gateway.admit, reclaimIdle); it
// reports false when the connection is no longer idle.
func (d *devConn) reclaim() bool {
	if !d.state.CompareAndSwap(stateIdle, stateClosed) {
		return false
	}
	d.c.Close()
	return true
}

// tooMany answers a request on a connection past max_conns_per_device whose device has no idle
// connection to give up; the connection closes after it.
func (d *devConn) tooMany() {
	dev := d.dev
	if dev == nil {
		dev = d.g.o.Stats.Device(d.addr)
	}
	dev.Total.Requests.Add(1)
	dev.Total.AddStatus(errTooManyConns.status)
	d.g.o.Log.Info("gateway: refused a connection past max_conns_per_device", "device", d.addr.String())
	d.reply(errTooManyConns, true)
}

// errWriteTimeout: the device took no byte of what was written to it for write_timeout.
var errWriteTimeout = errors.New("the device took no byte for write_timeout")

// write writes b to the device. A device that takes no byte of it for write_timeout (it stopped
// reading: its window and the socket's buffer are full) gets errWriteTimeout, and its connection
// is then closed, so it cannot hold its slot, the buffers and a provider connection. The
// deadline moves at most every eighth of write_timeout (a second at most), not on every write;
// each write starts with at least seven eighths of it ahead.
func (d *devConn) write(b []byte) error {
	for {
		if d.wt > 0 {
			if now := time.Now(); d.wArmed.Sub(now) < d.wt-min(d.wt/8, time.Second) {
				d.wArmed = now.Add(d.wt)
				d.c.SetWriteDeadline(d.wArmed)
			}
		} else if !d.wArmed.IsZero() {
			d.wArmed = time.Time{}
			d.c.SetWriteDeadline(time.Time{})
		}
		var n int
		var err error
		if d.raw != nil {
			d.wb, d.wn, d.werr = b, 0, nil
			if err = d.raw.Write(d.wrFn); err == nil {
				err = d.werr
			}
			n = d.wn
			d.wb = nil
		} else {
			n, err = d.c.Write(b)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if n == 0 {
			return errWriteTimeout
		}
		b = b[n:] // it took some: a slow reader, not a stopped one
		d.wArmed = time.Time{}
	}
}

// rawWrite writes d.wb to the device's socket (see writeFD); false, to wait until the socket
// takes more, while some is left.
func (d *devConn) rawWrite(fd uintptr) bool {
	for d.wn < len(d.wb) {
		n, err := writeFD(fd, d.wb[d.wn:])
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			d.werr = err
			return true
		}
		d.wn += n
	}
	return true
}

// countWriteTimeout counts a cut outside a provider's answer (the gateway's own answers).
func (d *devConn) countWriteTimeout(err error) {
	if err == errWriteTimeout {
		dev := d.dev
		if dev == nil {
			dev = d.g.o.Stats.Device(d.addr)
		}
		dev.Total.WriteTimeouts.Add(1)
		d.g.o.Log.Warn("gateway: device cut: it took no byte for write_timeout", "device", d.addr.String())
	}
}

// idleDeadline gives the device idle_timeout for its next request (or body). A deadline set
// less than a second before the one wanted is kept, so that a busy connection does not change
// its timer on every request.
func (d *devConn) idleDeadline(m *config.Main) {
	if m.IdleTimeout <= 0 {
		if !d.armed.IsZero() {
			d.setReadDeadline(time.Time{})
		}
		return
	}
	want := time.Now().Add(m.IdleTimeout)
	if !d.armed.IsZero() && want.Sub(d.armed) < time.Second && d.armed.Before(want.Add(time.Second)) {
		return
	}
	d.setReadDeadline(want)
}

func (d *devConn) setReadDeadline(t time.Time) {
	d.armed = t
	d.c.SetReadDeadline(t)
}

func (d *devConn) close() {
	d.c.Close()
	if d.buf != nil {
		putBuf(d.buf)
		d.buf = nil
	}
	d.g.forget(d)
}

// readHead reads and parses the next request head; a malformed or oversized one is answered
// and the connection closed. The head stays in d.buf, d.r past it.
func (d *devConn) readHead(m *config.Main) bool {
	d.startHead()
	for {
		switch d.parseHead(m) {
		case headReady:
			return true
		case headBad:
			return false
		}
		if err := d.fill(int(m.MaxHeaderBytes)); err != nil {
			return false
		}
	}
}

// startHead readies the buffer for the next request's head: a pipelined request moves to its
// start, where heads are kept.
func (d *devConn) startHead() {
	d.pin, d.timed = 0, false
	if d.buf != nil && d.r > 0 {
		d.w = copy(*d.buf, (*d.buf)[d.r:d.w])
		d.r = 0
	}
}

// What parseHead found.
const (
	headMore  = iota // not whole yet: read more
	headReady        // in d.req, d.r past it
	headBad          // answered; the connection closes
)

// parseHead parses the head buffered so far.
func (d *devConn) parseHead(m *config.Main) int {
	if d.r == d.w {
		return headMore
	}
	n, err := h1.ParseRequest((*d.buf)[d.r:d.w], &d.req)
	if err != nil {
		var he *h1.Error
		errors.As(err, &he)
		d.answer(malformed(he))
		return headBad
	}
	if n > int(m.MaxHeaderBytes) {
		d.answer(errHeaderTooLarge)
		return headBad
	}
	if n > 0 {
		d.r += n
		d.pin = d.r
		return headReady
	}
	if d.w-d.r >= int(m.MaxHeaderBytes) {
		d.answer(errHeaderTooLarge)
		return headBad
	}
	if !d.timed && m.HeaderTimeout > 0 {
		// The head came in parts: it has header_timeout from its first byte.
		d.timed = true
		d.setReadDeadline(time.Now().Add(m.HeaderTimeout))
	}
	return headMore
}

// answer writes one of the gateway's errors and says the connection closes.
func (d *devConn) answer(e *apiError) {
	out := getOut()
	*out = e.appendResponse(*out, true)
	d.countWriteTimeout(d.write(*out))
	putOut(out)
}

// errInRaw: a read through the runtime asked for inside serveRaw's RawRead, which holds the
// socket's read lock (it would wait for itself).
var errInRaw = errors.New("gateway: device read inside its RawRead")

// fill reads more bytes from the device into d.buf, making room (up to limit bytes buffered).
func (d *devConn) fill(limit int) error {
	if d.inRaw {
		return errInRaw
	}
	if err := d.room(limit); err != nil {
		return err
	}
	if d.raw == nil {
		n, err := d.c.Read((*d.buf)[d.w:])
		d.w += n
		if n > 0 {
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	d.rn, d.rerr = 0, nil
	if err := d.raw.Read(d.rdFn); err != nil {
		return err
	}
	if d.rerr != nil {
		return d.rerr
	}
	if d.rn == 0 {
		return io.EOF
	}
	d.w += d.rn
	return nil
}

// room makes room in d.buf for a read: a pooled buffer when there is none, unread bytes moved
// up to the pinned head, or the buffer grown (up to limit bytes past the head).
func (d *devConn) room(limit int) error {
	if d.buf == nil {
		d.buf, d.r, d.w = getBuf(), 0, 0
		return nil
	}
	if d.r == d.w {
		d.r, d.w = d.pin, d.pin
	}
	if d.w == len(*d.buf) {
		if d.r > d.pin {
			d.w = d.pin + copy((*d.buf)[d.pin:], (*d.buf)[d.r:d.w])
			d.r = d.pin
		} else {
			// A head larger than a pooled buffer, or a body with no room after its head:
			// grow, up to the limit, not pooled.
			n := min(max(2*len(*d.buf), bufSize), d.pin+limit+1)
			if n <= len(*d.buf) {
				return errHeaderTooLarge
			}
			b := make([]byte, n)
			copy(b, (*d.buf)[:d.w])
			if d.pin == 0 {
				putBuf(d.buf) // (with a head pinned, d.req still points into the old one)
			}
			d.buf = &b
		}
	}
	return nil
}

// rawRead reads from the device's socket into d.buf; when nothing is there and nothing is
// buffered, it gives the buffer back before the runtime parks the goroutine, so an idle
// connection costs no buffer.
func (d *devConn) rawRead(fd uintptr) bool {
	if d.buf == nil {
		d.buf, d.r, d.w = getBuf(), 0, 0
	}
	n, err := readFD(fd, (*d.buf)[d.w:])
	if err == syscall.EAGAIN {
		if testHookDeviceEmptyRead != nil {
			testHookDeviceEmptyRead()
		}
		d.idle()
		return false
	}
	d.rn, d.rerr = n, err
	return true
}

// readFD and writeFD are read and write on a non-blocking socket as raw system calls, which
// never block. Unlike syscall.Read and Write they do not tell the runtime that a call begins and
// ends: that costs a little each time, and after an idle spell (a stream between events) it
// wakes the runtime's monitor thread (sysmon), which then polls for a while: a futex call, a
// few sleeps and context switches per event on a quiet gateway.
func readFD(fd uintptr, b []byte) (int, error) {
	return rawIO(syscall.SYS_READ, "read", fd, b)
}

func writeFD(fd uintptr, b []byte) (int, error) {
	return rawIO(syscall.SYS_WRITE, "write", fd, b)
}

func rawIO(trap uintptr, name string, fd uintptr, b []byte) (int, error) {
	p := unsafe.Pointer(&zeroByte)
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, e := syscall.RawSyscall(trap, fd, uintptr(p), uintptr(len(b)))
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, syscall.EAGAIN
		}
		return 0, os.NewSyscallError(name, e)
	}
}

var zeroByte byte

// testHookEmptyRead and testHookDeviceEmptyRead, when set (by tests), are called for each read
// of a provider, of a device, that found nothing.
var testHookEmptyRead, testHookDeviceEmptyRead func()

// testHookBufs, when set (by tests), is told of each pooled buffer taken (1) and given back (-1).
var testHookBufs func(int)

// release unpins the request's head (d.req must not be used after it, but for its framing) and
// gives the buffer back when nothing unread is in it. d.req forgets the head, so that a stream
// does not keep a buffer the pool let go of alive.
func (d *devConn) release() {
	d.pin = 0
	d.req.Forget()
	d.idle()
}

// gone reports whether the device has closed or reset its connection, without reading: a
// pipelined next request stays where it is.
func (d *devConn) gone() bool {
	if d.raw == nil {
		return false
	}
	var b [1]byte
	gone := false
	d.raw.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = n == 0 && err == nil || err != nil && err != syscall.EAGAIN && err != syscall.EINTR
	})
	return gone
}

// body is the device's request body, decoded (Content-Length or chunked) and held to max_body.
type body struct {
	d       *devConn
	chunked bool
	ch      h1.Chunked
	left    int64 // Content-Length bytes still to come
	n, max  int64
	done    bool
	over    bool // past max_body
	failed  bool // broke off, or malformed
	timed   bool
}

var errBodyTooLarge = errors.New("request body past max_body")

func (b *body) init(d *devConn, r *h1.Request, max int64) {
	*b = body{}
	b.d, b.chunked, b.left, b.max = d, r.Chunked, max64(r.ContentLength, 0), max
	b.done = !b.chunked && b.left == 0
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// Read reads decoded body bytes; io.EOF at its end.
func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.over {
		return 0, errBodyTooLarge
	}
	if b.failed {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.read(p)
	b.n += int64(n)
	if b.max > 0 && b.n > b.max {
		b.over = true
		return 0, errBodyTooLarge
	}
	if err != nil && err != io.EOF {
		b.failed = true
	}
	return n, err
}

func (b *body) read(p []byte) (int, error) {
	d := b.d
	for {
		if d.r < d.w {
			in := (*d.buf)[d.r:d.w]
			if !b.chunked {
				n := copy(p, in[:min(int64(len(in)), b.left)])
				d.r += n
				b.left -= int64(n)
				b.done = b.left == 0
				return n, nil
			}
			in = in[:min(len(in), len(p))]
			used, data, done, err := b.ch.Next(in)
			d.r += used
			if err != nil {
				return 0, err
			}
			copy(p, data)
			b.done = done
			if len(data) > 0 || done {
				if done && len(data) == 0 {
					return 0, io.EOF
				}
				return len(data), nil
			}
			continue
		}
		if !b.timed {
			// A body still coming: idle_timeout per wait, not header_timeout (unless step gave
			// it already).
			b.timed = true
			if !d.bodyWait {
				d.idleDeadline(&d.g.o.Table().Main)
			}
		}
		if !b.chunked && len(p) >= bufSize && d.buf == nil && !d.inRaw {
			// Large reads of a known length go straight to the caller.
			n, err := d.c.Read(p[:min(int64(len(p)), b.left)])
			b.left -= int64(n)
			b.done = b.left == 0
			if n > 0 {
				return n, nil
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if err := d.fill(bufSize); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}
