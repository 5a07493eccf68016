package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/fakeprovider"
)

// dialSmallWindow connects to the gateway from from (a 127.0.0.0/8 address; "" any) with a
// small receive buffer, so that a device that does not read stops the gateway's writes soon.
func dialSmallWindow(t *testing.T, e *env, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// endless is a provider that streams events until its request ends, and says when it did.
type endless struct {
	*httptest.Server
	written atomic.Int64
	ended   chan struct{} // a token when a stream's request ended (the gateway let go of it)
}

func startEndless(t *testing.T) *endless {
	p := &endless{ended: make(chan struct{}, 16)}
	ev := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("w", 16<<10) + "\"}}]}\n\n")
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { p.ended <- struct{}{} }()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for r.Context().Err() == nil {
			n, err := w.Write(ev)
			p.written.Add(int64(n))
			if err != nil || rc.Flush() != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { p.CloseClientConnections(); p.Close() })
	return p
}

// waitFor waits up to d for a token on ch.
func waitFor(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// TestDeviceThatStopsReadingIsCut: a device that takes no byte of its stream for
// write_timeout loses the connection, the provider's request ends (its connection is not held),
// and the cut is counted in status.
func TestDeviceThatStopsReadingIsCut(t *testing.T) {
	up := startEndless(t)
	e := startGateway(t, mainSection("write_timeout", "1s", "stream_idle_timeout", "60s")+provider("openai", up.URL, keyOpenAI, "bearer"))
	c := dialSmallWindow(t, e, "")
	body := `{"model":"m","stream":true}`
	io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
	// The device reads nothing. Filling the socket buffers takes a moment; then write_timeout.
	waitFor(t, up.ended, 20*time.Second, "the provider's request to end")
	e.idle()
	v := e.values("openai")
	if v.WriteTimeouts != 1 || e.values("").WriteTimeouts != 1 {
		t.Errorf("write_timeouts %d (device total %d), want 1", v.WriteTimeouts, e.values("").WriteTimeouts)
	}
	// The device's connection is closed: what is buffered drains, then EOF (or a reset).
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
		t.Errorf("the device's connection was not closed: %v", err)
	}
	if !strings.Contains(e.logs.String(), "write_timeout") {
		t.Errorf("no log line for the cut:\n%s", e.logs.String())
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestDeviceThatStopsReadingErrorsIsCut: a device that pipelines requests and reads none of
// the answers is cut too, when only the gateway's own (error) answers are written to it.
func TestDeviceThatStopsReadingErrorsIsCut(t *testing.T) {
	e := startGateway(t, mainSection("write_timeout", "1s"))
	c := dialSmallWindow(t, e, "")
	// 404s (no provider at the path) until the gateway stops taking requests: its answers fill
	// the device's window and its own send buffer; write_timeout then cuts the connection, and
	// the device's writes fail. Without the cut they would block until the deadline here.
	req := []byte(strings.Repeat("GET /nothing/here HTTP/1.1\r\nHost: gw\r\n\r\n", 64))
	c.SetWriteDeadline(time.Now().Add(15 * time.Second))
	var err error
	for err == nil {
		_, err = c.Write(req)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the gateway kept the connection of a device that reads no answer")
	}
	eventually(t, "write_timeouts to be counted", func() bool { return e.values("").WriteTimeouts == 1 })
}

// keptConn is a device connection that has had one answer and is kept alive.
type keptConn struct {
	net.Conn
	br *bufio.Reader
}

// openKept opens a connection from from (a 127.0.0.0/8 address) and gets one answer on it.
func openKept(t *testing.T, e *env, from string) *keptConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	k := &keptConn{Conn: c, br: bufio.NewReader(c)}
	if st := k.get(t); st != 200 {
		t.Fatalf("first answer from %s: %d", from, st)
	}
	// The device has its answer a moment before the gateway marks the connection idle; the
	// tests reclaim the longest-idle one, so the order of the marks must be the order of the
	// opens.
	e.waitAllIdle(t)
	return k
}

// waitAllIdle waits until the gateway holds every device connection idle (its answer written,
// waiting for the next request).
func (e *env) waitAllIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := 0
		e.gw.mu.Lock()
		for c := range e.gw.conns {
			if c.state.Load() == stateBusy {
				busy++
			}
		}
		e.gw.mu.Unlock()
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d device connections still busy after 5s", busy)
		}
		time.Sleep(time.Millisecond)
	}
}

// get sends one request and returns the answer's status; 0 when the gateway closed the
// connection instead.
func (k *keptConn) get(t *testing.T) int {
	t.Helper()
	k.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(k, "GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		return 0
	}
	res, err := http.ReadResponse(k.br, nil)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("no answer within 5s")
		}
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// closedByGateway reports whether the gateway closed k, waiting up to 5s for the EOF.
func (k *keptConn) closedByGateway() bool {
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := k.br.ReadByte()
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestMaxConnsPerDeviceReclaimsIdle: a device at max_conns_per_device that opens one more
// connection gets it served; its own longest-idle kept-alive connection is closed for it.
func TestMaxConnsPerDeviceReclaimsIdle(t *testing.T) {
	up := startUpstream(t, keyOpenAI)
	e := startGateway(t, mainSection("max_conns_per_device", "3")+provider("openai", up.URL(), keyOpenAI, "bearer"))
	a := openKept(t, e, "127.0.0.1")
	b := openKept(t, e, "127.0.0.1")
	c := openKept(t, e, "127.0.0.1")
	other := openKept(t, e, "127.0.0.2") // another device: not counted against the first
	openKept(t, e, "127.0.0.1")          // the fourth: served
	if !a.closedByGateway() {
		t.Fatal("the device's longest-idle connection was not closed when it went past max_conns_per_device")
	}
	for i, k := range []*keptConn{b, c, other} {
		if st := k.get(t); st != 200 {
			t.Errorf("connection %d: %d after the reclaim", i, st)
		}
	}
}

// TestMaxConnsPerDeviceAllBusy: a device whose max_conns_per_device connections are all busy
// gets 429 too_many_connections on one more, and the connection is closed.
func TestMaxConnsPerDeviceAllBusy(t *testing.T) {
	up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}) })
	e := startGateway(t, mainSection("max_conns_per_device", "2")+provider("openai", up.URL(), keyOpenAI, "bearer"))
	var streams []*sseReader
	for range 2 {
		req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
		res, err := e.client.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stream: %v %v", res, err)
		}
		defer res.Body.Close()
		sr := readSSE(res.Body)
		sr.next(t, 5*time.Second, "the first event") // busy: the fake waits on Step
		streams = append(streams, sr)
	}
	got, closed := rawExchange(t, e, "GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
	head, body, _ := strings.Cut(got, "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 429 ") || !strings.Contains(body, `"code":"too_many_connections"`) || !closed {
		t.Fatalf("a third connection while two stream: closed %v %q", closed, got)
	}
	if strings.Contains(head, "x-should-retry: false") {
		t.Errorf("the SDKs should retry this one: %q", head)
	}
	close(up.Step) // the streams finish
	for _, sr := range streams {
		for ev := ""; ev != "[DONE]"; {
			ev = sr.next(t, 5*time.Second, "the rest of the stream")
		}
	}
}

// TestIdleKeepAlivesDoNotStarveTheNextDevice: with every slot of max_conns taken by one
// device's idle kept-alive connections, the next device is served at once: an idle one is
// closed for it.
func TestIdleKeepAlivesDoNotStarveTheNextDevice(t *testing.T) {
	up := startUpstream(t, keyOpenAI)
	e := startGateway(t, mainSection("max_conns", "4", "max_conns_per_device", "8")+provider("openai", up.URL(), keyOpenAI, "bearer"))
	var hog []*keptConn
	for range 4 {
		hog = append(hog, openKept(t, e, "127.0.0.1"))
	}
	openKept(t, e, "127.0.0.2") // fails unless served within 5s (idle_timeout is 10 minutes)
	if !hog[0].closedByGateway() {
		t.Error("the longest-idle connection was not the one closed")
	}
	for _, k := range hog[1:] {
		if st := k.get(t); st != 200 {
			t.Errorf("a kept connection that was not reclaimed: %d", st)
		}
	}
}
