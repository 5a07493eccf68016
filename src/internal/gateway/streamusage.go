package gateway

import (
	"bytes"
	"io"

	"github.com/airelay/airelay/src/internal/stats"
)

// stream_usage: OpenAI-style APIs report the tokens of a streamed (chat) completion only when
// the request asks for them (stream_options.include_usage), and most clients do not ask, so
// their streams would count no tokens. For a provider with stream_usage, the gateway makes
// every such request ask (usageAsk edits the body as it passes, whatever its size, without
// decoding it), and when the device had not asked, takes what that changes out of the stream on
// its way back (usageStrip: the extra usage chunk, and the "usage":null every chunk then
// carries), so the device sees exactly the stream it asked for. The usage scanner reads the
// stream before the strip.

var (
	emptyChoices = []byte(`"choices":[]`)
	usageKey     = []byte(`"usage":`)
	usageNull    = []byte(`"usage":null`)
)

// What usageAsk puts in.
const (
	askTopLevel   = `,"stream_options":{"include_usage":true}`
	askInOptions  = `"include_usage":true`
	askInOptions2 = `,"include_usage":true` // after other members
	askForNull    = `{"include_usage":true}`
	maxAskKey     = len("stream_options")
	maxAskDepth   = 64
)

// usageAsk makes a streamed completion request ask for its usage, editing the JSON body as it
// passes, chunk by chunk (rewrite), holding nothing but the key being read:
//
//   - no top-level "stream_options": `,"stream_options":{"include_usage":true}` goes in before
//     the object's closing brace, when "stream" is true;
//   - "stream_options":{…} without include_usage: "include_usage":true goes in before its
//     closing brace;
//   - "include_usage":false or null becomes `true ` or `true` (the same length);
//   - "stream_options":null becomes {"include_usage":true} when "stream" is true (known from a
//     first pass over a body in memory, or from a "stream" key before it).
//
// Keys are compared decoded ("\u0073tream" is stream), and the last of a repeated key counts,
// as for the provider's parser. The stream_options of a request that turns out not to stream
// are edited too (a request may not carry stream_options without stream true, so it changes no
// answer). From anything it cannot follow (not an object, not JSON, nested past 64 levels) the
// body passes on unchanged. The zero value is ready for a new body.
type usageAsk struct {
	st    uint8
	depth int
	objs  uint64 // bit d: the container at depth d+1 is an object (not an array)
	inSO  bool   // in the top-level stream_options object (depth 2)
	soKey int    // its members so far

	// the string being read
	isKey  bool
	record bool // a key that may be one of ours: decoded into key
	esc    bool
	uhex   uint8
	uval   uint16
	klen   int
	key    [maxAskKey]byte
	valOf  uint8 // whose value comes next (askOther, …)
	// A literal being replaced: the bytes of substOrig matched so far (substN) are held back
	// until the literal ends; then substRepl goes out if it was all of substOrig, else the
	// bytes held (so a body that is not JSON stays as it was).
	substOrig, substRepl string
	substN               int

	dry      bool // a first pass: learn "stream", write nothing
	known    int8 // "stream" from the first pass: 1 true, -1 not; 0 unknown
	stream   int8 // the last "stream" value so far: 1 true, -1 something else, 0 none
	soSeen   bool
	iuSeen   bool
	devAsked bool // the last include_usage the device wrote is true
	edited   bool // an edit asks for usage
	off      bool
}

// Lexer states.
const (
	askStart = iota // before the top-level value
	askKey          // in an object, before a key or its end
	askColon        // after a key
	askValue        // before a value (or an array's end)
	askLit          // in a number or literal
	askStr          // in a string
	askAfter        // after a value
	askEnd          // after the top-level object
)

// Whose value comes next.
const (
	askOther = iota
	askStream
	askSO
	askIU
)

// prescan learns the body's "stream" value, for a body in memory: its stream_options can then
// be edited knowing it.
func (a *usageAsk) prescan(body []byte) {
	var p usageAsk
	p.dry = true
	p.rewrite(nil, body)
	*a = usageAsk{known: -1}
	if p.stream == 1 {
		a.known = 1
	}
}

// asked reports whether an edit asked for usage the device did not ask for: the answer's usage
// chunk and "usage":null fields are then not for the device.
func (a *usageAsk) asked() bool { return a.stream == 1 && a.edited && !a.devAsked }

// streamNotFalse reports whether "stream" may be true, as far as is known now (so also while
// it is not known).
func (a *usageAsk) streamNotFalse() bool {
	if a.known != 0 {
		return a.known == 1
	}
	return a.stream != -1
}

// rewrite appends p, edited, to dst.
func (a *usageAsk) rewrite(dst, p []byte) []byte {
	run := 0 // p[run:i] goes on unchanged
	flush := func(i int) {
		if !a.dry {
			dst = append(dst, p[run:i]...)
		}
		run = i
	}
	insert := func(i int, s string) {
		flush(i)
		if !a.dry {
			dst = append(dst, s...)
		}
	}
	for i := 0; i < len(p) && !a.off; i++ {
		c := p[i]
		switch a.st {
		case askStr:
			if !a.record && !a.esc && a.uhex == 0 {
				// Not ours: on to the string's end or next escape.
				j := bytes.IndexByte(p[i:], '"')
				if j < 0 {
					j = len(p) - i
				}
				if k := bytes.IndexByte(p[i:i+j], '\\'); k >= 0 {
					j = k
				}
				if i += j; i == len(p) {
					continue
				}
				c = p[i]
			}
			switch {
			case a.uhex > 0:
				h := hexDigit(c)
				if h < 0 {
					a.off = true
					continue
				}
				a.uval = a.uval<<4 | uint16(h)
				if a.uhex--; a.uhex == 0 {
					a.keyByte(a.uval)
				}
			case a.esc:
				a.esc = false
				switch c {
				case 'u':
					a.uhex, a.uval = 4, 0
				case '"', '\\', '/':
					a.keyByte(uint16(c))
				case 'b', 'f', 'n', 'r', 't':
					a.keyByte(0x80) // a control character: in no key of ours
				default:
					a.off = true
				}
			case c == '\\':
				a.esc = true
			case c == '"':
				a.endString()
			case c < 0x20:
				a.off = true
			default:
				a.keyByte(uint16(c))
			}
		case askLit:
			delim := isSpace(c) || c == ',' || c == '}' || c == ']'
			if a.substOrig != "" {
				switch {
				case delim && a.substN == len(a.substOrig):
					insert(i, a.substRepl)
					a.substOrig, a.edited = "", true
				case !delim && a.substN < len(a.substOrig) && c == a.substOrig[a.substN]:
					flush(i)
					run = i + 1 // held back
					a.substN++
					continue
				default: // not the literal expected: not JSON; what was held goes on
					insert(i, a.substOrig[:a.substN])
					a.substOrig = ""
				}
			}
			if delim {
				a.st = askAfter
				i--
			}
		case askStart, askEnd:
			switch {
			case isSpace(c):
			case a.st == askStart && c == '{':
				a.push(true)
				a.st = askKey
			default:
				a.off = true
			}
		case askKey:
			switch {
			case isSpace(c):
			case c == '"':
				a.isKey, a.esc, a.uhex, a.klen = true, false, 0, 0
				a.record = a.depth == 1 || a.depth == 2 && a.inSO
				if a.depth == 2 && a.inSO {
					a.soKey++
				}
				a.st = askStr
			case c == '}':
				if a.close(i, c, insert) {
					i--
				}
			default:
				a.off = true
			}
		case askColon:
			switch {
			case isSpace(c):
			case c == ':':
				a.st = askValue
			default:
				a.off = true
			}
		case askValue:
			if isSpace(c) {
				continue
			}
			if a.valOf != askOther {
				switch a.value(c) {
				case valTaken:
					continue
				case valAgain:
					i--
					continue
				}
			}
			switch c {
			case '{', '[':
				if a.depth == maxAskDepth {
					a.off = true
					continue
				}
				a.push(c == '{')
				if c == '{' {
					a.st = askKey
				}
			case '"':
				a.isKey, a.record, a.esc, a.uhex = false, false, false, 0
				a.st = askStr
			case ']':
				if a.close(i, c, insert) {
					i--
				}
			case ',', '}', ':':
				a.off = true
			default:
				a.st = askLit
			}
		case askAfter:
			switch {
			case isSpace(c):
			case c == ',':
				if a.objs>>(a.depth-1)&1 == 1 {
					a.st = askKey
				} else {
					a.st = askValue
				}
			case c == '}' || c == ']':
				if a.close(i, c, insert) {
					i--
				}
			default:
				a.off = true
			}
		}
	}
	flush(len(p))
	return dst
}

// keyByte adds a decoded character to the key being read; one that cannot be in a key of
// ours makes it too long to be one.
func (a *usageAsk) keyByte(c uint16) {
	if !a.record {
		return
	}
	if c < 0x80 && a.klen < maxAskKey {
		a.key[a.klen] = byte(c)
		a.klen++
	} else {
		a.klen = maxAskKey + 1
	}
}

// endString ends a string: a key says whose value comes next.
func (a *usageAsk) endString() {
	if !a.isKey {
		a.st = askAfter
		return
	}
	a.st, a.valOf = askColon, askOther
	if !a.record || a.klen > maxAskKey {
		return
	}
	switch k := string(a.key[:a.klen]); {
	case a.depth == 1 && k == "stream":
		a.valOf = askStream
	case a.depth == 1 && k == "stream_options":
		a.valOf = askSO
	case a.depth == 2 && a.inSO && k == "include_usage":
		a.valOf = askIU
	}
}

// What value did with a value's first byte.
const (
	valOn    = iota // read it as usual
	valTaken        // it is taken care of
	valAgain        // read it again, in the state value set
)

// value acts on the first byte of a value of ours.
func (a *usageAsk) value(c byte) int {
	of := a.valOf
	a.valOf = askOther
	switch of {
	case askStream:
		a.stream = -1
		if c == 't' {
			a.stream = 1
		}
	case askSO:
		a.soSeen, a.iuSeen = true, false
		switch {
		case c == '{':
			a.push(true)
			a.st, a.inSO, a.soKey = askKey, true, 0
			return valTaken
		case c == 'n' && (a.known == 1 || a.known == 0 && a.stream == 1):
			a.st, a.substOrig, a.substRepl, a.substN = askLit, "null", askForNull, 0
			a.iuSeen, a.devAsked = true, false
			return valAgain
		}
	case askIU:
		a.iuSeen, a.devAsked = true, c == 't'
		if (c == 'f' || c == 'n') && a.streamNotFalse() {
			a.st, a.substRepl, a.substN = askLit, "true ", 0
			a.substOrig = "false"
			if c == 'n' {
				a.substOrig, a.substRepl = "null", "true"
			}
			return valAgain
		}
	}
	return valOn
}

// finish appends what a body that ended inside a replaced literal (not JSON) held back.
func (a *usageAsk) finish(dst []byte) []byte {
	if a.substOrig != "" && !a.dry {
		dst = append(dst, a.substOrig[:a.substN]...)
		a.substOrig = ""
	}
	return dst
}

func (a *usageAsk) push(obj bool) {
	if a.depth == maxAskDepth {
		a.off = true
		return
	}
	if obj {
		a.objs |= 1 << a.depth
	} else {
		a.objs &^= 1 << a.depth
	}
	a.depth++
}

// close handles the '}' or ']' at p[i]. When something goes in before it, it is inserted and
// close reports true: the byte is then read again (and closes without inserting twice).
func (a *usageAsk) close(i int, c byte, insert func(int, string)) bool {
	if a.depth == 0 || (c == '}') != (a.objs>>(a.depth-1)&1 == 1) {
		a.off = true
		return false
	}
	switch {
	case c == '}' && a.depth == 2 && a.inSO && !a.iuSeen && a.streamNotFalse():
		s := askInOptions
		if a.soKey > 0 {
			s = askInOptions2
		}
		insert(i, s)
		a.iuSeen, a.edited, a.devAsked = true, true, false
		return true
	case c == '}' && a.depth == 1 && !a.soSeen && a.stream == 1:
		insert(i, askTopLevel)
		a.soSeen, a.edited = true, true
		return true
	}
	a.depth--
	if a.depth == 1 {
		a.inSO = false
	}
	a.st = askAfter
	if a.depth == 0 {
		a.st = askEnd
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// maxHeldEvent bounds how much of one SSE event usageStrip holds while waiting for its end;
// a longer event is passed on as it comes (it is not the usage chunk, which is small).
const maxHeldEvent = 16 << 10

// usageStrip passes an SSE stream on event by event, taking out what asking for usage added:
// the first event that carries usage with empty choices is dropped, and a "usage":null member
// (which every chunk carries once usage is asked for) is removed from the events before it.
// Each event is held until its blank line arrives, which costs a device nothing: an event is
// of no use to it before then. After the drop, or once an event outgrows maxHeldEvent, bytes
// pass straight through.
type usageStrip struct {
	r       io.ReadCloser
	counted stats.Conn // bytes down are counted here, as the device gets them
	buf     []byte     // buf[:ready] may go to the device; buf[ready:] is an event not yet ended
	pooled  *[]byte    // where buf came from (outPool); nil: not pooled
	ready   int
	scanned int  // buf[ready:scanned] holds no event end
	through bool // nothing more to drop, or too long to hold: pass bytes on as read
	err     error
}

func (s *usageStrip) Close() error { return s.r.Close() }

func (s *usageStrip) Read(p []byte) (int, error) {
	for s.ready == 0 {
		if s.through && len(s.buf) == 0 {
			n, err := s.r.Read(p)
			s.count(n)
			return n, err
		}
		if s.err != nil {
			// The stream ended inside an event: pass on what there is.
			if len(s.buf) == 0 {
				return 0, s.err
			}
			s.ready = len(s.buf)
			break
		}
		if s.through {
			s.ready = len(s.buf)
			break
		}
		if cap(s.buf) == 0 { // given back while the stream waited (idle)
			s.pooled = getOut()
			s.buf = *s.pooled
		}
		if len(s.buf) == cap(s.buf) {
			s.buf = append(s.buf, make([]byte, 4<<10)...)[:len(s.buf)]
		}
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		if err == errWouldBlock { // nothing yet (see rawEncode): not the stream's end
			return 0, err
		}
		s.buf = s.buf[:len(s.buf)+n]
		s.err = err
		s.split()
	}
	n := copy(p, s.buf[:s.ready])
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	s.ready -= n
	s.scanned -= n
	s.count(n)
	return n, nil
}

// idle gives the buffer back when it holds nothing (between events).
func (s *usageStrip) idle() {
	if s.pooled != nil && len(s.buf) == 0 {
		*s.pooled = s.buf
		putOut(s.pooled)
		s.pooled, s.buf = nil, nil
	}
}

func (s *usageStrip) count(n int) {
	if n > 0 && s.counted.Provider != nil {
		s.counted.AddBytes(0, uint64(n))
	}
}

// split moves s.ready past every ended event in buf, dropping the usage one.
func (s *usageStrip) split() {
	for !s.through {
		end := eventEnd(s.buf[s.ready:], s.scanned-s.ready)
		if end < 0 {
			s.scanned = len(s.buf)
			if len(s.buf)-s.ready > maxHeldEvent {
				s.through = true
			}
			return
		}
		if end > maxHeldEvent { // too long, although it came in whole: as if it had not
			s.ready += end
			s.through = true
			return
		}
		ev := s.buf[s.ready : s.ready+end]
		if bytes.Contains(ev, emptyChoices) && bytes.Contains(ev, usageKey) {
			s.buf = append(s.buf[:s.ready], s.buf[s.ready+end:]...)
			s.through = true
			return
		}
		s.ready += end - s.dropNullUsage(s.ready, end)
		s.scanned = s.ready
	}
}

// dropNullUsage removes the "usage":null members of the event at buf[at:at+n], with the comma
// that joins each to its object, and returns how many bytes went. A "usage":null not written
// as a member next to a comma (as in a string, "\"usage\":null") stays.
func (s *usageStrip) dropNullUsage(at, n int) int {
	gone := 0
	for from := at; ; {
		k := bytes.Index(s.buf[from:at+n-gone], usageNull)
		if k < 0 {
			return gone
		}
		j := from + k // the member's opening quote
		end := j + len(usageNull)
		cut, cutEnd := -1, -1
		switch {
		case j > at && s.buf[j-1] == ',':
			cut, cutEnd = j-1, end
		case j > at && s.buf[j-1] == '{' && end < at+n-gone && s.buf[end] == ',':
			cut, cutEnd = j, end+1
		}
		if cut < 0 {
			from = end
			continue
		}
		s.buf = append(s.buf[:cut], s.buf[cutEnd:]...)
		gone += cutEnd - cut
		from = cut
	}
}

// eventEnd returns the length of the first event in b, its blank line included, or -1 when b
// holds no whole one yet; b[:from] is known to hold no event end. Lines end in "\r\n", "\n" or
// "\r", as SSE allows.
func eventEnd(b []byte, from int) int {
	for i := max(from-3, 0); i < len(b); i++ { // an end may straddle from
		n1 := lineEnd(b, i)
		if n1 < 0 {
			return -1
		}
		if n1 == 0 {
			continue
		}
		n2 := lineEnd(b, i+n1)
		if n2 < 0 {
			return -1
		}
		if n2 > 0 {
			return i + n1 + n2
		}
		i += n1 - 1
	}
	return -1
}

// lineEnd is the length of the line end at b[i] (1 or 2), 0 for none, or -1 when it cannot be
// told yet: b ends at i, or in a "\r" that a "\n" may follow.
func lineEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '\n':
		return 1
	case '\r':
		if i+1 == len(b) {
			return -1
		}
		if b[i+1] == '\n' {
			return 2
		}
		return 1
	}
	return 0
}
