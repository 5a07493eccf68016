package egress

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// countingReader hands out data in chunks of at most step bytes and counts what was taken.
type countingReader struct {
	data []byte
	step int
	n    int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.n == len(r.data) {
		return 0, io.EOF
	}
	if len(p) > r.step {
		p = p[:r.step]
	}
	m := copy(p, r.data[r.n:])
	r.n += m
	return m, nil
}

// FuzzSOCKSReply: a successful reply is consumed to its exact length, never beyond.
func FuzzSOCKSReply(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 'x'})
	f.Add([]byte{5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187})
	f.Add([]byte{5, 0, 0, 3, 3, 'a', 'b', 'c', 0, 80, 'y'})
	f.Add([]byte{5, 0, 0, 3, 0, 0, 80})
	f.Add([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0, 0, 9})
	f.Add([]byte{4, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &countingReader{data: in, step: 3}
		buf := make([]byte, bufSize)
		_, err := readSOCKSReply(r, buf)
		if err != nil {
			var re socksReplyError
			if errors.As(err, &re) && (r.n != 4 || in[1] == 0) {
				t.Fatalf("reply error %v after %d bytes", err, r.n)
			}
			return
		}
		want := 4 + 2
		switch in[3] {
		case socksAtypIPv4:
			want += 4
		case socksAtypIPv6:
			want += 16
		case socksAtypName:
			want += 1 + int(in[4])
		}
		if r.n != want {
			t.Fatalf("consumed %d bytes of a %d-byte reply", r.n, want)
		}
	})
}

// FuzzReadHead: the head is read up to its blank line and not a byte further, whatever the
// chunking; parseStatus never panics and only returns three-digit codes.
func FuzzReadHead(f *testing.F) {
	f.Add(byte(1), []byte("HTTP/1.1 200 Connection established\r\n\r\nhello"))
	f.Add(byte(7), []byte("HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"))
	f.Add(byte(64), []byte("HTTP/1.1 200\r\n\r\n\r\n"))
	f.Add(byte(2), []byte("\r\n\r\r\n\r\n"))
	f.Add(byte(3), []byte("HTTP/1.1 2x0 OK\r\n\r\n"))
	f.Add(byte(5), []byte("SSH-2.0-x\r\n"))
	f.Fuzz(func(t *testing.T, step byte, in []byte) {
		r := &countingReader{data: in, step: int(step%16) + 1}
		buf := make([]byte, 256)
		n, err := readHead(r, buf)
		end := bytes.Index(in, []byte("\r\n\r\n"))
		if err == nil {
			if end < 0 || n != end+4 || r.n != n || !bytes.Equal(buf[:n], in[:n]) {
				t.Fatalf("head of %d bytes read as %d (consumed %d), blank line at %d", len(in), n, r.n, end)
			}
			code, _, err := parseStatus(buf[:n])
			if err == nil && (code < 0 || code > 999) {
				t.Fatalf("status code %d", code)
			}
		} else if end >= 0 && end+4 <= len(buf) {
			t.Fatalf("head with a blank line at %d failed: %v", end, err)
		}
		if end >= 0 && r.n > end+4 {
			t.Fatalf("over-read: consumed %d bytes, head ends at %d", r.n, end+4)
		}
	})
}
