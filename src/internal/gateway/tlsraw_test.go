//go:build linux

package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawTLSProvider is a provider over TLS whose answers a test writes record by record, and
// whose records it can send in pieces: records(p) gives what tls.Conn would send for p, and
// the test writes those bytes to the TCP connection as it likes.
type rawTLSProvider struct {
	ln    net.Listener
	conns atomic.Int64
}

// capConn is the TCP connection under the provider's tls.Conn: while capture is set, what
// tls.Conn writes is kept there instead of sent.
type capConn struct {
	net.Conn
	capture *bytes.Buffer
}

func (c *capConn) Write(p []byte) (int, error) {
	if c.capture != nil {
		return c.capture.Write(p)
	}
	return c.Conn.Write(p)
}

// rawTLSConn is one connection of the provider, handed to the test's function per request.
type rawTLSConn struct {
	tc  *tls.Conn
	cc  *capConn
	tcp *net.TCPConn
	br  *bufio.Reader
}

// sseHead is the head of a chunked event stream; chunk(s) is s as one chunk, eventChunk(i) the
// i-th test event as one.
const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

func eventChunk(i int) string { return chunk(fmt.Sprintf("data: %d\n\n", i)) }

// eventsInPieces serves one request with a chunked stream of five events, the records of each
// sent in pieces cut where cuts(its length) says, with pause after every piece.
func eventsInPieces(pause time.Duration, cuts func(n int) []int) func(c *rawTLSConn) {
	return func(c *rawTLSConn) {
		if !c.readRequest() {
			return
		}
		c.send(c.records(sseHead))
		for i := range 5 {
			rec := c.records(eventChunk(i))
			c.sendInPieces(rec, pause, cuts(len(rec))...)
		}
		c.send(c.records("0\r\n\r\n"))
		c.readRequest()
	}
}

// records returns the records tls.Conn makes of p, unsent.
func (c *rawTLSConn) records(p string) []byte {
	var b bytes.Buffer
	c.cc.capture = &b
	if _, err := c.tc.Write([]byte(p)); err != nil {
		panic(err)
	}
	c.cc.capture = nil
	return b.Bytes()
}

// closeNotify returns the close_notify alert record, unsent.
func (c *rawTLSConn) closeNotify() []byte {
	var b bytes.Buffer
	c.cc.capture = &b
	c.tc.CloseWrite()
	c.cc.capture = nil
	c.tcp.SetWriteDeadline(time.Time{}) // CloseWrite leaves it at once
	return b.Bytes()
}

// send writes raw bytes to the TCP connection.
func (c *rawTLSConn) send(b []byte) {
	c.tcp.Write(b)
}

// sendInPieces writes b cut at the offsets at (ascending), with pause after every piece.
func (c *rawTLSConn) sendInPieces(b []byte, pause time.Duration, at ...int) {
	from := 0
	for _, to := range append(at, len(b)) {
		c.send(b[from:to])
		time.Sleep(pause)
		from = to
	}
}

// readRequest reads one request (head and Content-Length body); false at the connection's end.
func (c *rawTLSConn) readRequest() bool {
	n := 0
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "content-length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	_, err := io.CopyN(io.Discard, c.br, int64(n))
	return err == nil
}

func startRawTLS(t *testing.T, maxVersion uint16, serve func(c *rawTLSConn)) *rawTLSProvider {
	t.Helper()
	leaf, err := mustCA(t).Leaf("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf}, MaxVersion: maxVersion, NextProtos: []string{"http/1.1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rawTLSProvider{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			go func() {
				defer c.Close()
				cc := &capConn{Conn: c}
				tc := tls.Server(cc, cfg)
				if err := tc.Handshake(); err != nil {
					return
				}
				serve(&rawTLSConn{tc: tc, cc: cc, tcp: c.(*net.TCPConn), br: bufio.NewReader(tc)})
			}()
		}
	}()
	return p
}

func (p *rawTLSProvider) url() string { return "https://" + p.ln.Addr().String() }

var tlsVersions = []struct {
	name string
	v    uint16
}{{"tls12", tls.VersionTLS12}, {"tls13", tls.VersionTLS13}}

// TestTLSAnswerRecordBoundaries: a TLS provider's answer read inside one RawRead (readIn) goes
// through whole however its records arrive: split across segments with waits between, ended by
// close_notify in the same segment as the last data (no FIN), by a FIN without close_notify,
// with a Content-Length answer kept alive, and with records larger than the read buffer.
func TestTLSAnswerRecordBoundaries(t *testing.T) {
	for _, tv := range tlsVersions {
		t.Run(tv.name+"/split records", func(t *testing.T) {
			p := startRawTLS(t, tv.v, eventsInPieces(20*time.Millisecond, func(n int) []int { return []int{3, n - 4} }))
			e := startGateway(t, mainSection()+provider("openai", p.url(), keyOpenAI, "bearer"))
			res, body := e.do("POST", "/openai/v1/chat/completions", chatStream)
			if res.StatusCode != 200 || strings.Count(body, "data:") != 5 {
				t.Fatalf("%d %q", res.StatusCode, body)
			}
		})
		t.Run(tv.name+"/close_notify with the last data", func(t *testing.T) {
			hold := make(chan struct{})
			t.Cleanup(func() { close(hold) })
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				if !c.readRequest() {
					return
				}
				c.send(c.records("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart1"))
				time.Sleep(20 * time.Millisecond)
				b := append(c.records("part2"), c.closeNotify()...)
				c.send(b)
				<-hold
			})
			e := startGateway(t, mainSection("stream_idle_timeout", "30s")+provider("openai", p.url(), keyOpenAI, "bearer"))
			start := time.Now()
			res, body := e.do("GET", "/openai/v1/models", "")
			if res.StatusCode != 200 || body != "part1part2" || time.Since(start) > 2*time.Second {
				t.Fatalf("%d %q after %v", res.StatusCode, body, time.Since(start))
			}
		})
		t.Run(tv.name+"/FIN without close_notify", func(t *testing.T) {
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				if !c.readRequest() {
					return
				}
				c.send(c.records("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart1"))
				time.Sleep(20 * time.Millisecond)
				c.send(c.records("part2"))
				c.tcp.CloseWrite()
				time.Sleep(time.Second)
			})
			e := startGateway(t, mainSection("stream_idle_timeout", "30s")+provider("openai", p.url(), keyOpenAI, "bearer"))
			start := time.Now()
			res, body := e.do("GET", "/openai/v1/models", "")
			if res.StatusCode != 200 || body != "part1part2" || time.Since(start) > 2*time.Second {
				t.Fatalf("%d %q after %v", res.StatusCode, body, time.Since(start))
			}
		})
		t.Run(tv.name+"/content-length kept", func(t *testing.T) {
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				for c.readRequest() {
					c.send(c.records("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\npart1"))
					time.Sleep(20 * time.Millisecond)
					c.sendInPieces(c.records("part2"), 20*time.Millisecond, 2)
				}
			})
			e := startGateway(t, mainSection()+provider("openai", p.url(), keyOpenAI, "bearer"))
			for range 3 {
				res, body := e.do("GET", "/openai/v1/models", "")
				if res.StatusCode != 200 || body != "part1part2" {
					t.Fatalf("%d %q", res.StatusCode, body)
				}
			}
			if n := p.conns.Load(); n != 1 {
				t.Errorf("%d connections", n)
			}
		})
		t.Run(tv.name+"/big records", func(t *testing.T) {
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				if !c.readRequest() {
					return
				}
				c.send(c.records("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"))
				time.Sleep(20 * time.Millisecond)
				c.send(c.records(strings.Repeat("x", 50000)))
				time.Sleep(20 * time.Millisecond)
				c.send(c.records(strings.Repeat("y", 50000)))
			})
			e := startGateway(t, mainSection()+provider("openai", p.url(), keyOpenAI, "bearer"))
			res, body := e.do("GET", "/openai/v1/models", "")
			if res.StatusCode != 200 || len(body) != 100000 {
				t.Fatalf("%d %d", res.StatusCode, len(body))
			}
		})
	}
}

// TestTLSAnswerKeptAndReframed: a connection whose provider sent close_notify after a
// Content-Length answer is not reused for the next request (the next ones still succeed); a
// chunked stream re-framed for an HTTP/1.0 device (encode) waits on split records and gives
// every pooled buffer back.
func TestTLSAnswerKeptAndReframed(t *testing.T) {
	for _, tv := range tlsVersions {
		t.Run(tv.name+"/close_notify after a length answer, then reuse", func(t *testing.T) {
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				if !c.readRequest() {
					return
				}
				c.send(c.records("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\npart1"))
				time.Sleep(20 * time.Millisecond)
				c.send(append(c.records("part2"), c.closeNotify()...))
				time.Sleep(200 * time.Millisecond)
			})
			e := startGateway(t, mainSection()+provider("openai", p.url(), keyOpenAI, "bearer"))
			for range 3 {
				res, body := e.do("GET", "/openai/v1/models", "")
				if res.StatusCode != 200 || body != "part1part2" {
					t.Fatalf("%d %q", res.StatusCode, body)
				}
			}
		})
		t.Run(tv.name+"/http10 device chunked", func(t *testing.T) {
			var bufs atomic.Int64
			testHookBufs = func(d int) { bufs.Add(int64(d)) }
			t.Cleanup(func() { testHookBufs = nil })
			p := startRawTLS(t, tv.v, eventsInPieces(10*time.Millisecond, func(int) []int { return []int{3} }))
			e := startGateway(t, mainSection()+provider("openai", p.url(), keyOpenAI, "bearer"))
			c, br := dialGateway(t, e)
			io.WriteString(c, "GET /openai/v1/models HTTP/1.0\r\nHost: gw\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			all, err := io.ReadAll(br)
			if err != nil || strings.Count(string(all), "data:") != 5 {
				t.Fatalf("%q %v", all, err)
			}
			e.idle()
			if n := bufs.Load(); n != 0 {
				t.Errorf("buffers out: %d", n)
			}
		})
	}
}

// TestTLSAnswerBufferedStripReset: records the head's read took along are passed on before the
// stream waits; a stream_usage event larger than the strip's buffer, arriving in pieces with
// waits between, is held (not freed) and passed on whole; a reset mid-record ends the stream at
// once.
func TestTLSAnswerBufferedStripReset(t *testing.T) {
	for _, tv := range tlsVersions {
		t.Run(tv.name+"/buffered records at pass start", func(t *testing.T) {
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				if !c.readRequest() {
					return
				}
				b := c.records(sseHead)
				for i := range 3 {
					b = append(b, c.records(eventChunk(i))...)
				}
				c.send(b)
				time.Sleep(100 * time.Millisecond)
				c.send(c.records(eventChunk(3) + "0\r\n\r\n"))
				c.readRequest()
			})
			e := startGateway(t, mainSection()+provider("openai", p.url(), keyOpenAI, "bearer"))
			res, body := e.do("POST", "/openai/v1/chat/completions", chatStream)
			if res.StatusCode != 200 || strings.Count(body, "data:") != 4 {
				t.Fatalf("%d %q", res.StatusCode, body)
			}
		})
		t.Run(tv.name+"/stream_usage big event in pieces", func(t *testing.T) {
			var bufs atomic.Int64
			testHookBufs = func(d int) { bufs.Add(int64(d)) }
			t.Cleanup(func() { testHookBufs = nil })
			big := "data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("x", 10000) + "\"}}]}\n\n"
			usage := "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n"
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				if !c.readRequest() {
					return
				}
				c.send(c.records(sseHead))
				c.send(c.records(chunk("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")))
				for i := 0; i < len(big); i += 3000 {
					time.Sleep(20 * time.Millisecond)
					c.send(c.records(chunk(big[i:min(i+3000, len(big))])))
				}
				time.Sleep(20 * time.Millisecond)
				c.send(c.records(chunk(usage)))
				time.Sleep(20 * time.Millisecond)
				c.send(c.records(chunk("data: [DONE]\n\n")))
				c.send(c.records("0\r\n\r\n"))
				c.readRequest()
			})
			e := startGateway(t, mainSection()+provider("openai", p.url(), keyOpenAI, "bearer", "stream_usage", "1"))
			res, body := e.do("POST", "/openai/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			want := "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" + big + "data: [DONE]\n\n"
			if res.StatusCode != 200 || body != want {
				t.Fatalf("%d %d %q", res.StatusCode, len(body), body[:min(len(body), 200)])
			}
			e.idle()
			if n := bufs.Load(); n != 0 {
				t.Errorf("buffers out: %d", n)
			}
		})
		t.Run(tv.name+"/reset mid stream", func(t *testing.T) {
			p := startRawTLS(t, tv.v, func(c *rawTLSConn) {
				if !c.readRequest() {
					return
				}
				c.send(c.records(sseHead))
				c.send(c.records(eventChunk(0)))
				time.Sleep(50 * time.Millisecond)
				rec := c.records(eventChunk(0))
				c.send(rec[:4])
				time.Sleep(50 * time.Millisecond)
				c.tcp.SetLinger(0)
				c.tcp.Close()
			})
			e := startGateway(t, mainSection("stream_idle_timeout", "30s")+provider("openai", p.url(), keyOpenAI, "bearer"))
			start := time.Now()
			req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
			res, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err == nil || time.Since(start) > 2*time.Second {
				t.Fatalf("%q %v after %v", b, err, time.Since(start))
			}
		})
	}
}
