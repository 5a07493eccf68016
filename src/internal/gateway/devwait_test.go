//go:build linux

package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The gateway's wait for a device inside one RawRead (serveRaw, step): what it must still see
// and do as serve did before it.

// serverSide returns the gateway's devConn for the device connection c.
func serverSide(t *testing.T, e *env, c net.Conn) *devConn {
	t.Helper()
	var d *devConn
	eventually(t, "the gateway to accept the connection", func() bool {
		e.gw.mu.Lock()
		defer e.gw.mu.Unlock()
		for x := range e.gw.conns {
			if x.c.RemoteAddr().String() == c.LocalAddr().String() {
				d = x
				return true
			}
		}
		return false
	})
	return d
}

// sockInt is an ioctl's answer for rc's socket (SIOCINQ, SIOCOUTQ); -1 when it failed (or rc
// is closed).
func sockInt(rc syscall.RawConn, req uint) int {
	v := -1
	rc.Control(func(fd uintptr) {
		if n, err := unix.IoctlGetInt(int(fd), req); err == nil {
			v = n
		}
	})
	return v
}

func rawOf(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// waitTaken waits until the gateway has read all c sent to d, its side of c: the gateway's
// kernel acknowledged it and nothing of it is left in the gateway's socket (or the gateway
// closed it).
func waitTaken(t *testing.T, d *devConn, c net.Conn) {
	t.Helper()
	mine := rawOf(t, c)
	eventually(t, "the gateway to read what the device sent", func() bool {
		return sockInt(mine, unix.SIOCOUTQ) == 0 && sockInt(d.raw, unix.SIOCINQ) <= 0
	})
}

// waitAcked waits until the gateway's kernel has acknowledged all c sent, its half-close too.
func waitAcked(t *testing.T, c net.Conn) {
	t.Helper()
	rc := rawOf(t, c)
	eventually(t, "the gateway's kernel to have what the device sent", func() bool { return sockInt(rc, unix.SIOCOUTQ) == 0 })
}

// waitFINAcked waits until the gateway's kernel has acknowledged c's half-close (c in
// FIN_WAIT2), so the FIN, and all sent before it, is in the gateway's socket.
func waitFINAcked(t *testing.T, c net.Conn) {
	t.Helper()
	rc := rawOf(t, c)
	eventually(t, "the gateway's kernel to have the half-close", func() bool {
		state := -1
		rc.Control(func(fd uintptr) {
			if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				state = int(ti.State)
			}
		})
		return state == unix.BPF_TCP_FIN_WAIT2
	})
}

func dialGateway(t *testing.T, e *env) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// TestHalfCloseWithTheLastRequest: a device that sends its last request and half-closes at
// once has the connection closed after the answer, not at idle_timeout, though the read that
// took the request took the half-close with it (both came while the answer before was on its
// way, and the runtime tells of a readable socket once).
func TestHalfCloseWithTheLastRequest(t *testing.T) {
	h := startHeld(t)
	e := startGateway(t, mainSection("idle_timeout", "60s", "header_timeout", "60s")+provider("openai", h.srv.URL, keyOpenAI, "bearer"))
	c, br := dialGateway(t, e)
	io.WriteString(c, heldRequest)
	waitFor(t, h.arrived, 10*time.Second, "the held request at the provider")
	io.WriteString(c, modelsRequest)
	c.(*net.TCPConn).CloseWrite()
	waitFINAcked(t, c)
	close(h.release)
	got, closed := readAnswers(t, c, br, 3)
	if len(got) != 2 || !strings.Contains(got[1], "/v1/models") || !closed {
		t.Fatalf("answers %q, closed %v: the gateway did not close after the last answer to a device that half-closed", got, closed)
	}
}

// TestBodyThatStopsGets400: a device that sends a head and part of its body, then nothing,
// gets 400 invalid_body at idle_timeout, counted, as serve answers it.
func TestBodyThatStopsGets400(t *testing.T) {
	h := startHeld(t)
	e := startGateway(t, mainSection("idle_timeout", "1s", "header_timeout", "60s")+provider("openai", h.srv.URL, keyOpenAI, "bearer"))
	c, br := dialGateway(t, e)
	io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\n{\"a\":")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(br)
	if got := string(b); !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, `"code":"invalid_body"`) || err != nil {
		t.Fatalf("got %q, %v; want a 400 invalid_body and the connection closed", got, err)
	}
	e.idle()
	if v, p := e.values(""), e.values("openai"); v.Requests != 1 || v.Status[4] != 1 || p.Requests != 1 {
		t.Errorf("counted: device %d requests, %d 4xx; provider %d requests; want 1, 1, 1", v.Requests, v.Status[4], p.Requests)
	}
}

// TestBodyOnItsWayIsBusy: a request whose head is in and whose body is still coming is in
// progress: max_conns_per_device does not close its connection for another of the device's,
// and Shutdown lets it finish.
func TestBodyOnItsWayIsBusy(t *testing.T) {
	body := `{"model":"m","messages":[]}`
	head := "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n"
	// start sends the head and a part of the body, and waits until the gateway has taken them.
	start := func(t *testing.T, e *env) (net.Conn, *bufio.Reader) {
		c, br := dialGateway(t, e)
		d := serverSide(t, e, c)
		io.WriteString(c, head+body[:5])
		waitTaken(t, d, c)
		eventually(t, "the request to count as in progress", func() bool { return d.state.Load() == stateBusy })
		return c, br
	}
	finish := func(t *testing.T, c net.Conn, br *bufio.Reader) {
		t.Helper()
		io.WriteString(c, body[5:])
		got, _ := readAnswers(t, c, br, 1)
		if len(got) != 1 || !strings.Contains(got[0], "/v1/chat/completions") {
			t.Fatalf("answers %q: the request whose body was on its way was not served", got)
		}
	}
	t.Run("max_conns_per_device", func(t *testing.T) {
		h := startHeld(t)
		e := startGateway(t, mainSection("max_conns_per_device", "1", "idle_timeout", "60s")+provider("openai", h.srv.URL, keyOpenAI, "bearer"))
		c, br := start(t, e)
		got, closed := rawExchange(t, e, "GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 429 ") || !closed {
			t.Errorf("a second connection while the first one's body comes: closed %v %q", closed, got)
		}
		finish(t, c, br)
	})
	t.Run("Shutdown", func(t *testing.T) {
		h := startHeld(t)
		e := startGateway(t, mainSection("idle_timeout", "60s")+provider("openai", h.srv.URL, keyOpenAI, "bearer"))
		c, br := start(t, e)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done <- e.gw.Shutdown(ctx)
		}()
		eventually(t, "Shutdown to begin", e.gw.isClosing)
		finish(t, c, br)
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// TestMaxBodyRaisedWhileIdle: a reload that raises max_body while a connection waits for its
// next request: a body past the old limit and within the new one, coming in parts, is read
// and served (not refused because its body was not read where it could have been).
func TestMaxBodyRaisedWhileIdle(t *testing.T) {
	h := startHeld(t)
	rest := provider("openai", h.srv.URL, keyOpenAI, "bearer")
	e := startGateway(t, mainSection("max_body", "1K", "idle_timeout", "60s")+rest)
	c, br := dialGateway(t, e)
	io.WriteString(c, "GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
	if got, _ := readAnswers(t, c, br, 1); len(got) != 1 {
		t.Fatalf("first answer: %q", got)
	}
	<-h.bodies
	d := serverSide(t, e, c)
	e.table.Store(loadTable(t, mainSection("max_body", "64K", "idle_timeout", "60s")+rest))
	body := `{"pad":"` + strings.Repeat("x", 2000) + `"}`
	io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body[:1000])
	waitTaken(t, d, c)
	io.WriteString(c, body[1000:])
	got, _ := readAnswers(t, c, br, 1)
	if len(got) != 1 || !strings.Contains(got[0], "/v1/chat/completions") {
		t.Fatalf("answers %q: a body within max_body was refused", got)
	}
	if b := <-h.bodies; b != body {
		t.Errorf("the provider got %d bytes, want %d", len(b), len(body))
	}
}

// TestTooLargeRefusedBeforeItsBody: a head whose Content-Length is past max_body is answered
// 413 at once, without waiting for a body the device may hold back, and the connection closes.
func TestTooLargeRefusedBeforeItsBody(t *testing.T) {
	h := startHeld(t)
	e := startGateway(t, mainSection("max_body", "1K", "idle_timeout", "60s")+provider("openai", h.srv.URL, keyOpenAI, "bearer"))
	for _, n := range []int{2000, 1 << 20} { // a body the buffer could hold, one it could not
		c, br := dialGateway(t, e)
		io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: "+itoa(n)+"\r\n\r\n{")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(br)
		if got := string(b); !strings.HasPrefix(got, "HTTP/1.1 413 ") || err != nil {
			t.Errorf("Content-Length %d: got %q, %v; want a 413 and the connection closed", n, got, err)
		}
	}
}

// closingProvider answers every request with head and part1, then, once told (more), part2
// and its half-close in one segment (TCP_CORK), so that one read of the gateway's takes both.
type closingProvider struct {
	ln   net.Listener
	head string
	more chan struct{}
}

func startClosing(t *testing.T, head string) *closingProvider {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &closingProvider{ln: ln, head: head, more: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *closingProvider) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	io.WriteString(c, p.head+"part1")
	<-p.more
	rc, _ := c.(*net.TCPConn).SyscallConn()
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_CORK, 1) })
	io.WriteString(c, "part2")
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// TestProviderCloseSeen: a plain provider's close is seen when it comes, though the read that
// took its last bytes took the close with them (of which the runtime says nothing more), not
// at stream_idle_timeout: an answer that runs until the close ends there, one the close cuts
// short is cut there.
func TestProviderCloseSeen(t *testing.T) {
	for _, tc := range []struct{ name, head, wantErr string }{
		{"until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n", ""},
		{"cut short", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n", "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startClosing(t, tc.head)
			e := startGateway(t, mainSection("stream_idle_timeout", "60s", "idle_timeout", "60s")+provider("openai", "http://"+p.ln.Addr().String(), keyOpenAI, "bearer"))
			c, br := dialGateway(t, e)
			io.WriteString(c, "GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			first := make([]byte, 5)
			if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "part1" {
				t.Fatalf("first part %q, %v", first, err)
			}
			close(p.more)
			rest, err := io.ReadAll(res.Body)
			if got := fmt.Sprint(err); string(rest) != "part2" || err != nil && got != tc.wantErr || err == nil && tc.wantErr != "" {
				t.Fatalf("the rest: %q, %v; want part2, then %q", rest, err, tc.wantErr)
			}
		})
	}
}

// TestInqReader: what inqReader says a socket holds after a read: nothing (0) once it took all,
// more (1) when it took the peer's half-close with the last bytes, whose next read is the end.
func TestInqReader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r inqReader
	buf := make([]byte, 64)
	// read reads as step does: inside a RawRead, waiting only while the socket is empty.
	read := func() (n, inq int, err error) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if rerr := rawOf(t, c).Read(func(fd uintptr) bool {
			n, inq, err = r.read(fd, buf)
			return err != syscall.EAGAIN
		}); rerr != nil {
			t.Fatal(rerr)
		}
		return n, inq, err
	}
	io.WriteString(peer, "abc")
	if n, inq, err := read(); n != 3 || err != nil || r.known() && inq != 0 {
		t.Fatalf("a read of all there was: %d %d %v, want 3 bytes, inq 0", n, inq, err)
	}
	if !r.known() {
		t.Skip("no TCP_INQ here: inqReader says -1 (unknown) after every read")
	}
	io.WriteString(peer, "de")
	peer.(*net.TCPConn).CloseWrite()
	waitFINAcked(t, peer)
	if n, inq, err := read(); n != 2 || err != nil || inq != 1 {
		t.Fatalf("a read of the last bytes and the half-close: %d %d %v, want 2 bytes, inq 1", n, inq, err)
	}
	if n, _, err := read(); n != 0 || err != nil {
		t.Fatalf("the read after: %d %v, want the end (0)", n, err)
	}
}
