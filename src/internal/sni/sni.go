// Package sni reads the server name from the first bytes of a TLS connection.
//
// Parse is a pure function over the bytes received so far: it never reads a socket and never
// allocates when the ClientHello fits in one TLS record (the common case). The relay owns the
// reading, its size bound and its deadline. It does not validate the handshake beyond what it
// needs to find the name: the real server does that.
package sni

import "errors"

// MaxHello bounds the ClientHello handshake message. Real ones are 200 bytes to 2 KiB (with
// post-quantum key shares); 16 KiB leaves room for padding and many extensions.
const MaxHello = 16 << 10

// MaxRecords is how many TLS records a ClientHello may be split into (a post-quantum hello is
// about 1.5 KiB; some stacks fragment it into small records).
const MaxRecords = 16

var (
	ErrNotTLS         = errors.New("not a TLS handshake")
	ErrNotClientHello = errors.New("first handshake message is not a ClientHello")
	ErrTooLarge       = errors.New("ClientHello larger than the limit")
	ErrMalformed      = errors.New("malformed ClientHello")
	ErrBadName        = errors.New("server name is not a valid host name")
)

// Parse looks for the server name in b, the first bytes of a connection. It returns:
//   - the name (lower case is not enforced; "" when the ClientHello has no SNI), need == 0;
//   - need > len(b): the total number of bytes to read before calling again (a lower bound);
//   - an error when b is not the start of a TLS ClientHello or is malformed.
func Parse(b []byte) (name string, need int, err error) {
	var hs []byte // the handshake bytes gathered from records; aliases b for a single record
	off := 0
	for records := 0; ; records++ {
		if len(b) < off+5 {
			return "", off + 5, nil
		}
		if b[off] != 0x16 || b[off+1] != 3 {
			if off == 0 {
				return "", 0, ErrNotTLS
			}
			return "", 0, ErrMalformed // something else interleaved inside the ClientHello
		}
		rl := int(b[off+3])<<8 | int(b[off+4])
		if rl == 0 || rl > 16384+2048 {
			return "", 0, ErrMalformed
		}
		end := off + 5 + rl
		if len(b) < end {
			return "", end, nil
		}
		if records == 0 {
			hs = b[off+5 : end]
		} else {
			if records >= MaxRecords {
				return "", 0, ErrTooLarge
			}
			// A split ClientHello is rare: only then are the fragments copied together.
			hs = append(hs[:len(hs):len(hs)], b[off+5:end]...)
		}
		off = end
		if len(hs) < 4 {
			continue
		}
		if hs[0] != 1 {
			return "", 0, ErrNotClientHello
		}
		ml := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if ml > MaxHello {
			return "", 0, ErrTooLarge
		}
		if len(hs) >= 4+ml {
			name, err = parseHello(hs[4 : 4+ml])
			return name, 0, err
		}
	}
}

// reader is a bounds-checked cursor; a read past the end sets bad and returns zeros.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() int {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := int(r.b[0])
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() int {
	if len(r.b) < 2 {
		r.bad = true
		return 0
	}
	v := int(r.b[0])<<8 | int(r.b[1])
	r.b = r.b[2:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func parseHello(body []byte) (string, error) {
	r := reader{b: body}
	r.bytes(2 + 32)  // legacy_version, random
	r.bytes(r.u8())  // legacy_session_id
	r.bytes(r.u16()) // cipher_suites
	r.bytes(r.u8())  // legacy_compression_methods
	if r.bad {
		return "", ErrMalformed
	}
	if len(r.b) == 0 {
		return "", nil // no extensions at all (old clients)
	}
	exts := reader{b: r.bytes(r.u16())}
	if r.bad {
		return "", ErrMalformed
	}
	for len(exts.b) > 0 {
		typ := exts.u16()
		data := exts.bytes(exts.u16())
		if exts.bad {
			return "", ErrMalformed
		}
		if typ != 0 { // server_name
			continue
		}
		list := reader{b: data}
		names := reader{b: list.bytes(list.u16())}
		for len(names.b) > 0 && !names.bad {
			kind := names.u8()
			name := names.bytes(names.u16())
			if names.bad {
				break
			}
			if kind == 0 { // host_name
				if !validName(name) {
					return "", ErrBadName
				}
				return string(name), nil
			}
		}
		return "", ErrMalformed
	}
	return "", nil
}

// validName accepts what a DNS host name may contain; anything else (NUL, spaces, '/', ':')
// would be dangerous to match or dial.
func validName(b []byte) bool {
	if len(b) == 0 || len(b) > 253 || b[0] == '.' {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
