package h1

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestParseRequestRefuses(t *testing.T) {
	const ok = "POST /v1/x?a=1 HTTP/1.1\r\nHost: gw\r\n"
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"CL and TE", ok + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE and CL", ok + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
		{"duplicate CL", ok + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400},
		{"CL list", ok + "Content-Length: 5, 5\r\n\r\n", 400},
		{"CL sign", ok + "Content-Length: +5\r\n\r\n", 400},
		{"CL hex", ok + "Content-Length: 0x5\r\n\r\n", 400},
		{"CL empty", ok + "Content-Length:\r\n\r\n", 400},
		{"CL huge", ok + "Content-Length: 1234567890123456789\r\n\r\n", 400},
		{"TE gzip", ok + "Transfer-Encoding: gzip, chunked\r\n\r\n", 400},
		{"TE identity", ok + "Transfer-Encoding: identity\r\n\r\n", 400},
		{"TE twice", ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"obs-fold", ok + "X-A: 1\r\n  2\r\n\r\n", 400},
		{"obs-fold tab", ok + "X-A: 1\r\n\t2\r\n\r\n", 400},
		{"bare CR in value", ok + "X-A: 1\r2\r\n\r\n", 400},
		{"bare LF in value", ok + "X-A: 1\n2\r\n\r\n", 400},
		{"bare LF line end", "GET / HTTP/1.1\nHost: gw\n\n", 400},
		{"NUL in value", ok + "X-A: 1\x002\r\n\r\n", 400},
		{"control in value", ok + "X-A: 1\x1b2\r\n\r\n", 400},
		{"DEL in value", ok + "X-A: 1\x7f\r\n\r\n", 400},
		{"NUL in target", "GET /a\x00b HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"space before colon", ok + "X-A : 1\r\n\r\n", 400},
		{"empty name", ok + ": 1\r\n\r\n", 400},
		{"no colon", ok + "X-A\r\n\r\n", 400},
		{"absolute-form", "GET http://api.openai.com/v1 HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"CONNECT", "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"double space", "GET  / HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"no version", "GET /\r\nHost: gw\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: gw\r\n\r\n", 505},
		{"lower-case version", "GET / http/1.1\r\nHost: gw\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: gw\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"Expect other", ok + "Expect: something\r\n\r\n", 417},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tc.head), &r)
			e, isErr := err.(*Error)
			if !isErr || e.Status != tc.status {
				t.Fatalf("got n=%d err=%v, want a %d", n, err, tc.status)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	head := "\r\nPOST /openai/v1/chat?k=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 12\r\n" +
		"Connection: X-Hop, keep-alive\r\nX-Hop: 1\r\nX-Custom:  kept \t\r\nProxy-Authorization: x\r\nExpect: 100-Continue\r\nX-Bin: \xff\r\n\r\nbody"
	var r Request
	n, err := ParseRequest([]byte(head), &r)
	if err != nil || n != len(head)-4 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if string(r.Method) != "POST" || string(r.Path) != "/openai/v1/chat" || string(r.Query) != "k=1" || r.Minor != 1 {
		t.Errorf("line: %q %q %q %d", r.Method, r.Path, r.Query, r.Minor)
	}
	if r.ContentLength != 12 || r.Chunked || r.Close || !r.Expect100 {
		t.Errorf("framing %+v", r.framing)
	}
	if v := r.Get("x-custom"); string(v) != "kept" {
		t.Errorf("X-Custom %q", v)
	}
	var kept []string
	for _, h := range r.Headers {
		if !r.Hop(h.Name) {
			kept = append(kept, string(h.Name))
		}
	}
	if got := strings.Join(kept, ","); got != "X-Custom,Expect,X-Bin" {
		t.Errorf("forwarded %s", got)
	}
	// Incomplete heads ask for more, at any cut.
	for i := range len(head) - 4 {
		if n, err := ParseRequest([]byte(head[:i]), &r); n != 0 || err != nil {
			t.Fatalf("cut at %d: n=%d err=%v", i, n, err)
		}
	}
	// HTTP/1.0 closes unless asked to keep alive.
	if _, err := ParseRequest([]byte("GET / HTTP/1.0\r\n\r\n"), &r); err != nil || !r.Close {
		t.Errorf("1.0: close %v err %v", r.Close, err)
	}
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &r); err != nil || !r.Close {
		t.Errorf("Connection: close: close %v err %v", r.Close, err)
	}
}

func TestTooManyHeaders(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", MaxHeaders) + "\r\n"
	var r Request
	if _, err := ParseRequest([]byte(head), &r); err == nil || err.(*Error).Status != 431 {
		t.Fatalf("err %v, want 431", err)
	}
}

func TestParseResponse(t *testing.T) {
	var r Response
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
	n, err := ParseResponse([]byte(head+"5\r\n"), &r)
	if err != nil || n != len(head) || r.Status != 200 || !r.Chunked || r.Close || string(r.Get("content-type")) != "text/event-stream" {
		t.Fatalf("n=%d err=%v %+v", n, err, r)
	}
	if _, err := ParseResponse([]byte("HTTP/1.1 204\r\n\r\n"), &r); err != nil || r.Status != 204 || r.ContentLength != -1 {
		t.Errorf("no reason: %v %+v", err, r)
	}
	for _, bad := range []string{"HTTP/1.1 20 OK\r\n\r\n", "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nA\x00: 1\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n"} {
		if _, err := ParseResponse([]byte(bad), &r); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// dechunk runs a body through Chunked in pieces of size step.
func dechunk(body string, step int) (data string, used int, done bool, err error) {
	var c Chunked
	var out bytes.Buffer
	p := []byte(body)
	for len(p) > 0 && !done {
		piece := p[:min(step, len(p))]
		for len(piece) > 0 {
			n, d, dn, e := c.Next(piece)
			out.Write(d)
			used += n
			piece, p = piece[n:], p[n:]
			if e != nil {
				return out.String(), used, false, e
			}
			if dn {
				done = true
				break
			}
		}
	}
	return out.String(), used, done, nil
}

func TestChunked(t *testing.T) {
	body := "5\r\nhello\r\n1;ext=\"a b\"\r\n \r\nA \t; x\r\n0123456789\r\n0 \r\nX-T: 1\r\n\r\nNEXT"
	for _, step := range []int{1, 2, 3, 7, 1000} {
		data, used, done, err := dechunk(body, step)
		if err != nil || !done || data != "hello 0123456789" || used != len(body)-4 {
			t.Errorf("step %d: %q used %d done %v err %v", step, data, used, done, err)
		}
	}
	for _, tc := range []struct{ name, body string }{
		{"no digits", "\r\nx\r\n0\r\n\r\n"},
		{"sign", "+5\r\nhello\r\n0\r\n\r\n"},
		{"0x", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"too many digits", "1000000000000000\r\n"},
		{"bare LF size", "5\nhello\r\n0\r\n\r\n"},
		{"bare CR size", "5\rhello\r\n0\r\n\r\n"},
		{"data without CRLF", "5\r\nhelloX\r\n0\r\n\r\n"},
		{"data with LF only", "5\r\nhello\n0\r\n\r\n"},
		{"long extension", "5;" + strings.Repeat("a", MaxChunkExt) + "\r\nhello\r\n0\r\n\r\n"},
		{"NUL in extension", "5;a\x00\r\nhello\r\n0\r\n\r\n"},
		{"LF in extension", "5;a\nb\r\nhello\r\n0\r\n\r\n"},
		{"bytes after the size that are not an extension", "5 garbage\r\nhello\r\n0\r\n\r\n"},
		{"a byte after the size", "5x\r\nhello\r\n0\r\n\r\n"},
		{"tab then bytes", "5\tx;a\r\nhello\r\n0\r\n\r\n"},
		{"long whitespace", "5" + strings.Repeat(" ", MaxChunkExt+1) + "\r\nhello\r\n0\r\n\r\n"},
		{"malformed trailer", "0\r\nbad trailer\r\n\r\n"},
		{"obs-fold trailer", "0\r\nA: 1\r\n 2\r\n\r\n"},
		{"trailer too large", "0\r\n" + strings.Repeat("A: 1234567890\r\n", MaxTrailer/14+1) + "\r\n"},
	} {
		if _, _, done, err := dechunk(tc.body, 1000); err == nil {
			t.Errorf("%s: accepted (done %v)", tc.name, done)
		}
	}
}

func TestAppendChunkHeader(t *testing.T) {
	for n, want := range map[int]string{0: "0\r\n", 5: "5\r\n", 255: "ff\r\n", 4096: "1000\r\n"} {
		if got := string(AppendChunkHeader(nil, n)); got != want {
			t.Errorf("%d: %q", n, got)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("POST /v1/x?a=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nConnection: x, close\r\n\r\nhello"))
	f.Add([]byte("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		n, err := ParseRequest(b, &r)
		if err != nil {
			if n != 0 {
				t.Fatal("n with an error")
			}
			return
		}
		if n == 0 {
			return
		}
		if n > len(b) || !bytes.HasSuffix(b[:n], []byte("\r\n\r\n")) {
			t.Fatalf("head of %d bytes does not end in a blank line", n)
		}
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatal("both framings")
		}
		if len(r.Target) == 0 || r.Target[0] != '/' {
			t.Fatalf("target %q", r.Target)
		}
		head := b[:n]
		if bytes.Contains(head, []byte{0}) || bytes.Contains(head, []byte("\r\n ")) || bytes.Contains(head, []byte("\r\n\t")) {
			t.Fatalf("accepted a NUL or obs-fold: %q", head)
		}
		for i, c := range head {
			if c == '\n' && (i == 0 || head[i-1] != '\r') || c == '\r' && (i+1 == len(head) || head[i+1] != '\n') {
				t.Fatalf("accepted a bare CR or LF: %q", head)
			}
		}
		for _, h := range r.Headers {
			if !IsToken(h.Name) {
				t.Fatalf("header name %q", h.Name)
			}
			for _, c := range h.Value {
				if c < 0x20 && c != '\t' || c == 0x7f {
					t.Fatalf("control byte in %q", h.Value)
				}
			}
		}
		// A whole head parses the same however much follows it.
		var r2 Request
		if n2, err := ParseRequest(append(b[:n:n], "XYZ"...), &r2); n2 != n || err != nil {
			t.Fatalf("with more after it: %d %v", n2, err)
		}
	})
}

func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n1;ext=\"a b\"\r\n \r\n0\r\nX-T: 1\r\n\r\n"), 3)
	f.Add([]byte("0\r\n\r\n"), 1)
	f.Add([]byte("ffffffffffffff\r\n"), 2)
	f.Add([]byte("5 garbage\r\nhello\r\n0\r\n\r\n"), 4)
	f.Add([]byte("5 \t;x=1\r\nhello\r\n0\r\n\r\n"), 4)
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		if step <= 0 || step > len(b)+1 {
			step = len(b) + 1
		}
		whole, used1, done1, err1 := dechunk(string(b), len(b)+1)
		split, used2, done2, err2 := dechunk(string(b), step)
		if (err1 == nil) != (err2 == nil) || done1 != done2 || (err1 == nil && (whole != split || used1 != used2)) {
			t.Fatalf("whole: %q %d %v %v; in steps of %d: %q %d %v %v", whole, used1, done1, err1, step, split, used2, done2, err2)
		}
		if ref, refUsed, refDone, refOK := refDechunk(b); refOK != (err1 == nil) || refOK && (ref != whole || refUsed != used1 || refDone != done1) {
			t.Fatalf("reference: %q %d %v ok %v; Chunked: %q %d %v %v", ref, refUsed, refDone, refOK, whole, used1, done1, err1)
		}
		if done1 && err1 == nil {
			// Re-encoding the data as one chunk round-trips.
			enc := string(AppendChunkHeader(nil, len(whole))) + whole + "\r\n0\r\n\r\n"
			if len(whole) == 0 {
				enc = "0\r\n\r\n"
			}
			if again, _, done, err := dechunk(enc, 5); err != nil || !done || again != whole {
				t.Fatalf("re-encoded: %q %v %v", again, done, err)
			}
		}
	})
}

// refDechunk is RFC 9112's chunked grammar with Chunked's bounds, written plainly over a whole
// body, for FuzzChunked to compare with: chunk-size line = 1-15 HEXDIG, *(SP / HTAB), then
// optionally ";" and bytes that are not control bytes (but HTAB), at most MaxChunkExt bytes
// after the digits, CRLF. ok false: refused; done false: the body needs more bytes.
func refDechunk(b []byte) (data string, used int, done, ok bool) {
	isHex := func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
	ctl := func(c byte) bool { return c < 0x20 && c != '\t' || c == 0x7f }
	i := 0
	var out []byte
	for {
		start := i
		for i < len(b) && isHex(b[i]) {
			i++
		}
		digits := i - start
		if digits > 15 {
			return "", 0, false, false
		}
		if i == len(b) {
			return string(out), len(b), false, true
		}
		if digits == 0 {
			return "", 0, false, false
		}
		size, _ := strconv.ParseInt(string(b[start:i]), 16, 64)
		ext := i
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		if i < len(b) && b[i] == ';' {
			for i < len(b) && b[i] != '\r' && !ctl(b[i]) {
				i++
			}
		}
		if i-ext > MaxChunkExt {
			return "", 0, false, false
		}
		if i == len(b) {
			return string(out), len(b), false, true
		}
		if b[i] != '\r' {
			return "", 0, false, false
		}
		if i+1 == len(b) {
			return string(out), len(b), false, true
		}
		if b[i+1] != '\n' {
			return "", 0, false, false
		}
		i += 2
		if size == 0 {
			break
		}
		n := min(int64(len(b)-i), size)
		out = append(out, b[i:i+int(n)]...)
		i += int(n)
		if n < size {
			return string(out), len(b), false, true
		}
		for _, want := range []byte("\r\n") {
			if i == len(b) {
				return string(out), len(b), false, true
			}
			if b[i] != want {
				return "", 0, false, false
			}
			i++
		}
	}
	// Trailer fields, then a blank line; MaxTrailer bounds them, their line ends included.
	tstart := i
	for {
		if i-tstart > MaxTrailer {
			return "", 0, false, false
		}
		j := bytes.IndexByte(b[i:], '\r')
		line := b[i:]
		if j >= 0 {
			line = b[i : i+j]
		}
		if len(line) > 0 {
			colon := bytes.IndexByte(line, ':')
			name := line
			if colon >= 0 {
				name = line[:colon]
			}
			if colon == 0 || len(name) > 0 && !IsToken(name) {
				return "", 0, false, false
			}
			if colon >= 0 {
				for _, c := range line[colon+1:] {
					if ctl(c) {
						return "", 0, false, false
					}
				}
			}
			if j >= 0 && colon < 0 {
				return "", 0, false, false
			}
		}
		if j < 0 {
			if i+len(line)-tstart > MaxTrailer {
				return "", 0, false, false
			}
			return string(out), len(b), false, true
		}
		i += j
		if i+1-tstart > MaxTrailer {
			return "", 0, false, false
		}
		if i+1 == len(b) {
			return string(out), len(b), false, true
		}
		if b[i+1] != '\n' {
			return "", 0, false, false
		}
		if i+2-tstart > MaxTrailer {
			return "", 0, false, false
		}
		i += 2
		if len(line) == 0 {
			return string(out), i, true, true
		}
	}
}

// TestForget: after Forget nothing of a request or response points into the head it was parsed
// from (the buffer goes back to a pool, and must not be kept alive by a stream that lasts),
// also not the fields a longer earlier head left past len(Headers); what is read after it stays.
func TestForget(t *testing.T) {
	var r Request
	long := "POST /v1/a?x=1 HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 5\r\n\r\n"
	if _, err := ParseRequest([]byte(long), &r); err != nil {
		t.Fatal(err)
	}
	short := "POST /v1/b HTTP/1.1\r\nHost: h\r\nConnection: close, x-drop\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := ParseRequest([]byte(short), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Hop([]byte("x-drop")) {
		t.Fatal("x-drop is not hop-by-hop before Forget")
	}
	r.Forget()
	if r.Method != nil || r.Target != nil || r.Path != nil || r.Query != nil || len(r.Headers) != 0 {
		t.Errorf("after Forget: %q %q %q %q %d fields", r.Method, r.Target, r.Path, r.Query, len(r.Headers))
	}
	for i, h := range r.Headers[:cap(r.Headers)] {
		if h.Name != nil || h.Value != nil {
			t.Errorf("field %d still holds %q: %q", i, h.Name, h.Value)
		}
	}
	for i, c := range r.conn {
		if c != nil {
			t.Errorf("Connection option %d still holds %q", i, c)
		}
	}
	if r.Minor != 1 || !r.Chunked || !r.Close {
		t.Errorf("after Forget: Minor %d, Chunked %v, Close %v; want 1, true, true", r.Minor, r.Chunked, r.Close)
	}

	var res Response
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: x-hop\r\nContent-Length: 7\r\n\r\n"
	if _, err := ParseResponse([]byte(head), &res); err != nil {
		t.Fatal(err)
	}
	res.Forget()
	for i, h := range res.Headers[:cap(res.Headers)] {
		if h.Name != nil || h.Value != nil {
			t.Errorf("response field %d still holds %q: %q", i, h.Name, h.Value)
		}
	}
	if res.conn[0] != nil || res.Status != 200 || res.ContentLength != 7 {
		t.Errorf("after Forget: option %q, status %d, length %d", res.conn[0], res.Status, res.ContentLength)
	}
}
