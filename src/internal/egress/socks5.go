package egress

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// SOCKS5 (RFC 1928) with optional user/password authentication (RFC 1929). Names go to the
// proxy as names: it resolves them and applies its own policy.

const (
	socksVersion   = 5
	socksNoAuth    = 0
	socksUserPass  = 2
	socksNoMethod  = 0xff
	socksConnect   = 1
	socksAtypIPv4  = 1
	socksAtypName  = 3
	socksAtypIPv6  = 4
	socksAuthVer   = 1
	socksAuthAllow = 0
)

// socksReplyError is a non-zero REP field of a SOCKS5 reply.
type socksReplyError byte

func (e socksReplyError) Error() string {
	switch e {
	case 1:
		return "socks5: general SOCKS server failure"
	case 2:
		return "socks5: connection not allowed by ruleset"
	case 3:
		return "socks5: network unreachable"
	case 4:
		return "socks5: host unreachable"
	case 5:
		return "socks5: connection refused"
	case 6:
		return "socks5: TTL expired"
	case 7:
		return "socks5: command not supported"
	case 8:
		return "socks5: address type not supported"
	}
	return fmt.Sprintf("socks5: unknown reply code %d", byte(e))
}

// socks5Handshake asks the proxy on rw to connect to host:port. buf is scratch space of at
// least 515 bytes. It reads exactly the proxy's replies, nothing after them.
func socks5Handshake(rw io.ReadWriter, buf []byte, user, pass, host string, port uint16) error {
	// Method selection.
	b := append(buf[:0], socksVersion, 1, socksNoAuth)
	if user != "" {
		b = append(buf[:0], socksVersion, 2, socksNoAuth, socksUserPass)
	}
	if _, err := rw.Write(b); err != nil {
		return err
	}
	if _, err := io.ReadFull(rw, buf[:2]); err != nil {
		return fmt.Errorf("socks5: method reply: %w", noEOF(err))
	}
	if buf[0] != socksVersion {
		return fmt.Errorf("socks5: proxy answered version %d, not a SOCKS5 proxy", buf[0])
	}
	switch m := buf[1]; {
	case m == socksNoAuth:
	case m == socksUserPass && user != "":
		if len(user) > 255 || len(pass) > 255 {
			return errors.New("socks5: user name or password longer than 255 bytes")
		}
		b = append(buf[:0], socksAuthVer, byte(len(user)))
		b = append(b, user...)
		b = append(b, byte(len(pass)))
		b = append(b, pass...)
		if _, err := rw.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(rw, buf[:2]); err != nil {
			return fmt.Errorf("socks5: authentication reply: %w", noEOF(err))
		}
		if buf[1] != socksAuthAllow {
			return fmt.Errorf("socks5: proxy rejected user %q (status %d)", user, buf[1])
		}
	case m == socksNoMethod && user == "":
		return errors.New("socks5: proxy wants authentication and no user is configured")
	case m == socksNoMethod:
		return errors.New("socks5: proxy accepts neither no-auth nor user/password")
	default:
		return fmt.Errorf("socks5: proxy chose method %d, which we did not offer", m)
	}

	// CONNECT request.
	b = append(buf[:0], socksVersion, socksConnect, 0)
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			a := ip.As4()
			b = append(append(b, socksAtypIPv4), a[:]...)
		} else {
			a := ip.As16()
			b = append(append(b, socksAtypIPv6), a[:]...)
		}
	} else {
		if len(host) > 255 {
			return fmt.Errorf("socks5: name %.20q... is longer than 255 bytes", host)
		}
		b = append(b, socksAtypName, byte(len(host)))
		b = append(b, host...)
	}
	b = append(b, byte(port>>8), byte(port))
	if _, err := rw.Write(b); err != nil {
		return err
	}
	_, err := readSOCKSReply(rw, buf)
	return err
}

// readSOCKSReply reads one CONNECT reply, exactly its length, and returns the bound address
// (which callers have no use for but which the fuzz test checks). A non-zero REP is returned
// as a socksReplyError as soon as it is seen.
func readSOCKSReply(r io.Reader, buf []byte) (netip.AddrPort, error) {
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("socks5: connect reply: %w", noEOF(err))
	}
	if buf[0] != socksVersion {
		return netip.AddrPort{}, fmt.Errorf("socks5: connect reply has version %d", buf[0])
	}
	if buf[1] != 0 {
		return netip.AddrPort{}, socksReplyError(buf[1])
	}
	var n int
	switch buf[3] {
	case socksAtypIPv4:
		n = 4
	case socksAtypIPv6:
		n = 16
	case socksAtypName:
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return netip.AddrPort{}, fmt.Errorf("socks5: connect reply: %w", noEOF(err))
		}
		n = int(buf[0])
	default:
		return netip.AddrPort{}, fmt.Errorf("socks5: connect reply has address type %d", buf[3])
	}
	if _, err := io.ReadFull(r, buf[:n+2]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("socks5: connect reply: %w", noEOF(err))
	}
	port := uint16(buf[n])<<8 | uint16(buf[n+1])
	if ip, ok := netip.AddrFromSlice(buf[:n]); ok && buf[3] != socksAtypName {
		return netip.AddrPortFrom(ip, port), nil
	}
	return netip.AddrPortFrom(netip.Addr{}, port), nil
}

// noEOF turns a bare EOF in the middle of a handshake into what it is: a truncated reply.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
