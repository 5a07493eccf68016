package relay

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/airelay/airelay/src/internal/stats"
)

// The poller moves the bytes of every established relayed connection from one goroutine, as
// HAProxy and nginx do: the two sockets of each connection are in one epoll set, and when one
// is ready the poller splices what it has through a pipe to the other (zero copy, as io.Copy's
// splice does), until the kernel says EAGAIN. An open connection costs no goroutine and no
// stack, and a pipe only while bytes wait in it for a slow receiver.
//
// The poller owns duplicates of the two sockets (the net.Conns are closed as it takes them), so
// no other code can close or reuse a descriptor it still watches. It has both directions from
// the start, the provider's first answer (ServerHello …) included: since the poller parks in the
// runtime's own poller (see run), that answer wakes it as soon as it would have woken a
// goroutine reading it, and one goroutine switch and a read that found nothing are saved.
//
// Once a second the sweep closes connections idle both ways for idle_timeout, and those whose
// device took no byte of what waits for it for write_timeout (a device that stopped reading
// would otherwise hold its connection, the provider's and the bytes buffered for it).

// pollConn is a relayed connection in the poller: its two sockets and a half per direction.
type pollConn struct {
	rc     *relayed
	fd     [2]int      // 0: device, 1: provider
	h      [2]pollHalf // 0: device → provider, 1: provider → device
	idle   time.Duration
	wt     time.Duration // write_timeout; 0: none
	out    [2]bool       // socket i is watched for writable too
	moved  bool          // bytes moved since the last sweep
	kaSet  bool          // the provider's keep-alive is on (the sweep turns it on)
	quiet  time.Time     // since when nothing has moved
	stuck  time.Time     // since when bytes wait for the device without it taking any; zero: not
	stuckN int64         // h[1].bytes when stuck was set
	closed bool
}

type pollHalf struct {
	pipe    [2]int // read and write end; -1 when none
	pending int    // bytes in the pipe, not yet written on
	eof     bool   // the source ended; the destination was shut for writing
	bytes   int64  // written to the destination
}

type poller struct {
	epfd  int
	file  *os.File        // epfd, registered with the runtime's poller (see run)
	wait  syscall.RawConn // file's
	mu    sync.Mutex
	conns map[int]*pollConn // by either of its descriptors
	pipes [][2]int          // empty pipes kept for reuse
	// Sockets a setup goroutine waits for (setup_linux.go): their events only wake it.
	waiters map[int]*sock
}

// sock is a raw socket in setup.
type sock struct {
	fd    int
	inSet bool          // in the poller's epoll set (as a waiter until the poller takes it)
	wake  chan struct{} // the poller's signal: s had an event (or a forced Shutdown)
	seq   atomic.Uint32 // events the poller passed on, so that none is lost at the hand-over
	ev    atomic.Uint32 // the last event's mask
}

func newSock(fd int) *sock { return &sock{fd: fd, wake: make(chan struct{}, 1)} }

// ready passes an event for s on to its setup goroutine. Called by the poller with p.mu held.
func (s *sock) ready(ev uint32) {
	s.ev.Store(ev)
	s.seq.Add(1)
	s.kick()
}

// kick wakes the goroutine waiting for s, if any (and the next one to wait, if none).
func (s *sock) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

var (
	thePoller  *poller
	pollerOnce sync.Once
)

// getPoller starts the poller on first use; nil when epoll is not available.
func getPoller() *poller {
	pollerOnce.Do(func() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		file, wait, err := pollable(epfd)
		if err != nil {
			syscall.Close(epfd)
			return
		}
		thePoller = &poller{epfd: epfd, file: file, wait: wait, conns: map[int]*pollConn{}, waiters: map[int]*sock{}}
		go thePoller.run()
		go thePoller.sweep()
	})
	return thePoller
}

// dupFD returns a close-on-exec duplicate of c's socket.
func dupFD(c syscall.Conn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := raw.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		nfd = int(r)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

// testHookHandOver, when set (by tests), runs while pollStart hands rc's sockets over: both
// duplicated, nothing of the poller's set up yet.
var testHookHandOver atomic.Pointer[func(rc *relayed)] // atomic: the test sets it, then connects

// pollStart hands rc to the poller; false: it could not (not two TCP sockets, no epoll), and
// rc is untouched.
func pollStart(rc *relayed, idle, wt time.Duration) bool {
	p := getPoller()
	up, ok := rc.up.(*net.TCPConn)
	if p == nil || !ok {
		return false
	}
	dfd, err := dupFD(rc.c)
	if err != nil {
		return false
	}
	ufd, err := dupFD(up)
	if err != nil {
		syscall.Close(dfd)
		return false
	}
	if f := testHookHandOver.Load(); f != nil {
		(*f)(rc)
	}
	pc := &pollConn{rc: rc, fd: [2]int{dfd, ufd}, idle: idle, wt: wt, quiet: time.Now()}
	pc.h[0].pipe, pc.h[1].pipe = [2]int{-1, -1}, [2]int{-1, -1}
	cut := func() { // schedule_cut: the poller owns the sockets now
		p.mu.Lock()
		p.close(pc)
		p.mu.Unlock()
	}
	rc.cutPoll.Store(&cut)
	// The duplicates keep the sockets open: the net.Conns go now, and the poller has both
	// directions from the start, the provider's first answer included.
	rc.c.Close()
	rc.up.Close()
	p.mu.Lock()
	if pc.closed || rc.cutFired.Load() || rc.r.forced.Load() {
		// A schedule_cut or a forced Shutdown came while the sockets changed hands: it closed
		// the net.Conns (which the duplicates outlive) or pc itself; it is not taken in.
		p.close(pc)
		p.mu.Unlock()
		return true
	}
	p.conns[dfd], p.conns[ufd] = pc, pc
	if err := p.add(pc, 0); err != nil {
		p.close(pc)
	} else if err := p.add(pc, 1); err != nil {
		p.close(pc)
	}
	p.mu.Unlock()
	return true
}

// run waits for the epoll set's events in Go's own poller, not in a blocking epoll_wait: a
// goroutine blocked in a system call keeps the runtime's only P (GOMAXPROCS=1 on a router) until
// sysmon takes it back, at least 20 µs later, with a thread switch and a futex each time, and
// every new connection's accept and first read waited for that. The epoll set's descriptor is
// itself pollable (readable while it has events), so the goroutine parks in the runtime's
// poller like any socket reader and drains the set with non-blocking waits when it wakes.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 128)
	var werr error
	drain := func(uintptr) bool {
		for {
			n, err := epollWaitNow(p.epfd, events)
			if err == syscall.EINTR {
				continue
			}
			if err != nil { // a bad epoll descriptor: nothing more can be waited for
				werr = err
				return true
			}
			if n == 0 {
				return false
			}
			p.handle(events[:n])
			if n < len(events) {
				return false // all it had: the next waits for the runtime's poller
			}
		}
	}
	for werr == nil {
		if err := p.wait.Read(drain); err != nil {
			break // the runtime could not take the descriptor: wait in a blocking call
		}
	}
	for werr == nil {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		p.handle(events[:n])
	}
}

func (p *poller) handle(events []syscall.EpollEvent) {
	p.mu.Lock()
	for _, ev := range events {
		if pc := p.conns[int(ev.Fd)]; pc != nil {
			if !pc.closed {
				p.pumpEvent(pc, int(ev.Fd), ev.Events)
			}
		} else if s := p.waiters[int(ev.Fd)]; s != nil {
			s.ready(ev.Events)
		}
	}
	p.mu.Unlock()
}

// pumpEvent moves what the event ev on pc's socket fd lets move: readable, the direction it is
// the source of; writable with bytes waiting for it, the one it is the destination of (an
// error or hang-up, both). Trying a direction with nothing to move would be a splice that
// finds nothing (EPOLLOUT, once watched, comes with every event of the socket).
func (p *poller) pumpEvent(pc *pollConn, fd int, ev uint32) {
	i := 0
	if fd == pc.fd[1] {
		i = 1
	}
	const fail = syscall.EPOLLERR | syscall.EPOLLHUP
	if ev&(syscall.EPOLLIN|syscall.EPOLLRDHUP|fail) != 0 {
		if err := p.pumpHalf(pc, i); err != nil {
			p.close(pc)
			return
		}
	}
	if ev&fail != 0 || ev&syscall.EPOLLOUT != 0 && pc.h[1-i].pending > 0 {
		if err := p.pumpHalf(pc, 1-i); err != nil {
			p.close(pc)
			return
		}
	}
	p.closeIfDone(pc)
}

// closeIfDone closes pc when both directions have ended and delivered all they had.
func (p *poller) closeIfDone(pc *pollConn) {
	if pc.h[0].eof && pc.h[1].eof && pc.h[0].pending == 0 && pc.h[1].pending == 0 {
		p.close(pc)
	}
}

// pump moves what both directions of pc can move now, and closes pc when both have ended or
// one failed.
func (p *poller) pump(pc *pollConn) {
	for i := range pc.h {
		if err := p.pumpHalf(pc, i); err != nil {
			p.close(pc)
			return
		}
	}
	p.closeIfDone(pc)
}

const spliceMax = 1 << 16 // a pipe's default capacity: a read into an empty pipe never blocks on it

func (p *poller) pumpHalf(pc *pollConn, i int) error {
	h := &pc.h[i]
	src, dst := pc.fd[i], pc.fd[1-i]
	for {
		if h.pending > 0 {
			n, err := spliceFD(h.pipe[0], dst, h.pending)
			if err == syscall.EAGAIN {
				return p.watch(pc, 1-i, true) // the destination is full: its EPOLLOUT brings us back
			}
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			h.pending -= int(n)
			h.bytes += int64(n)
			pc.moved = true
			if h.pending == 0 && h.eof {
				pc.passEnd(i)
			}
			continue
		}
		if h.eof {
			return nil
		}
		if h.pipe[0] < 0 {
			var err error
			if h.pipe, err = p.getPipe(); err != nil {
				return err
			}
		}
		n, err := spliceFD(src, h.pipe[1], spliceMax)
		switch {
		case err == syscall.EAGAIN:
			p.putPipe(h)
			return nil
		case err == syscall.EINTR:
			continue
		case err != nil:
			return err
		case n == 0: // the source shut its sending side: pass the half-close on
			h.eof = true
			p.putPipe(h)
			pc.passEnd(i)
			return nil
		}
		h.pending += int(n)
	}
}

// passEnd passes direction i's end on to its destination, once all it had is delivered: a
// shutdown of the destination's sending side, unless the other direction has ended and
// delivered all too. Then the caller's closeIfDone closes both sockets next, and the close
// sends the FIN the shutdown would have sent: a socket read to its end holds nothing unread
// that would turn its close into a reset. On a relayed TLS connection that is the last end
// (the provider's, after the device's) and one system call of about 33 (bench/PROFILE.md).
func (pc *pollConn) passEnd(i int) {
	if o := &pc.h[1-i]; o.eof && o.pending == 0 {
		return
	}
	shutdownFD(pc.fd[1-i], syscall.SHUT_WR)
}

const spliceFlags = 0x1 | 0x2 // SPLICE_F_MOVE | SPLICE_F_NONBLOCK

// pollIn is what the poller watches a socket for; EPOLLOUT is added once bytes wait for it.
// (EPOLLET is spelt out: its sign in package syscall differs between architectures.)
const (
	epollET        = 1 << 31
	pollIn  uint32 = syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET
)

// events is what the poller watches pc's socket i for: readable, and writable once bytes waited
// for it (see watch).
func (pc *pollConn) events(i int) uint32 {
	ev := pollIn
	if pc.out[i] {
		ev |= syscall.EPOLLOUT
	}
	return ev
}

// add puts pc's socket i in the epoll set. A socket already readable is reported at once, so
// bytes that came before are not missed.
func (p *poller) add(pc *pollConn, i int) error {
	ev := syscall.EpollEvent{Events: pc.events(i), Fd: int32(pc.fd[i])}
	return epollCtl(p.epfd, syscall.EPOLL_CTL_ADD, pc.fd[i], &ev)
}

// modify sets what pc's socket i is watched for to pc.events(i); a socket ready for it is
// reported at once.
func (p *poller) modify(pc *pollConn, i int) error {
	ev := syscall.EpollEvent{Events: pc.events(i), Fd: int32(pc.fd[i])}
	return epollCtl(p.epfd, syscall.EPOLL_CTL_MOD, pc.fd[i], &ev)
}

// watch asks for pc's socket i becoming writable, from now on: with edge-triggered events
// EPOLLOUT comes only when a full socket has room again, so it costs nothing while the socket
// keeps up, and is not taken back (one epoll_ctl saved each time a socket fills).
func (p *poller) watch(pc *pollConn, i int, out bool) error {
	if pc.out[i] == out {
		return nil
	}
	pc.out[i] = out
	return p.modify(pc, i)
}

func (p *poller) getPipe() ([2]int, error) {
	if n := len(p.pipes); n > 0 {
		fds := p.pipes[n-1]
		p.pipes = p.pipes[:n-1]
		return fds, nil
	}
	var fds [2]int
	err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK)
	return fds, err
}

// putPipe keeps h's pipe for reuse when it is empty, and closes it when not.
func (p *poller) putPipe(h *pollHalf) {
	if h.pipe[0] < 0 {
		return
	}
	if h.pending == 0 && len(p.pipes) < 64 {
		p.pipes = append(p.pipes, h.pipe)
	} else {
		closeFD(h.pipe[0])
		closeFD(h.pipe[1])
	}
	h.pipe, h.pending = [2]int{-1, -1}, 0
}

// close ends pc: both sockets closed (which takes them out of the epoll set), pipes returned,
// the connection counted. Called with p.mu held.
func (p *poller) close(pc *pollConn) {
	if pc.closed {
		return
	}
	pc.closed = true
	for i := range pc.h {
		p.putPipe(&pc.h[i])
	}
	for _, fd := range pc.fd {
		// The duplicate (or the raw socket) is the socket's only descriptor: closing it takes
		// it out of the epoll set. A pc closed before it was taken in is in no map.
		if p.conns[fd] == pc {
			delete(p.conns, fd)
		}
		closeFD(fd)
	}
	pc.rc.upBytes, pc.rc.downBytes = pc.h[0].bytes, pc.h[1].bytes
	pc.rc.left.Store(1)
	pc.rc.done()
}

// sweep closes connections that moved no byte either way for their idle_timeout, and those
// whose device took no byte of what waits for it for write_timeout.
func (p *poller) sweep() {
	t := time.NewTicker(time.Second)
	for now := range t.C {
		p.mu.Lock()
		for fd, pc := range p.conns {
			if fd != pc.fd[0] {
				continue
			}
			if !pc.kaSet {
				// Here, not at the hand-over: a connection shorter than a second never
				// needs it, and the handshake does not wait for these calls.
				pc.kaSet = true
				keepAliveFD(pc.fd[1])
			}
			if p.stalled(pc, now) {
				p.closeStalled(pc)
				continue
			}
			switch {
			case pc.moved:
				pc.moved, pc.quiet = false, now
			case pc.idle > 0 && now.Sub(pc.quiet) >= pc.idle:
				p.close(pc)
			}
		}
		p.mu.Unlock()
	}
}

// stalled reports whether bytes have waited for pc's device for write_timeout without it
// taking one. Called with p.mu held, once a second.
func (p *poller) stalled(pc *pollConn, now time.Time) bool {
	if pc.wt <= 0 || pc.h[1].pending == 0 { // bytes wait in the pipe only when the device is full
		pc.stuck = time.Time{}
		return false
	}
	if pc.stuck.IsZero() || pc.h[1].bytes != pc.stuckN {
		pc.stuck, pc.stuckN = now, pc.h[1].bytes
		return false
	}
	return now.Sub(pc.stuck) >= pc.wt
}

// closeStalled closes pc for its device's write_timeout and counts it. Called with p.mu held.
func (p *poller) closeStalled(pc *pollConn) {
	if pc.closed {
		return
	}
	pc.rc.sc.Each(func(k *stats.Counters) { k.WriteTimeouts.Add(1) })
	pc.rc.r.Log.Info("relay: device took nothing for write_timeout; closed", "client", pc.rc.from.Addr().String(), "provider", pc.rc.provider)
	p.close(pc)
}

// closeAll ends the connections of r (Shutdown past its deadline).
func (p *poller) closeAll(r *Relay) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		if pc.rc.r == r {
			p.close(pc)
		}
	}
}
