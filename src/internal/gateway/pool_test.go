package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/h1"
)

// strayProvider is a provider on raw sockets that logs what it got and, after its first answer
// on each connection, sends the bytes of a second answer nobody asked for. Later requests on the
// connection get a normal answer.
type strayProvider struct {
	url       string
	conns     atomic.Int64
	requests  atomic.Int64
	straySent chan struct{} // a token each time the stray bytes went out
}

const strayAnswer = "HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{\"injected\":\"yes\"}\n"

// startStrayProvider serves plain TCP, or TLS when tlsLeaf is set. The first answer on a
// connection is exactly bufSize bytes, so that a gateway reading it into one pooled buffer has
// nothing left over in it; with oneWrite the stray bytes go in the same write, else in the next.
func startStrayProvider(t *testing.T, useTLS, oneWrite bool) *strayProvider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sp := &strayProvider{url: "http://" + ln.Addr().String(), straySent: make(chan struct{}, 16)}
	if useTLS {
		leaf, err := mustCA(t).Leaf("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"http/1.1"}})
		sp.url = "https://" + ln.Addr().String()
	}
	t.Cleanup(func() { ln.Close() })
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
	bodyLen := bufSize - len(head) - len("4000\r\n\r\n")
	first := head + strconv.Itoa(bodyLen) + "\r\n\r\n" + `{"a":"` + strings.Repeat("x", bodyLen-9) + `"}` + "\n"
	if len(first) != bufSize {
		t.Fatalf("first answer is %d bytes", len(first))
	}
	const normal = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"normal\":\"yes\"}\n"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sp.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var r h1.Request
				for n := 0; ; n++ {
					if _, err := readRawHead(br, func(p []byte) (int, error) { return h1.ParseRequest(p, &r) }); err != nil {
						return
					}
					if r.ContentLength > 0 {
						io.CopyN(io.Discard, br, r.ContentLength)
					}
					sp.requests.Add(1)
					switch {
					case n > 0:
						io.WriteString(c, normal)
						continue
					case oneWrite:
						io.WriteString(c, first+strayAnswer)
					default:
						io.WriteString(c, first)
						io.WriteString(c, strayAnswer)
					}
					sp.straySent <- struct{}{}
				}
			}()
		}
	}()
	return sp
}

// TestStrayBytesNeverReachTheNextDevice: bytes a provider sends after a complete answer are
// never read as the answer to the next request on that pooled connection (which can be another
// device's): the connection is closed instead of reused.
func TestStrayBytesNeverReachTheNextDevice(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		useTLS, oneWrite, wrap bool
	}{
		{"plain, in the same write", false, true, false},
		{"plain, in the next write", false, false, false},
		{"TLS, in the same write", true, true, false},
		{"TLS, in the next write", true, false, false},
		// A dialer whose connections give no socket to check: they are never reused.
		{"plain, no socket", false, false, true},
		{"TLS, no socket", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := startStrayProvider(t, tc.useTLS, tc.oneWrite)
			e := startGateway(t, mainSection()+provider("openai", sp.url, keyOpenAI, "bearer"), func(o *Options) {
				if tc.wrap {
					o.Dial = func(ctx context.Context, _ *config.Provider, network, addr string) (net.Conn, error) {
						var d net.Dialer
						c, err := d.DialContext(ctx, network, addr)
						return struct{ net.Conn }{c}, err
					}
				}
			})
			res, body := e.do("GET", "/openai/v1/models", "")
			if res.StatusCode != 200 || len(body) < 1000 {
				t.Fatalf("first answer: %d %.60q", res.StatusCode, body)
			}
			waitClosed(t, sp.straySent, "the stray bytes to be sent")
			// Another device connection, so that only the pool could carry the bytes over.
			e.client.CloseIdleConnections()
			res, body = e.do("GET", "/openai/v1/models", "")
			if res.Header.Get("X-Injected") != "" || strings.Contains(body, "injected") {
				t.Fatalf("the next request got the stray answer: %v %q", res.Header, body)
			}
			if res.StatusCode != 200 || !strings.Contains(body, `"normal"`) && len(body) < 1000 {
				t.Fatalf("second answer: %d %q", res.StatusCode, body)
			}
			if n := sp.conns.Load(); n != 2 {
				t.Errorf("%d provider connections, want 2 (the first closed, not reused)", n)
			}
		})
	}
}
