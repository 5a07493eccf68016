// Package h1 is the strict HTTP/1.1 message framing the gateway speaks: request and response
// heads parsed in place (no allocation, no copies: every field is a slice of the caller's
// buffer) and chunked framing tracked byte by byte, so that a body can pass through unchanged
// while its data is seen on the side.
//
//	var r h1.Request
//	n, err := h1.ParseRequest(buf, &r) // n == 0, err == nil: the head is not all there yet
//	var c h1.Chunked
//	used, data, done, err := c.Next(body) // data: the body bytes in body[:used]
//
// It owns what a device or a provider may send and refuses, with the status to answer, anything
// a proxy in front of another server could be fooled by: both Content-Length and
// Transfer-Encoding, a duplicate or malformed Content-Length, a Transfer-Encoding other than
// chunked, obs-fold, bare CR or LF, NUL or other control bytes in a head, a malformed chunk size
// or a chunk extension past a small bound, an absolute-form, asterisk or CONNECT target. It also
// names the hop-by-hop headers (HopByHop, Request.Hop) a proxy must not forward.
//
// Why not net/http or valyala/fasthttp: net/http's server and transport cost a goroutine per
// connection plus background readers, channel handoffs and 4 KiB bufio buffers on both sides
// per upstream connection (about 56 KiB and several goroutine switches per stream, see
// BENCHMARKS.md); fasthttp buffers whole bodies by default, adds ~1 MiB of code to the mipsle
// binary and parses leniently. This package is ~600 lines, adds a few KiB, and does only what a
// key-injecting streaming proxy needs. It must not do I/O, routing or anything with keys: the
// gateway does.
package h1

import "strconv"

// Error is a message refused, with the status the peer is answered with.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "http: " + strconv.Itoa(e.Status) + " " + e.Reason }

func bad(reason string) *Error { return &Error{Status: 400, Reason: reason} }

var (
	errBareLF       = bad("bare LF")
	errBareCR       = bad("bare CR")
	errCtl          = bad("control byte in head")
	errObsFold      = bad("obs-fold")
	errLine         = bad("malformed request line")
	errMethod       = bad("malformed method")
	errTarget       = bad("target not in origin-form")
	errConnect      = bad("CONNECT")
	errVersion      = &Error{Status: 505, Reason: "HTTP version not supported"}
	errHeaderName   = bad("malformed header name")
	errCL           = bad("malformed Content-Length")
	errDupCL        = bad("duplicate Content-Length")
	errTE           = bad("Transfer-Encoding other than chunked")
	errDupTE        = bad("duplicate Transfer-Encoding")
	errCLTE         = bad("both Content-Length and Transfer-Encoding")
	errTE10         = bad("Transfer-Encoding in HTTP/1.0")
	errHost         = bad("missing or duplicate Host")
	errExpect       = &Error{Status: 417, Reason: "unsupported Expect"}
	errTooMany      = &Error{Status: 431, Reason: "too many header fields"}
	errConnTokens   = bad("too many Connection options")
	errStatusLine   = bad("malformed status line")
	errChunkSize    = bad("malformed chunk size")
	errChunkExt     = bad("chunk extension too long or malformed")
	errChunkData    = bad("chunk data not followed by CRLF")
	errTrailer      = bad("malformed trailer")
	errTrailerLarge = bad("trailer section too large")
)

// MaxHeaders bounds the fields of one head.
const MaxHeaders = 100

// Header is one field of a head; both are slices of the parsed buffer. Value has no surrounding
// whitespace.
type Header struct {
	Name, Value []byte
}

// tchar is RFC 9110's token character set.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// IsToken reports whether b is a non-empty token.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// EqualFold reports whether b equals the lower-case ASCII s, ignoring ASCII case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// HopByHop reports whether a field must not be forwarded as it is: the hop-by-hop fields
// (Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-*), and the framing fields
// (Content-Length, Transfer-Encoding) and Host, which the sender of the next hop writes itself.
func HopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return EqualFold(name, "te")
	case 4:
		return EqualFold(name, "host")
	case 7:
		return EqualFold(name, "trailer") || EqualFold(name, "upgrade")
	case 10:
		return EqualFold(name, "connection") || EqualFold(name, "keep-alive")
	case 14:
		return EqualFold(name, "content-length")
	case 17:
		return EqualFold(name, "transfer-encoding")
	}
	return len(name) > 6 && EqualFold(name[:6], "proxy-")
}

// lines walks a head line by line. Every line must end in CRLF; a CR or LF anywhere else, or
// any other control byte but HTAB, is refused.
type lines struct {
	b   []byte
	pos int
}

// next returns the next line without its CRLF; ok false: no full line yet.
func (l *lines) next() (line []byte, ok bool, err error) {
	b := l.b
	for i := l.pos; i < len(b); i++ {
		c := b[i]
		if !special[c] {
			continue
		}
		switch c {
		case '\r':
			if i+1 == len(b) {
				return nil, false, nil
			}
			if b[i+1] != '\n' {
				return nil, false, errBareCR
			}
			line = b[l.pos:i]
			l.pos = i + 2
			return line, true, nil
		case '\n':
			return nil, false, errBareLF
		default:
			return nil, false, errCtl
		}
	}
	return nil, false, nil
}

// special are the bytes a head line may not hold as they are: CR, LF and the other control
// bytes but HTAB.
var special = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = c != '\t'
	}
	t[0x7f] = true
	return
}()

// parseField splits one field line; fields(…) call it for every line up to the blank one.
func parseField(line []byte) (Header, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Header{}, errObsFold
	}
	i := 0
	for i < len(line) && line[i] != ':' {
		if !tchar[line[i]] {
			return Header{}, errHeaderName
		}
		i++
	}
	if i == 0 || i == len(line) {
		return Header{}, errHeaderName
	}
	v := line[i+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return Header{Name: line[:i], Value: v}, nil
}

// parseLength parses a Content-Length value: digits only, at most 18 of them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// framing is what the fields of a head say about its body and connection.
type framing struct {
	ContentLength int64 // -1: none
	Chunked       bool
	Close         bool // Connection: close (or HTTP/1.0 without keep-alive)
	keepAlive     bool
	conn          [16][]byte // the options of Connection, which name more hop-by-hop fields
	nconn         int
}

// forget drops the Connection options, which point into the parsed buffer.
func (f *framing) forget() {
	clear(f.conn[:])
	f.nconn = 0
}

func (f *framing) field(h Header) error {
	switch {
	case EqualFold(h.Name, "content-length"):
		if f.ContentLength >= 0 {
			return errDupCL
		}
		n, ok := parseLength(h.Value)
		if !ok {
			return errCL
		}
		f.ContentLength = n
	case EqualFold(h.Name, "transfer-encoding"):
		if f.Chunked {
			return errDupTE
		}
		if !EqualFold(h.Value, "chunked") {
			return errTE
		}
		f.Chunked = true
	case EqualFold(h.Name, "connection"):
		v := h.Value
		for len(v) > 0 {
			var tok []byte
			tok, v = cutComma(v)
			if len(tok) == 0 {
				continue
			}
			switch {
			case EqualFold(tok, "close"):
				f.Close = true
			case EqualFold(tok, "keep-alive"):
				f.keepAlive = true
			default:
				if f.nconn == len(f.conn) {
					return errConnTokens
				}
				f.conn[f.nconn] = tok
				f.nconn++
			}
		}
	}
	return nil
}

// cutComma returns the first element of a comma list, trimmed, and the rest.
func cutComma(v []byte) (tok, rest []byte) {
	i := 0
	for i < len(v) && v[i] != ',' {
		i++
	}
	tok, rest = v[:i], v[min(i+1, len(v)):]
	for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
		tok = tok[1:]
	}
	for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
		tok = tok[:len(tok)-1]
	}
	return tok, rest
}

// Hop reports whether a field of this head must not be forwarded: HopByHop, or named by its
// Connection field.
func (f *framing) Hop(name []byte) bool {
	if HopByHop(name) {
		return true
	}
	for _, t := range f.conn[:f.nconn] {
		if len(t) == len(name) && equalFoldBytes(t, name) {
			return true
		}
	}
	return false
}

func equalFoldBytes(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
