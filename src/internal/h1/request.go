package h1

import "bytes"

// Request is a parsed request head. Its slices point into the buffer given to ParseRequest and
// are valid as long as that buffer is.
type Request struct {
	Method []byte
	Target []byte // origin-form: Path, then '?' and Query when there is one
	Path   []byte
	Query  []byte // nil: no '?'
	Minor  int    // HTTP/1.Minor
	// Headers are all fields in order, hop-by-hop ones included (see Hop).
	Headers   []Header
	Expect100 bool // Expect: 100-continue
	framing
}

// Forget drops every part of r that points into the buffer it was parsed from (Method, Target,
// Path, Query, the fields, also those a longer earlier head left past len(Headers)), so that r
// keeps none of that buffer alive once it goes back to a pool; Minor, Expect100 and the framing
// (ContentLength, Chunked, Close) stay. Hop says nothing of Connection's options after it.
func (r *Request) Forget() {
	r.Method, r.Target, r.Path, r.Query = nil, nil, nil, nil
	clear(r.Headers[:cap(r.Headers)])
	r.Headers = r.Headers[:0]
	r.framing.forget()
}

// ParseRequest parses the request head at the start of b into r. It returns the length of the
// head (through its blank line), 0 and no error when b does not hold a whole head yet, or an
// *Error. Blank lines before the request line are skipped, as RFC 9112 allows.
func ParseRequest(b []byte, r *Request) (int, error) {
	hs := r.Headers[:0]
	*r = Request{Headers: hs, framing: framing{ContentLength: -1}}
	l := lines{b: b}
	var line []byte
	for {
		var ok bool
		var err error
		line, ok, err = l.next()
		if err != nil || !ok {
			return 0, err
		}
		if len(line) > 0 {
			break
		}
	}
	if err := r.requestLine(line); err != nil {
		return 0, err
	}
	hosts := 0
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
		switch {
		case EqualFold(h.Name, "host"):
			hosts++
		case EqualFold(h.Name, "expect"):
			if !EqualFold(h.Value, "100-continue") {
				return 0, errExpect
			}
			r.Expect100 = true
		}
	}
	r.Headers = hs
	switch {
	case r.Chunked && r.ContentLength >= 0:
		return 0, errCLTE
	case r.Chunked && r.Minor == 0:
		return 0, errTE10
	case hosts > 1 || hosts == 0 && r.Minor == 1:
		return 0, errHost
	}
	if r.Minor == 0 && !r.keepAlive {
		r.Close = true
	}
	return l.pos, nil
}

func (r *Request) requestLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errLine
	}
	r.Method, line = line[:sp], line[sp+1:]
	if !IsToken(r.Method) {
		return errMethod
	}
	if string(r.Method) == "CONNECT" {
		return errConnect
	}
	sp = bytes.IndexByte(line, ' ')
	if sp < 0 {
		return errLine
	}
	r.Target, line = line[:sp], line[sp+1:]
	if len(r.Target) == 0 || r.Target[0] != '/' {
		return errTarget
	}
	for _, c := range r.Target {
		if c <= 0x20 || c >= 0x7f || c == '#' {
			return errTarget
		}
	}
	r.Path = r.Target
	if q := bytes.IndexByte(r.Target, '?'); q >= 0 {
		r.Path, r.Query = r.Target[:q], r.Target[q+1:]
	}
	switch string(line) {
	case "HTTP/1.1":
		r.Minor = 1
	case "HTTP/1.0":
		r.Minor = 0
	default:
		if len(line) == 8 && string(line[:5]) == "HTTP/" && isDigit(line[5]) && line[6] == '.' && isDigit(line[7]) {
			return errVersion
		}
		return errLine
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Hop reports whether the field must not be forwarded: HopByHop, or named by Connection.
func (r *Request) Hop(name []byte) bool { return r.framing.Hop(name) }

// Get returns the value of the first field named name (lower case), or nil.
func (r *Request) Get(name string) []byte { return get(r.Headers, name) }

func get(hs []Header, name string) []byte {
	for _, h := range hs {
		if EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return nil
}
