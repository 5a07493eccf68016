package gateway

import "bytes"

// usageScanner finds the token counts a provider reports in a response body as the bytes pass,
// without decoding the body or holding it: a small state machine over JSON text, fed chunk by
// chunk, that remembers only the key it is reading (at most maxKey bytes) and the number after
// it. It reads plain JSON responses and SSE streams alike (an SSE "data:" line is JSON).
//
// Keys, wherever they appear:
//
//	input:  prompt_tokens (OpenAI chat), input_tokens (OpenAI Responses, Anthropic),
//	        promptTokenCount (Gemini)
//	output: completion_tokens, output_tokens, candidatesTokenCount
//
// A response reports its usage once (OpenAI) or cumulatively (Anthropic's message_start then
// message_delta, Gemini's every chunk), so the largest value of each side is the answer. Keys
// inside string values cannot match: their quotes are escaped. Escapes in a key are decoded
// ("\u0070rompt_tokens" is prompt_tokens), as a JSON parser would. A raw newline ends any
// string, as JSON strings cannot hold one, so a malformed line cannot confuse the rest of a
// stream.
type usageScanner struct {
	st    uint8
	esc   bool
	uhex  uint8  // hex digits of a \u escape still to come
	uval  uint16 // the \u escape's value so far
	klen  int    // bytes of the key read so far; > maxKey: too long to be ours
	input bool   // the matched key counts input (else output)
	num   uint64
	key   [maxKey]byte
	in    uint64
	out   uint64
}

const maxKey = len("candidatesTokenCount")

// maxTokens caps a parsed number so that hostile input cannot overflow it.
const maxTokens = 1 << 40

const (
	scanOut   = iota // between strings
	scanStr          // inside a string, which may be a key of ours
	scanColon        // after a key of ours, before ':'
	scanValue        // after ':', before the number
	scanNum          // in the number
)

// tokenKeyPart is in every key of ours, written without escapes.
var tokenKeyPart = []byte("oken")

// Feed scans the next bytes of the body.
func (s *usageScanner) Feed(p []byte) {
	// Most of a stream cannot hold usage: bytes that start between strings and end in a raw
	// newline (a whole SSE event) end between strings too (a raw newline ends any string), and
	// without an escape they hold a key of ours only written out, so only where "oken" is.
	if s.st == scanOut && len(p) > 0 && p[len(p)-1] == '\n' &&
		bytes.IndexByte(p, '\\') < 0 && !bytes.Contains(p, tokenKeyPart) {
		return
	}
	s.feed(p)
}

// feed is Feed without the shortcut.
func (s *usageScanner) feed(p []byte) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch s.st {
		case scanOut:
			j := bytes.IndexByte(p[i:], '"')
			if j < 0 {
				return
			}
			i += j
			s.st, s.klen, s.esc = scanStr, 0, false
		case scanStr:
			if s.klen == 0 && !s.esc && s.uhex == 0 {
				// Most strings are short and whole in p: find the end and match at once.
				if j := bytes.IndexByte(p[i:], '"'); j >= 0 {
					str := p[i : i+j]
					if bytes.IndexByte(str, '\\') < 0 && bytes.IndexByte(str, '\n') < 0 {
						s.st = scanOut
						if len(str) <= maxKey {
							if in, ok := matchKey(str); ok {
								s.st, s.input = scanColon, in
							}
						}
						i += j // the closing quote
						continue
					}
				}
			}
			if s.klen > maxKey && !s.esc && s.uhex == 0 {
				// Too long to be a key of ours: on to the next byte that ends or escapes.
				j := bytes.IndexByte(p[i:], '"')
				if j < 0 {
					j = len(p) - i
				}
				if k := bytes.IndexByte(p[i:i+j], '\\'); k >= 0 {
					j = k
				}
				if k := bytes.IndexByte(p[i:i+j], '\n'); k >= 0 {
					j = k
				}
				if i += j; i == len(p) {
					return
				}
				c = p[i]
			}
			switch {
			case s.uhex > 0:
				h := hexDigit(c)
				if h < 0 { // not JSON: the key is not ours, and c is read as it is
					s.uhex, s.klen = 0, maxKey+1
					i--
					continue
				}
				s.uval = s.uval<<4 | uint16(h)
				if s.uhex--; s.uhex == 0 {
					s.keyByte(s.uval)
				}
			case s.esc:
				s.esc = false
				switch c {
				case 'u':
					s.uhex, s.uval = 4, 0
				case '"', '\\', '/':
					s.keyByte(uint16(c))
				case 'b':
					s.keyByte('\b')
				case 'f':
					s.keyByte('\f')
				case 'n':
					s.keyByte('\n')
				case 'r':
					s.keyByte('\r')
				case 't':
					s.keyByte('\t')
				default:
					s.klen = maxKey + 1
				}
			case c == '\\':
				s.esc = true
			case c == '"':
				s.st = scanOut
				if s.klen <= maxKey {
					if in, ok := matchKey(s.key[:s.klen]); ok {
						s.st, s.input = scanColon, in
					}
				}
			case c == '\n':
				s.st = scanOut
			case s.klen < maxKey:
				s.key[s.klen] = c
				s.klen++
			default:
				s.klen = maxKey + 1
			}
		case scanColon:
			switch c {
			case ' ', '\t', '\r', '\n':
			case ':':
				s.st = scanValue
			default:
				s.st = scanOut
				i--
			}
		case scanValue:
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			case '0' <= c && c <= '9':
				s.st, s.num = scanNum, uint64(c-'0')
			default:
				s.st = scanOut
				i--
			}
		case scanNum:
			if '0' <= c && c <= '9' {
				if s.num < maxTokens {
					s.num = s.num*10 + uint64(c-'0')
				}
				continue
			}
			s.record()
			s.st = scanOut
			i--
		}
	}
}

// keyByte adds a decoded character to the key; one past ASCII is in no key of ours.
func (s *usageScanner) keyByte(c uint16) {
	if c < 0x80 && s.klen < maxKey {
		s.key[s.klen] = byte(c)
		s.klen++
	} else {
		s.klen = maxKey + 1
	}
}

func (s *usageScanner) record() {
	n := min(s.num, maxTokens)
	if s.input {
		s.in = max(s.in, n)
	} else {
		s.out = max(s.out, n)
	}
}

// Tokens returns the counts seen so far (a number the body ended in counts too).
func (s *usageScanner) Tokens() (in, out uint64) {
	if s.st == scanNum {
		c := *s
		c.record()
		return c.in, c.out
	}
	return s.in, s.out
}

// matchKey reports whether k is a usage key, and which side it counts.
func matchKey(k []byte) (input, ok bool) {
	switch string(k) { // no allocation: the compiler compares in place
	case "prompt_tokens", "input_tokens", "promptTokenCount":
		return true, true
	case "completion_tokens", "output_tokens", "candidatesTokenCount":
		return false, true
	}
	return false, false
}
