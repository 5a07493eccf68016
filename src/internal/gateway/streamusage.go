package gateway

import (
	"bytes"
	"io"

	"github.com/airelay/airelay/src/internal/stats"
)

// stream_usage: OpenAI-style APIs report the tokens of a streamed chat completion only when the
// request asks for them (stream_options.include_usage), and most clients do not ask, so their
// streams would count no tokens. For a provider with stream_usage, the gateway adds the request
// to a small body (bytes spliced in, no JSON decoding) and drops the one extra chunk it brings
// (choices empty, usage set) from the stream on its way to the device, which then sees exactly
// the stream it asked for. The usage scanner reads the stream before the chunk is dropped.

var (
	streamKey        = []byte(`"stream"`)
	streamOptionsKey = []byte(`"stream_options"`)
	includeUsage     = []byte(`"stream_options":{"include_usage":true},`)
	emptyChoices     = []byte(`"choices":[]`)
	usageKey         = []byte(`"usage":`)
)

// withStreamUsage returns body with stream_options.include_usage added, or nil when body is not
// a JSON object asking for a stream, or already says something about stream_options.
func withStreamUsage(body []byte) []byte {
	if bytes.Contains(body, streamOptionsKey) || !streamsTrue(body) {
		return nil
	}
	i := 0
	for i < len(body) && isSpace(body[i]) {
		i++
	}
	if i == len(body) || body[i] != '{' {
		return nil
	}
	out := make([]byte, 0, len(body)+len(includeUsage))
	out = append(out, body[:i+1]...)
	out = append(out, includeUsage...)
	return append(out, body[i+1:]...)
}

// streamsTrue reports whether body has the key "stream" with the value true. A quoted
// "stream" inside a string value would be escaped (\"stream\"), so an unescaped one is a key or
// the whole of a string value; only a key is followed by a colon.
func streamsTrue(body []byte) bool {
	for b := body; ; {
		i := bytes.Index(b, streamKey)
		if i < 0 {
			return false
		}
		b = b[i+len(streamKey):]
		j := 0
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j == len(b) || b[j] != ':' {
			continue
		}
		j++
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if bytes.HasPrefix(b[j:], []byte("true")) {
			return true
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// maxHeldEvent bounds how much of one SSE event usageStrip holds while waiting for its end;
// a longer event is passed on as it comes (it is not the usage chunk, which is small).
const maxHeldEvent = 16 << 10

// usageStrip passes an SSE stream on event by event and drops the first event that carries
// usage with empty choices. Each event is held until its blank line arrives, which costs a
// device nothing: an event is of no use to it before then. After the drop, or once an event
// outgrows maxHeldEvent, bytes pass straight through.
type usageStrip struct {
	r       io.ReadCloser
	counted stats.Conn // bytes down are counted here, as the device gets them
	buf     []byte     // buf[:ready] may go to the device; buf[ready:] is an event not yet ended
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
		if len(s.buf) == cap(s.buf) {
			s.buf = append(s.buf, make([]byte, 4<<10)...)[:len(s.buf)]
		}
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
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
		s.ready += end
		s.scanned = s.ready
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
