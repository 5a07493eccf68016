package h1

// Chunked follows chunked framing (RFC 9112 7.1) over the raw bytes of a body as they arrive,
// so that a proxy can pass the bytes on unchanged, or take the data out, and know where the
// body ends. The zero value is ready for a new body.
//
// Strict: a chunk-size line is 1–15 hex digits, optional whitespace and an optional extension
// (';' …, printable), at most MaxChunkExt bytes after the digits; anything else after the
// digits ("5 garbage") is refused; chunk data is followed by CRLF; trailer fields are well formed and
// at most MaxTrailer bytes in all. Every line ends in CRLF.
type Chunked struct {
	st      uint8
	digits  uint8
	ext     int   // bytes of the current extension
	size    int64 // the current chunk's size, then what is left of it
	trailer int   // bytes of the trailer section so far
	tname   int   // bytes of the current trailer line's name; -1: in its value
}

const (
	// MaxChunkExt bounds the extension of one chunk-size line.
	MaxChunkExt = 256
	// MaxTrailer bounds the trailer section.
	MaxTrailer = 4 << 10
)

const (
	chSize    = iota // in the hex digits
	chSizeWS         // in whitespace after the digits: only more of it, ';' or CR may follow
	chExt            // after ';', before CR
	chSizeLF         // after the size line's CR
	chData           // in the data
	chDataCR         // after the data, before CR
	chDataLF         // after the data's CR
	chTrailer        // at the start of, or in, a trailer line
	chTrailLF        // after a trailer line's CR
	chDone
)

// Done reports whether the body has ended (the last chunk and its trailer section are through).
func (c *Chunked) Done() bool { return c.st == chDone }

// Next reads framing from the start of p up to the next data, and that data. It returns how
// many bytes of p it used, the data among them (a slice of p, ending at used), and whether the
// body ended with them; bytes after the end are not used. Call it again with p[used:] until p
// is used up or done.
func (c *Chunked) Next(p []byte) (used int, data []byte, done bool, err error) {
	i := 0
	for i < len(p) {
		b := p[i]
		switch c.st {
		case chSize:
			switch {
			case hexVal(b) >= 0:
				if c.digits == 15 {
					return i, nil, false, errChunkSize
				}
				c.size = c.size<<4 | int64(hexVal(b))
				c.digits++
			case c.digits == 0:
				return i, nil, false, errChunkSize
			case b == ';':
				c.st, c.ext = chExt, 1
			case b == ' ' || b == '\t':
				c.st, c.ext = chSizeWS, 1
			case b == '\r':
				c.st = chSizeLF
			default:
				return i, nil, false, errChunkSize
			}
		case chSizeWS:
			switch b {
			case ' ', '\t', ';':
				if b == ';' {
					c.st = chExt
				}
				c.ext++
				if c.ext > MaxChunkExt {
					return i, nil, false, errChunkExt
				}
			case '\r':
				c.st = chSizeLF
			default:
				return i, nil, false, errChunkSize
			}
		case chExt:
			switch {
			case b == '\r':
				c.st = chSizeLF
			case b < 0x20 && b != '\t' || b == 0x7f:
				return i, nil, false, errChunkExt
			default:
				c.ext++
				if c.ext > MaxChunkExt {
					return i, nil, false, errChunkExt
				}
			}
		case chSizeLF:
			if b != '\n' {
				return i, nil, false, errChunkSize
			}
			c.digits = 0
			if c.size == 0 {
				c.st, c.tname = chTrailer, 0
			} else {
				c.st = chData
			}
		case chData:
			n := int64(len(p) - i)
			if n > c.size {
				n = c.size
			}
			c.size -= n
			if c.size == 0 {
				c.st = chDataCR
			}
			return i + int(n), p[i : i+int(n)], false, nil
		case chDataCR:
			if b != '\r' {
				return i, nil, false, errChunkData
			}
			c.st = chDataLF
		case chDataLF:
			if b != '\n' {
				return i, nil, false, errChunkData
			}
			c.st = chSize
		case chTrailer:
			// A trailer field, checked as it passes: a token, ':', then a value without
			// control bytes but HTAB; an empty line ends the section.
			c.trailer++
			if c.trailer > MaxTrailer {
				return i, nil, false, errTrailerLarge
			}
			switch {
			case b == '\r':
				if c.tname > 0 {
					return i, nil, false, errTrailer // a name without ':'
				}
				c.st = chTrailLF
			case c.tname >= 0 && b == ':':
				if c.tname == 0 {
					return i, nil, false, errTrailer
				}
				c.tname = -1
			case c.tname >= 0:
				if !tchar[b] {
					return i, nil, false, errTrailer // obs-fold, or a bad name
				}
				c.tname++
			case b < 0x20 && b != '\t' || b == 0x7f:
				return i, nil, false, errTrailer
			}
		case chTrailLF:
			// The line's LF counts toward MaxTrailer like every other byte, so a section one
			// byte too long is refused at that byte, not at the next one.
			c.trailer++
			if c.trailer > MaxTrailer {
				return i, nil, false, errTrailerLarge
			}
			if b != '\n' {
				return i, nil, false, errTrailer
			}
			if c.tname == 0 {
				c.st = chDone
				return i + 1, nil, true, nil
			}
			c.st, c.tname = chTrailer, 0
		case chDone:
			return i, nil, true, nil
		}
		i++
	}
	return i, nil, c.st == chDone, nil
}

func hexVal(b byte) int {
	switch {
	case '0' <= b && b <= '9':
		return int(b - '0')
	case 'a' <= b && b <= 'f':
		return int(b-'a') + 10
	case 'A' <= b && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// AppendChunkHeader appends the size line of an n-byte chunk.
func AppendChunkHeader(b []byte, n int) []byte {
	const hex = "0123456789abcdef"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = hex[n&0xf]
		n >>= 4
		if n == 0 {
			break
		}
	}
	b = append(b, tmp[i:]...)
	return append(b, '\r', '\n')
}
