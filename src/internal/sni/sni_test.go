package sni

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// clientHello captures the first flight of a real crypto/tls client.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	c1, c2 := net.Pipe()
	defer c2.Close()
	go func() {
		cl := tls.Client(c1, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""})
		_ = cl.Handshake()
		c1.Close()
	}()
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf bytes.Buffer
	tmp := make([]byte, 4096)
	for {
		n, err := c2.Read(tmp)
		buf.Write(tmp[:n])
		if err != nil {
			t.Fatalf("reading ClientHello: %v", err)
		}
		if name, need, err := Parse(buf.Bytes()); err != nil || need == 0 {
			_ = name
			return buf.Bytes()
		}
	}
}

// split re-frames one-record hello into records of at most size bytes of payload.
func split(hello []byte, size int) []byte {
	payload := hello[5:]
	var out []byte
	for len(payload) > 0 {
		n := min(size, len(payload))
		out = append(out, 0x16, 3, 1, byte(n>>8), byte(n))
		out = append(out, payload[:n]...)
		payload = payload[n:]
	}
	return out
}

func TestParse(t *testing.T) {
	hello := clientHello(t, "api.openai.com")
	upper := clientHello(t, "API.Anthropic.COM")
	noSNI := clientHello(t, "")
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr error
	}{
		{"real ClientHello", hello, "api.openai.com", nil},
		{"case is kept", upper, "API.Anthropic.COM", nil},
		{"no SNI", noSNI, "", nil},
		{"split in 3 records", split(hello, len(hello)/3+1), "api.openai.com", nil},
		{"split in many records", split(hello, len(hello)/(MaxRecords+1)), "", ErrTooLarge}, // whatever key shares crypto/tls sends
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "", ErrNotTLS},
		{"SSLv2-ish", []byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0, 0}, "", ErrNotTLS},
		{"alert record", []byte{0x15, 3, 3, 0, 2, 2, 40}, "", ErrNotTLS},
		{"zero length record", []byte{0x16, 3, 1, 0, 0}, "", ErrMalformed},
		{"not a ClientHello", []byte{0x16, 3, 3, 0, 4, 2, 0, 0, 0}, "", ErrNotClientHello},
		{"huge handshake", []byte{0x16, 3, 3, 0, 4, 1, 0x10, 0, 0}, "", ErrTooLarge},
		{"empty hello body", []byte{0x16, 3, 3, 0, 4, 1, 0, 0, 0}, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, need, err := Parse(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (need != 0 || got != tt.want) {
				t.Fatalf("got (%q, need %d), want (%q, 0)", got, need, tt.want)
			}
		})
	}
}

// Fed byte by byte, Parse asks for more until the hello is complete, and never asks for less
// than it was given.
func TestParseIncremental(t *testing.T) {
	for _, in := range [][]byte{clientHello(t, "api.openai.com"), split(clientHello(t, "api.x.ai"), 300)} {
		calls := 0
		for n := 0; ; {
			name, need, err := Parse(in[:n])
			calls++
			if err != nil {
				t.Fatalf("at %d bytes: %v", n, err)
			}
			if need == 0 {
				if n != len(in) || name == "" {
					t.Fatalf("done at %d of %d bytes with %q", n, len(in), name)
				}
				break
			}
			if need <= n || need > len(in) {
				t.Fatalf("at %d bytes: need %d (total %d)", n, need, len(in))
			}
			n = need
		}
		if calls > 2*MaxRecords+1 {
			t.Errorf("%d calls: reads should follow record boundaries", calls)
		}
	}
}

func TestBadName(t *testing.T) {
	hello := clientHello(t, "api.openai.com")
	i := bytes.Index(hello, []byte("api.openai.com"))
	bad := bytes.Clone(hello)
	bad[i+3] = '/'
	if _, _, err := Parse(bad); !errors.Is(err, ErrBadName) {
		t.Fatalf("name with '/': err = %v", err)
	}
	bad[i+3] = 0
	if _, _, err := Parse(bad); !errors.Is(err, ErrBadName) {
		t.Fatalf("name with NUL: err = %v", err)
	}
}

func TestParseAllocs(t *testing.T) {
	hello := clientHello(t, "api.openai.com")
	allocs := testing.AllocsPerRun(100, func() { _, _, _ = Parse(hello) })
	if allocs > 1 { // the returned name
		t.Fatalf("%v allocations per Parse, want at most 1", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	hello := clientHello(b, "api.openai.com")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_, _, _ = Parse(hello)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(clientHello(f, "api.openai.com"))
	f.Add(clientHello(f, ""))
	f.Add(split(clientHello(f, "generativelanguage.googleapis.com"), 200))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, need, err := Parse(b)
		if err != nil {
			return
		}
		if need != 0 {
			if need <= len(b) {
				t.Fatalf("need %d with %d bytes given", need, len(b))
			}
			return
		}
		if name != "" && !validName([]byte(name)) {
			t.Fatalf("invalid name %q returned", name)
		}
	})
}
