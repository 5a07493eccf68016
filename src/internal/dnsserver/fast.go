package dnsserver

import (
	"encoding/binary"

	"github.com/airelay/airelay/src/internal/config"
)

// The fast path answers the queries dnsmasq forwards here all day long (one question for an
// intercepted name, class IN, at most an OPT record) straight from the wire bytes into a
// caller's buffer: no unpacking into a dns.Msg, no packing back, no goroutine, no allocation.
// Anything else returns 0 and takes the general path through miekg/dns, which answers it the
// same way (FuzzFastAnswer holds the two to the same answer).

const (
	hdrLen  = 12
	typeA   = 1
	typeSOA = 6
	typeAAA = 28
	typeOPT = 41
	classIN = 1
	ednsUDP = 1232 // what the general path advertises too
	// maxFastReply bounds a fast answer: header, a question of at most 255+4 bytes, one
	// answer or SOA, one OPT.
	maxFastReply = 512
)

// The NODATA SOA's names, as the general path writes them.
var (
	soaMname = wireName("airelay.invalid.")
	soaRname = wireName("hostmaster.airelay.invalid.")
)

func wireName(s string) []byte {
	var b []byte
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			b = append(b, byte(i-start))
			b = append(b, s[start:i]...)
			start = i + 1
		}
	}
	return append(b, 0)
}

// fastAnswer writes the answer to query q into out (at least maxFastReply bytes) and returns
// its length, or 0 when q needs the general path.
func fastAnswer(t *config.Table, q, out []byte) int {
	if !t.Main.Enabled || len(q) < hdrLen+5 || len(out) < maxFastReply {
		return 0
	}
	// QR=0, opcode QUERY, TC=0; one question, no answers or authority, at most one additional.
	if q[2]&0xfa != 0 || binary.BigEndian.Uint16(q[4:]) != 1 || q[6]|q[7]|q[8]|q[9] != 0 || q[10] != 0 || q[11] > 1 {
		return 0
	}
	// The question name: plain labels only (letters, digits, '-', '_'), lowered into a
	// buffer of its own for the match. Compression pointers, escapes and binary labels go the
	// general way.
	var lower [255]byte
	n, off := 0, hdrLen
	for {
		if off >= len(q) {
			return 0
		}
		l := int(q[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(q) || n+l+1 > len(lower) {
			return 0
		}
		if n > 0 {
			lower[n] = '.'
			n++
		}
		for _, c := range q[off : off+l] {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				return 0
			}
			lower[n] = c
			n++
		}
		off += l
	}
	if n == 0 || n > 253 || off+4 > len(q) { // 253: a wire name is at most 255 octets
		return 0
	}
	qend := off + 4
	qtype := binary.BigEndian.Uint16(q[off:])
	if binary.BigEndian.Uint16(q[off+2:]) != classIN {
		return 0
	}
	edns := q[11] == 1
	if edns {
		// An OPT record for the root: name 0, type OPT, class (size), TTL (extended rcode,
		// version 0, flags), rdata (options, ignored as the general path ignores them), and
		// nothing after it. Another version gets BADVERS on the general path.
		o := q[qend:]
		if len(o) < 11 || o[0] != 0 || binary.BigEndian.Uint16(o[1:]) != typeOPT || o[6] != 0 ||
			11+int(binary.BigEndian.Uint16(o[9:])) != len(o) || !wellFormedOptions(o[11:]) {
			return 0
		}
	} else if qend != len(q) {
		return 0
	}
	p := t.MatchHostLower(lower[:n])
	if p == nil {
		return 0
	}

	// Header: the ID, QR, RD and CD as asked, RA; one question.
	copy(out, q[:2])
	out[2] = 0x80 | q[2]&0x01
	out[3] = 0x80 | q[3]&0x10
	binary.BigEndian.PutUint16(out[4:], 1)
	clear(out[6:hdrLen])
	w := copy(out[hdrLen:], q[hdrLen:qend]) + hdrLen
	ttl := t.Main.DNSTTL
	rr := func(typ uint16, rdlen int) {
		out[w], out[w+1] = 0xc0, hdrLen // the question's name
		binary.BigEndian.PutUint16(out[w+2:], typ)
		binary.BigEndian.PutUint16(out[w+4:], classIN)
		binary.BigEndian.PutUint32(out[w+6:], ttl)
		binary.BigEndian.PutUint16(out[w+10:], uint16(rdlen))
		w += 12
	}
	switch {
	case qtype == typeA && t.Main.LANv4.IsValid():
		out[7] = 1 // ANCOUNT
		rr(typeA, 4)
		a := t.Main.LANv4.As4()
		w += copy(out[w:], a[:])
	case qtype == typeAAA && t.Main.LANv6.IsValid():
		out[7] = 1
		rr(typeAAA, 16)
		a := t.Main.LANv6.As16()
		w += copy(out[w:], a[:])
	default:
		out[9] = 1 // NSCOUNT: NODATA with a SOA
		rr(typeSOA, len(soaMname)+len(soaRname)+20)
		w += copy(out[w:], soaMname)
		w += copy(out[w:], soaRname)
		binary.BigEndian.PutUint32(out[w:], 1) // serial
		for i := 1; i <= 4; i++ {              // refresh, retry, expire, minimum
			binary.BigEndian.PutUint32(out[w+4*i:], ttl)
		}
		w += 20
	}
	if edns {
		out[11] = 1
		out[w] = 0
		binary.BigEndian.PutUint16(out[w+1:], typeOPT)
		binary.BigEndian.PutUint16(out[w+3:], ednsUDP)
		clear(out[w+5 : w+11]) // extended rcode, version, flags, rdlen
		w += 11
	}
	return w
}

// wellFormedOptions reports whether b is a sequence of whole EDNS options of kinds whose
// content miekg/dns never rejects (NSID, COOKIE, PADDING: what resolvers and dig send); others
// take the general path, which may answer FORMERR.
func wellFormedOptions(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		switch binary.BigEndian.Uint16(b) {
		case 3, 10, 12:
		default:
			return false
		}
		l := 4 + int(binary.BigEndian.Uint16(b[2:]))
		if l > len(b) {
			return false
		}
		b = b[l:]
	}
	return true
}
