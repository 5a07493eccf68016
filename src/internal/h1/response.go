package h1

// Response is a parsed response head; its slices point into the buffer given to ParseResponse.
type Response struct {
	Status  int
	Minor   int
	Headers []Header // all fields in order, hop-by-hop ones included (see Hop)
	framing
}

// Forget drops what r holds of the buffer it was parsed from, as Request.Forget does; Status,
// Minor and the framing stay.
func (r *Response) Forget() {
	clear(r.Headers[:cap(r.Headers)])
	r.Headers = r.Headers[:0]
	r.framing.forget()
}

// ParseResponse parses the response head at the start of b into r, as ParseRequest does a
// request: the head's length, 0 without error while incomplete, or an *Error.
func ParseResponse(b []byte, r *Response) (int, error) {
	hs := r.Headers[:0]
	*r = Response{Headers: hs, framing: framing{ContentLength: -1}}
	l := lines{b: b}
	line, ok, err := l.next()
	if err != nil || !ok {
		return 0, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || len(line) > 12 && line[12] != ' ' {
		return 0, errStatusLine
	}
	r.Minor = int(line[7] - '0')
	r.Status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if r.Status < 100 {
		return 0, errStatusLine
	}
	for {
		line, ok, err := l.next()
		if err != nil || !ok {
			r.Headers = hs
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		h, err := parseField(line)
		if err != nil {
			return 0, err
		}
		if len(hs) == MaxHeaders {
			return 0, errTooMany
		}
		hs = append(hs, h)
		if err := r.field(h); err != nil {
			return 0, err
		}
	}
	r.Headers = hs
	if r.Chunked {
		r.ContentLength = -1 // RFC 9112 6.3: Transfer-Encoding overrides Content-Length
	}
	if r.Minor == 0 && !r.keepAlive {
		r.Close = true
	}
	return l.pos, nil
}

// Hop reports whether the field must not be forwarded: HopByHop, or named by Connection.
func (r *Response) Hop(name []byte) bool { return r.framing.Hop(name) }

// Get returns the value of the first field named name (lower case), or nil.
func (r *Response) Get(name string) []byte { return get(r.Headers, name) }

// NoBody reports whether a response with this status has no body whatever its fields say.
func NoBody(status int) bool { return status < 200 || status == 204 || status == 304 }
