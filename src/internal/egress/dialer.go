package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// Dialer dials providers for the SNI relay and the HTTP gateway. It is a small value: building
// one per dial is cheap, and it holds no state between dials.
type Dialer struct {
	Spec    Spec
	Timeout time.Duration // whole dial, including resolution and proxy handshake; 0 → 10s

	// Resolve resolves names for Direct and Iface (the router's own resolver would loop back to
	// us). Nil makes a name an error. Proxies resolve names themselves and never call it.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)

	// AllowPrivate accepts refused-class addresses (see ErrRefused) learned from Resolve.
	AllowPrivate bool

	// KeepAliveLater leaves TCP keep-alive off: the caller turns it on (KeepAliveConfig) itself,
	// so that its two system calls are not on the path a handshake waits for (the relay's
	// poller does, within a second of the connection's start).
	KeepAliveLater bool
}

// KeepAliveConfig is the TCP keep-alive of provider connections: a probe after 15 s without
// traffic keeps a NAT or firewall on the WAN side from dropping a quiet connection (a stream
// waiting for a slow model). The probes' interval and count stay the kernel's: a provider that
// is gone for good is ended by idle_timeout anyway, and two system calls per dial are saved.
var KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: -1, Count: -1}

// netDialer is the net.Dialer for one dial of d's: its keep-alive, and nothing bound yet.
func (d *Dialer) netDialer() net.Dialer {
	if d.KeepAliveLater {
		return net.Dialer{KeepAlive: -1}
	}
	return net.Dialer{KeepAliveConfig: KeepAliveConfig}
}

const defaultTimeout = 10 * time.Second

func (d *Dialer) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return defaultTimeout
}

// DialContext connects to addr (host:port, numeric port) over network "tcp", "tcp4" or "tcp6"
// through d.Spec. The returned net.Conn is always a *net.TCPConn. An IP literal host comes from
// the operator and is dialed as is; a name is resolved with Resolve and checked against the
// address policy (Direct, Iface) or handed to the proxy as a name (SOCKS5, Connect).
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.DialTCP(ctx, network, addr)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return c, nil
}

// DialTCP is DialContext without the interface, for callers that want the *net.TCPConn.
func (d *Dialer) DialTCP(ctx context.Context, network, addr string) (*net.TCPConn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("egress: network %q is not TCP", network)
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	switch d.Spec.Kind {
	case SOCKS5, Connect:
		return d.viaProxy(ctx, parent, addr, host, port)
	}
	return d.dialDirect(ctx, network, host, port)
}

// splitHostPort splits addr and requires a numeric port. It does not allocate on success.
func splitHostPort(addr string) (host string, port uint16, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("egress: %w", err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || host == "" {
		return "", 0, fmt.Errorf("egress: address %q: want host:port with a numeric port", addr)
	}
	return host, uint16(n), nil
}

// dialDirect dials from the router itself, optionally bound to d.Spec.Iface.
func (d *Dialer) dialDirect(ctx context.Context, network, host string, port uint16) (*net.TCPConn, error) {
	nd := d.netDialer()
	if d.Spec.Kind == Iface {
		nd.Control = BindToDevice(d.Spec.Iface)
	}
	var arr [8]netip.AddrPort // a few fit on the stack
	to, err := d.addrs(ctx, network, host, port, arr[:0])
	if err != nil {
		return nil, err
	}
	var first error
	for i, ap := range to {
		actx, cancel := ShareOf(ctx, len(to)-i)
		c, err := dialTCP(actx, &nd, network, ap)
		cancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
			if _, perr := netip.ParseAddr(host); perr != nil { // a name: say which
				first = fmt.Errorf("egress: %s: %w", host, err)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// DirectAddrs is what a direct dial of addr (host:port) through d tries, in order: the address
// itself when host is an IP (it comes from the operator and is trusted), else the acceptable
// addresses Resolve gives for it; iface is the interface to bind the socket to, "" for none.
// ok is false when d's egress is a proxy, which resolves names itself: then dial with
// DialContext. For callers that make the connection themselves (the relay).
func (d *Dialer) DirectAddrs(ctx context.Context, network, addr string) (to []netip.AddrPort, iface string, ok bool, err error) {
	switch d.Spec.Kind {
	case SOCKS5, Connect:
		return nil, "", false, nil
	case Iface:
		iface = d.Spec.Iface
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, "", true, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	to, err = d.addrs(ctx, network, host, port, nil)
	return to, iface, true, err
}

// addrs appends to dst the addresses a direct dial of host:port tries, in order.
func (d *Dialer) addrs(ctx context.Context, network, host string, port uint16, dst []netip.AddrPort) ([]netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return append(dst, netip.AddrPortFrom(ip, port)), nil // trusted literal
	}
	if d.Resolve == nil {
		return nil, fmt.Errorf("egress: cannot resolve %s: no resolver given", host)
	}
	ips, err := d.Resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("egress: resolve %s: %w", host, err)
	}
	// Keep the acceptable addresses, in order.
	var refused error
	for _, ip := range ips {
		ip = ip.Unmap()
		if network == "tcp4" && !ip.Is4() || network == "tcp6" && !ip.Is6() {
			continue
		}
		if !d.AllowPrivate {
			if why := refusal(ip); why != "" {
				if refused == nil {
					refused = fmt.Errorf("egress: %s resolved to %s (%s): %w", host, ip, why, ErrRefused)
				}
				continue
			}
		}
		dst = append(dst, netip.AddrPortFrom(ip, port))
	}
	if len(dst) == 0 {
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("egress: %s has no %s address", host, network)
	}
	return dst, nil
}

// ShareOf is the context for one of left addresses still to try within ctx's deadline: like
// net.Dialer, each gets an equal share of what is left, at least 2s.
func ShareOf(ctx context.Context, left int) (context.Context, context.CancelFunc) {
	if left > 1 {
		if dl, has := ctx.Deadline(); has {
			share := max(time.Until(dl)/time.Duration(left), 2*time.Second)
			if t := time.Now().Add(share); t.Before(dl) {
				return context.WithDeadline(ctx, t)
			}
		}
	}
	return ctx, func() {}
}

// viaProxy dials the proxy, then asks it for host:port. The proxy's own address is from the
// operator's config and is resolved by the system (it is usually a LAN name or address).
func (d *Dialer) viaProxy(ctx, parent context.Context, addr, host string, port uint16) (*net.TCPConn, error) {
	nd := d.netDialer()
	nc, err := nd.DialContext(ctx, "tcp", d.Spec.Addr)
	if err != nil {
		return nil, fmt.Errorf("egress %s: %w", d.Spec, err)
	}
	c := nc.(*net.TCPConn)

	// The handshake shares the dial's deadline; a parent cancelled mid-handshake ends it too.
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	stop := func() bool { return true }
	if parent.Done() != nil {
		stop = context.AfterFunc(parent, func() { c.SetDeadline(aLongTimeAgo) })
	}

	bp := bufPool.Get().(*[bufSize]byte)
	if d.Spec.Kind == SOCKS5 {
		err = socks5Handshake(c, bp[:], d.Spec.User, d.Spec.Pass, host, port)
	} else {
		err = connectHandshake(c, bp[:], d.Spec.User, d.Spec.Pass, addr)
	}
	bufPool.Put(bp)

	if !stop() && err == nil {
		err = parent.Err()
	}
	if err == nil {
		err = c.SetDeadline(time.Time{})
	}
	if err != nil {
		c.Close()
		// The parent first: its AfterFunc can cut the handshake before ctx, its child, has
		// been marked cancelled too (context cancels children in no set order).
		ce := parent.Err()
		if ce == nil {
			ce = ctx.Err()
		}
		if ce == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			ce = context.DeadlineExceeded // the socket deadline is the dial's; its timer may lag
		}
		if ce != nil && !errors.Is(err, ce) {
			err = fmt.Errorf("%w (%w)", ce, err)
		}
		return nil, fmt.Errorf("egress %s: %s: %w", d.Spec, addr, err)
	}
	return c, nil
}

var aLongTimeAgo = time.Unix(1, 0)

// bufSize holds the largest handshake either way: a CONNECT request with 255-byte credentials,
// or a proxy's reply head.
const bufSize = 4096

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}
