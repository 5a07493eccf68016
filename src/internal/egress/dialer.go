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
	var nd net.Dialer
	if d.Spec.Kind == Iface {
		nd.Control = BindToDevice(d.Spec.Iface)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return dialTCP(ctx, &nd, network, netip.AddrPortFrom(ip, port)) // trusted literal
	}
	if d.Resolve == nil {
		return nil, fmt.Errorf("egress: cannot resolve %s: no resolver given", host)
	}
	ips, err := d.Resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("egress: resolve %s: %w", host, err)
	}

	// Keep the acceptable addresses, in order; a few fit on the stack.
	var arr [8]netip.Addr
	ok := arr[:0]
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
		ok = append(ok, ip)
	}
	if len(ok) == 0 {
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("egress: %s has no %s address", host, network)
	}

	// Like net.Dialer: each address gets an equal share of what is left, at least 2s.
	var first error
	for i, ip := range ok {
		actx := ctx
		var cancel context.CancelFunc
		if left := len(ok) - i; left > 1 {
			if dl, has := ctx.Deadline(); has {
				share := time.Until(dl) / time.Duration(left)
				if share < 2*time.Second {
					share = 2 * time.Second
				}
				if t := time.Now().Add(share); t.Before(dl) {
					actx, cancel = context.WithDeadline(ctx, t)
				}
			}
		}
		c, err := dialTCP(actx, &nd, network, netip.AddrPortFrom(ip, port))
		if cancel != nil {
			cancel()
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = fmt.Errorf("egress: %s: %w", host, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// viaProxy dials the proxy, then asks it for host:port. The proxy's own address is from the
// operator's config and is resolved by the system (it is usually a LAN name or address).
func (d *Dialer) viaProxy(ctx, parent context.Context, addr, host string, port uint16) (*net.TCPConn, error) {
	var nd net.Dialer
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
