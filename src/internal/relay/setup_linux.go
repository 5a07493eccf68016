//go:build linux && !386

package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/airelay/airelay/src/internal/egress"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/sni"
)

// The raw setup path: the relay accepts, reads the ClientHello, connects to the provider and
// forwards the hello on raw non-blocking sockets of its own, never net.Conns, and waits for
// them in the poller's epoll set, which then keeps them once the connection is set up.
//
// Why: on the net.Conn path every socket is registered with the runtime's poller, asked for
// its addresses (getsockname after accept, getpeername and getsockname after connect),
// duplicated for the poller and closed (the net.Conn's close takes it out of the runtime's
// epoll set), and every system call on it is announced to the runtime, whose first after an
// idle spell wakes sysmon (a futex, then nanosleeps while the handshake runs): on a quiet
// relay that was a third of the system calls of a handshake (bench/PROFILE.md). Here a
// connection costs the calls HAProxy makes for it.
//
// Each connection still has a goroutine for its setup, so that the steps stay in order as on
// the net.Conn path (relay.go) and a slow resolver holds only its own connection; it parks on
// a channel the poller signals. A name with no provider (tls_fallback) and a provider whose
// egress is a proxy go on in the net.Conn path. 386 (socketcall) uses that path for all.

// rawConn is a connection set up on raw sockets: its key in r.conns.
type rawConn struct {
	dev *sock
	up  atomic.Pointer[sock]
}

// kick wakes c's setup goroutine, which then finds r.forced set and ends.
func (c *rawConn) kick() {
	c.dev.kick()
	if s := c.up.Load(); s != nil {
		s.kick()
	}
}

var errForced = errors.New("the relay is shutting down")

// listenerLook is how often serveRaw looks whether its listener was closed by its owner (a
// closed listener leaves the epoll set without an event), in nanoseconds; tests change it.
var listenerLook atomic.Int64

func init() { listenerLook.Store(int64(time.Second)) }

// await waits until the poller reports an event for s (putting s in the epoll set for events
// the first time), until the deadline, or until a forced Shutdown.
func (p *poller) await(r *Relay, s *sock, events uint32, until time.Time) error {
	if !s.inSet {
		ev := syscall.EpollEvent{Events: events, Fd: int32(s.fd)}
		p.mu.Lock()
		p.waiters[s.fd] = s
		err := epollCtl(p.epfd, syscall.EPOLL_CTL_ADD, s.fd, &ev)
		if err != nil {
			delete(p.waiters, s.fd)
		}
		p.mu.Unlock()
		if err != nil {
			return err
		}
		s.inSet = true
	}
	if r.forced.Load() {
		return errForced
	}
	d := time.Until(until)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	select {
	case <-s.wake:
		t.Stop()
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
	if r.forced.Load() {
		return errForced
	}
	return nil
}

// release closes s, which the poller has not taken.
func (p *poller) release(s *sock) {
	if s == nil {
		return
	}
	p.mu.Lock()
	if p.waiters[s.fd] == s {
		delete(p.waiters, s.fd)
	}
	closeFD(s.fd) // its only descriptor: out of the epoll set with it
	p.mu.Unlock()
}

// toConn turns s into a *net.TCPConn for the net.Conn path. It leaves the epoll set first: the
// net.Conn's duplicate would keep the registration (and its events) alive. s's descriptor is
// closed whatever the outcome (the net.Conn has its own).
func (p *poller) toConn(s *sock) (*net.TCPConn, error) {
	p.mu.Lock()
	if s.inSet {
		_ = epollCtl(p.epfd, syscall.EPOLL_CTL_DEL, s.fd, &syscall.EpollEvent{})
		if p.waiters[s.fd] == s {
			delete(p.waiters, s.fd)
		}
		s.inSet = false
	}
	p.mu.Unlock()
	f := os.NewFile(uintptr(s.fd), "relay")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("relay: not a TCP socket")
	}
	return tc, nil
}

// serveRaw accepts on ln with raw system calls and sets each connection up on raw sockets;
// served is false when that cannot be done here (no epoll, no Direct), and Serve accepts
// net.Conns instead.
//
// The listening socket stays ln's (Go's): it is used only inside ln's Control, which holds it
// open, so a closed ln is seen there and its descriptor is never taken for another's. Its
// readiness comes from the poller's epoll set (the runtime's poller has no way to wait on a
// listener without accepting through it); a closed ln leaves that set with its descriptor
// without an event, so the wait also ends each second to look.
func (r *Relay) serveRaw(ln *net.TCPListener) (served bool, err error) {
	p := getPoller()
	if p == nil || r.Direct == nil {
		return false, nil
	}
	raw, err := ln.SyscallConn()
	if err != nil {
		return false, nil
	}
	// The listening socket in the epoll set first: if it cannot be, net.Conns it is.
	ls := newSock(-1)
	var aerr error
	if cerr := raw.Control(func(lfd uintptr) {
		ls.fd = int(lfd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: int32(ls.fd)}
		p.mu.Lock()
		p.waiters[ls.fd] = ls
		if aerr = epollCtl(p.epfd, syscall.EPOLL_CTL_ADD, ls.fd, &ev); aerr != nil {
			delete(p.waiters, ls.fd)
		}
		p.mu.Unlock()
	}); cerr != nil || aerr != nil {
		return false, nil
	}
	ls.inSet = true
	r.mu.Lock()
	r.lsocks[ls] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.lsocks, ls)
		r.mu.Unlock()
		p.mu.Lock()
		if p.waiters[ls.fd] == ls {
			delete(p.waiters, ls.fd)
		}
		p.mu.Unlock()
	}()
	look := time.NewTimer(time.Duration(listenerLook.Load()))
	defer look.Stop()
	var backoff time.Duration
	for {
		r.waitSlot()
		if r.closing.Load() {
			return true, nil
		}
		aerr = nil
		drained := false
		// Accepted inside Control (which holds the listener open), set up after it: nothing
		// that takes a lock runs while a Close of the listener may be waiting for Control.
		var got [32]struct {
			fd   int
			from netip.AddrPort
		}
		n := 0
		room := int64(r.Table().Main.MaxConns) - r.active.Load()
		cerr := raw.Control(func(lfd uintptr) {
			for n < len(got) && int64(n) < room {
				fd, from, err := acceptFD(int(lfd))
				switch err {
				case nil:
				case syscall.EAGAIN:
					drained = true
					return
				case syscall.EINTR, syscall.ECONNABORTED:
					continue
				default:
					aerr = os.NewSyscallError("accept4", err)
					return
				}
				got[n].fd, got[n].from = fd, from
				n++
			}
		})
		for _, a := range got[:n] {
			// As Go does for every TCP connection: a TLS record is sent when written.
			_ = setsockoptInt(a.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			c := &rawConn{dev: newSock(a.fd)}
			r.track(c, true)
			go r.handleRaw(c, netip.AddrPortFrom(a.from.Addr().Unmap(), a.from.Port()))
		}
		if cerr != nil {
			if r.closing.Load() || errors.Is(cerr, net.ErrClosed) {
				return true, nil
			}
			return true, cerr
		}
		if aerr != nil {
			if backoff = acceptBackoff(aerr, backoff); backoff == 0 {
				return true, aerr
			}
			r.Log.Warn("relay accept failed; retrying", "err", aerr, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if drained && !r.closing.Load() { // Shutdown kicks ls after it sets closing
			look.Reset(time.Duration(listenerLook.Load()))
			select {
			case <-ls.wake:
			case <-look.C:
			}
		}
	}
}

// handleRaw is handle (relay.go) on raw sockets.
func (r *Relay) handleRaw(c *rawConn, from netip.AddrPort) {
	p := thePoller
	t := r.Table()
	bufp := helloBufs.Get().(*[]byte)
	end := func() {
		if bufp != nil {
			helloBufs.Put(bufp)
		}
		p.release(c.dev)
		p.release(c.up.Load())
		r.track(c, false)
	}
	mac, ok := r.admit(c, t, from)
	if !ok {
		end()
		return
	}
	hello, name, devSeen, devMore, err := r.readHelloRaw(p, c.dev, *bufp, t.Main.HelloTimeout)
	if err != nil {
		r.helloFailed(from, err)
		end()
		return
	}
	prov := r.match(t, name)
	if prov == nil { // tls_fallback or an alert, on the net.Conn path
		if tc := r.toGo(c); tc != nil {
			r.proceed(tc, t, from, mac, bufp, hello, name)
		} else {
			helloBufs.Put(bufp)
		}
		return
	}
	sc, dec, ok := r.decide(t, prov, from, mac, name)
	if !ok {
		alertFD(c.dev.fd, deniedAlert)
		end()
		return
	}
	addr := providerAddr(prov, name)
	ctx, cancel := context.WithTimeout(context.Background(), t.Main.ConnectTimeout)
	defer cancel()
	to, iface, direct, err := r.Direct(ctx, prov, "tcp", addr)
	if !direct { // a proxy: dialled on the net.Conn path
		cancel()
		if tc := r.toGo(c); tc != nil {
			r.dialGo(tc, t, prov, from, name, sc, dec, bufp, hello)
		} else {
			sc.End()
			helloBufs.Put(bufp)
		}
		return
	}
	var up *sock
	sent := 0
	if err == nil {
		up, sent, err = r.connect(p, ctx, c, to, iface, hello)
	}
	if err != nil {
		r.dialFailed(sc, from, prov, addr, err)
		alertFD(c.dev.fd, internalErrorAlert)
		end()
		return
	}
	// What comes after this (the provider's answer) is the poller's; what the connect's wait
	// took besides EPOLLOUT (a provider that spoke or hung up at once) brings no later edge.
	upSeen := up.seq.Load()
	upMore := up.ev.Load()&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
	dl, _ := ctx.Deadline()
	if err := r.writeAll(p, up, hello[sent:], dl); err != nil {
		r.writeFailed(sc, prov, err)
		alertFD(c.dev.fd, internalErrorAlert)
		end()
		return
	}
	helloBufs.Put(bufp)
	bufp = nil
	if r.Log.Enabled(logging.LevelDebug) {
		r.Log.Debug("relay: open", "client", from.Addr().String(), "provider", prov.ID, "sni", name, "upstream", upAddr(up.fd))
	}
	rc := r.newRelayed(c, nil, nil, sc, from, prov, len(hello), dec)
	p.startRaw(rc, c.dev, up, devSeen, upSeen, devMore || upMore, t.Main.IdleTimeout, t.Main.WriteTimeout)
}

// toGo carries c on in the net.Conn path; nil: it could not, and c has ended.
func (r *Relay) toGo(c *rawConn) *net.TCPConn {
	tc, err := thePoller.toConn(c.dev)
	if err != nil { // toConn has closed the socket: its number may be another's by now
		r.Log.Warn("relay: cannot hand a connection to the net.Conn path", "err", err)
		r.track(c, false)
		return nil
	}
	r.mu.Lock()
	id := r.conns[c]
	delete(r.conns, c)
	r.conns[tc] = id
	r.mu.Unlock()
	if r.forced.Load() { // Shutdown may have missed it while it changed keys
		tc.Close()
	}
	return tc
}

// readHelloRaw is readHello on a raw socket. For the hand-over: seen is s's event count before
// its last read, and more reports that read filled the buffer, so bytes may wait that no event
// will announce again (the epoll set is edge-triggered; a shorter read emptied the socket).
func (r *Relay) readHelloRaw(p *poller, s *sock, buf []byte, timeout time.Duration) (hello []byte, name string, seen uint32, more bool, err error) {
	until := time.Now().Add(timeout)
	n := 0
	for {
		name, need, err := sni.Parse(buf[:n])
		if err != nil {
			return nil, "", 0, false, err
		}
		if need == 0 {
			return buf[:n], name, seen, more, nil
		}
		if need > len(buf) {
			return nil, "", 0, false, sni.ErrTooLarge
		}
		seen = s.seq.Load()
		m, err := readFD(s.fd, buf[n:])
		switch {
		case err == syscall.EAGAIN:
			if err := p.await(r, s, pollIn, until); err != nil {
				return nil, "", 0, false, err
			}
			continue
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, "", 0, false, os.NewSyscallError("read", err)
		case m == 0:
			if n == 0 {
				return nil, "", 0, false, errNoData
			}
			return nil, "", 0, false, fmt.Errorf("ClientHello cut short after %d bytes: %w", n, errEOF)
		}
		// A hang-up that came with the bytes (hello and FIN together) brings no later edge
		// either: the hand-over must look.
		more = m == len(buf)-n || s.ev.Load()&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
		n += m
	}
}

var errEOF = errors.New("EOF")

// connect connects to the first of to that answers, each in its share of ctx's time, as
// egress's direct dial does, and sends what it can of hello at once (sent). The socket being
// connected is c.up meanwhile, so that a forced Shutdown's kick ends the wait.
func (r *Relay) connect(p *poller, ctx context.Context, c *rawConn, to []netip.AddrPort, iface string, hello []byte) (s *sock, sent int, err error) {
	var first error
	for i, ap := range to {
		actx, cancel := egress.ShareOf(ctx, len(to)-i)
		s, sent, err := r.connectOne(p, actx, c, ap, iface, hello)
		cancel()
		if err == nil {
			return s, sent, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil || r.forced.Load() {
			break
		}
	}
	return nil, 0, first
}

// connectOne connects to one address. It writes hello as soon as the connect is started: a
// connection that is already up (the provider close by) takes it without a wait for its
// EPOLLOUT, and one that is not returns EAGAIN and gets it once writable (by the caller).
func (r *Relay) connectOne(p *poller, ctx context.Context, c *rawConn, to netip.AddrPort, iface string, hello []byte) (*sock, int, error) {
	fd, err := socketFD(to)
	if err != nil {
		return nil, 0, dialError(to, "socket", err)
	}
	s := newSock(fd)
	c.up.Store(s)
	fail := func(op string, err error) (*sock, int, error) {
		c.up.Store(nil)
		p.release(s)
		return nil, 0, dialError(to, op, err)
	}
	if f := testHookSocket.Load(); f != nil {
		(*f)(fd)
	}
	if err := setsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		return fail("setsockopt", err)
	}
	if iface != "" {
		if err := bindToDeviceFD(fd, iface); err != nil {
			if err == syscall.ENODEV {
				return fail("setsockopt", fmt.Errorf("interface %q does not exist", iface))
			}
			return fail("setsockopt", fmt.Errorf("bind to interface %q: %w", iface, err))
		}
	}
	switch err := connectFD(fd, to); err {
	case nil, syscall.EINPROGRESS:
	default:
		return fail("connect", err)
	}
	// s is in no epoll set yet, so no event can be missed: the hand-over adds it.
	switch n, err := writeFD(fd, hello); err {
	case nil:
		return s, n, nil
	case syscall.EAGAIN, syscall.EINTR: // not connected yet
	default: // refused, unreachable…
		return fail("connect", err)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Hour)
	}
	for {
		if err := p.await(r, s, pollIn|syscall.EPOLLOUT, dl); err != nil {
			return fail("connect", err)
		}
		// Writable: connected. An error or hang-up: SO_ERROR says which; none means the
		// event was not this socket's (one fetched for an earlier socket of this number).
		ev := s.ev.Load()
		if ev&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
			if err := soError(fd); err != nil {
				return fail("connect", err)
			}
			continue
		}
		if ev&syscall.EPOLLOUT != 0 {
			return s, 0, nil
		}
	}
}

// dialError is what a failed connect says, as Go's dialer says it.
func dialError(to netip.AddrPort, op string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: err}
}

// writeAll writes b to s by until.
func (r *Relay) writeAll(p *poller, s *sock, b []byte, until time.Time) error {
	for len(b) > 0 {
		n, err := writeFD(s.fd, b)
		switch err {
		case nil:
			b = b[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := p.await(r, s, pollIn|syscall.EPOLLOUT, until); err != nil {
				return err
			}
		default:
			return os.NewSyscallError("write", err)
		}
	}
	return nil
}

// alertFD sends a TLS alert on a socket about to be closed: a fresh socket's buffer takes it.
func alertFD(fd int, a []byte) { _, _ = writeFD(fd, a) }

// upAddr is the provider address fd is connected to, for the debug log.
func upAddr(fd int) string {
	sa, err := syscall.Getpeername(fd)
	if err != nil {
		return ""
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	}
	return ""
}

// startRaw hands a connection set up on raw sockets to the poller. Its sockets may be in the
// epoll set already as waiters: they stay, and what the setup goroutine left (an event it did
// not take: seq moved past what it saw; or more than it read: bytes past its buffer, a
// hang-up that came with what it waited for) is acted on now.
func (p *poller) startRaw(rc *relayed, dev, up *sock, devSeen, upSeen uint32, more bool, idle, wt time.Duration) {
	pc := &pollConn{rc: rc, fd: [2]int{dev.fd, up.fd}, idle: idle, wt: wt, quiet: time.Now()}
	pc.h[0].pipe, pc.h[1].pipe = [2]int{-1, -1}, [2]int{-1, -1}
	pc.out[1] = up.inSet // it waited for its connect with EPOLLOUT
	cut := func() {      // schedule_cut: the poller owns the sockets now
		p.mu.Lock()
		p.close(pc)
		p.mu.Unlock()
	}
	rc.cutPoll.Store(&cut)
	if f := testHookHandOver.Load(); f != nil {
		(*f)(rc)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	socks := [2]*sock{dev, up}
	for _, s := range socks {
		if p.waiters[s.fd] == s {
			delete(p.waiters, s.fd)
		}
	}
	if pc.closed || rc.cutFired.Load() || rc.r.forced.Load() {
		// A schedule_cut or a forced Shutdown came while the sockets changed hands.
		p.close(pc)
		return
	}
	p.conns[dev.fd], p.conns[up.fd] = pc, pc
	for i, s := range socks {
		if !s.inSet {
			if err := p.add(pc, i); err != nil { // reports what is ready already
				p.close(pc)
				return
			}
		}
	}
	if more || dev.seq.Load() != devSeen || up.seq.Load() != upSeen {
		p.pump(pc)
	}
}
