//go:build linux

package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/access"
	"github.com/airelay/airelay/src/internal/fakeprovider"
)

// heldProvider answers /v1/held only once release is closed (arrived is told first), and every
// other path at once with "ok"; it records the bodies it got.
type heldProvider struct {
	srv     *httptest.Server
	arrived chan struct{}
	release chan struct{}
	bodies  chan string
}

func startHeld(t *testing.T) *heldProvider {
	h := &heldProvider{arrived: make(chan struct{}, 4), release: make(chan struct{}), bodies: make(chan string, 16)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.bodies <- string(b)
		if r.URL.Path == "/v1/held" {
			h.arrived <- struct{}{}
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(func() { h.srv.CloseClientConnections(); h.srv.Close() })
	return h
}

// Requests to the held provider: heldRequest waits for its release, modelsRequest is answered at once.
const (
	heldRequest   = "POST /openai/v1/held HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}"
	modelsRequest = "GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n"
)

// readAnswers reads HTTP answers from br until n came or the connection ended; it reports
// whether the gateway closed the connection after them (false: the read deadline passed).
func readAnswers(t *testing.T, c net.Conn, br *bufio.Reader, n int) (bodies []string, closed bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(bodies) < n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return bodies, isEOF(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return bodies, isEOF(err)
		}
		bodies = append(bodies, string(b))
	}
	return bodies, false
}

func isEOF(err error) bool {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err == io.EOF || err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "connection reset")
}

// TestWhatComesDuringAnAnswer: the gateway waits for a device's next request without reading
// once more to find nothing (serveRaw): what the device sends while its answer is on the way (a
// pipelined request, or its half-close) must still be seen once the answer is out, at once, not
// at idle_timeout (60 s here, past the test's 10 s reads).
func TestWhatComesDuringAnAnswer(t *testing.T) {
	h := startHeld(t)
	e := startGateway(t, mainSection("idle_timeout", "60s", "header_timeout", "60s")+provider("openai", h.srv.URL, keyOpenAI, "bearer"))
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		for len(h.bodies) > 0 { // the subtest before's
			<-h.bodies
		}
		return dialGateway(t, e)
	}
	// during sends held, and once the provider has it, runs meanwhile (the answer held), then
	// lets the answer go.
	during := func(t *testing.T, c net.Conn, meanwhile func()) {
		io.WriteString(c, heldRequest)
		select {
		case <-h.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the request did not reach the provider")
		}
		meanwhile()
		waitAcked(t, c) // what meanwhile sent is in the gateway's socket
		h.release <- struct{}{}
	}
	h.release = make(chan struct{}) // unbuffered: one answer per send
	t.Run("pipelined", func(t *testing.T) {
		c, br := dial(t)
		during(t, c, func() { io.WriteString(c, modelsRequest) })
		got, _ := readAnswers(t, c, br, 2)
		if len(got) != 2 || !strings.Contains(got[0], "/v1/held") || !strings.Contains(got[1], "/v1/models") {
			t.Fatalf("answers %q: the request sent during the first answer was not served", got)
		}
	})
	t.Run("half-close", func(t *testing.T) {
		c, br := dial(t)
		during(t, c, func() { c.(*net.TCPConn).CloseWrite() })
		got, closed := readAnswers(t, c, br, 2)
		if len(got) != 1 || !closed {
			t.Fatalf("answers %q, closed %v: the gateway did not see the device's half-close", got, closed)
		}
	})
	t.Run("body in parts", func(t *testing.T) {
		c, br := dial(t)
		d := serverSide(t, e, c)
		body := `{"model":"m","messages":[]}`
		io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n")
		waitTaken(t, d, c)
		io.WriteString(c, body[:5])
		waitTaken(t, d, c)
		io.WriteString(c, body[5:]+modelsRequest)
		got, _ := readAnswers(t, c, br, 2)
		if len(got) != 2 || !strings.Contains(got[1], "/v1/models") {
			t.Fatalf("answers %q", got)
		}
		if b := <-h.bodies; b != body {
			t.Errorf("the provider got %q, want %q", b, body)
		}
		<-h.bodies
	})
	t.Run("head in parts", func(t *testing.T) {
		c, br := dial(t)
		d := serverSide(t, e, c)
		io.WriteString(c, modelsRequest[:10])
		waitTaken(t, d, c)
		io.WriteString(c, modelsRequest[10:])
		io.WriteString(c, modelsRequest)
		got, _ := readAnswers(t, c, br, 2)
		if len(got) != 2 {
			t.Fatalf("answers %q", got)
		}
		<-h.bodies
		<-h.bodies
	})
	t.Run("bodies the buffer cannot hold, then small ones", func(t *testing.T) {
		c, br := dial(t)
		big := `{"pad":"` + strings.Repeat("x", 3*bufSize) + `"}`
		chunked := "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
		io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: "+itoa(len(big))+"\r\n\r\n"+big)
		io.WriteString(c, modelsRequest+chunked+modelsRequest)
		got, _ := readAnswers(t, c, br, 4)
		if len(got) != 4 || !strings.Contains(got[3], "/v1/models") {
			t.Fatalf("answers %q", got)
		}
		for _, want := range []string{big, "", "{}", ""} {
			if b := <-h.bodies; b != want {
				t.Errorf("the provider got a body of %d bytes, want %d", len(b), len(want))
			}
		}
	})
}

// TestCutsWhileAnswering: a connection whose answer is streaming is ended by a Shutdown past
// its deadline and by schedule_cut, though its goroutine is inside the RawRead that Close would
// wait for (serveRaw): the stream is silent (its provider waits), so only the cut can end it.
func TestCutsWhileAnswering(t *testing.T) {
	open := func(t *testing.T, e *env) *sseReader {
		req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		sr := readSSE(res.Body)
		sr.next(t, 5*time.Second, "first event")
		return sr
	}
	ended := func(t *testing.T, sr *sseReader) {
		t.Helper()
		select {
		case ev, ok := <-sr.events:
			if ok {
				t.Fatalf("an event (%q) after the cut", ev)
			}
		case <-sr.err: // (events is closed after err is sent: either may come first)
		case <-time.After(10 * time.Second):
			t.Fatal("the stream was not cut")
		}
	}
	t.Run("Shutdown", func(t *testing.T) {
		up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}) })
		e := startGateway(t, mainSection("stream_idle_timeout", "60s")+provider("openai", up.PlainURL(), keyOpenAI, "bearer"))
		sr := open(t, e)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			done <- e.gw.Shutdown(ctx)
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Error("Shutdown reported nothing cut")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown past its deadline did not return")
		}
		ended(t, sr)
	})
	t.Run("schedule_cut", func(t *testing.T) {
		start := time.Now()
		clock := time.Date(2026, 12, 7, 11, 59, 59, 0, time.UTC) // the window closes in 1 s
		g := &access.Guard{Clock: func() time.Time { return clock.Add(time.Since(start)) }}
		g.SetZone(time.UTC)
		up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}) })
		e := startGateway(t, mainSection("stream_idle_timeout", "60s")+provider("openai", up.PlainURL(), keyOpenAI, "bearer")+
			"\nconfig client 'kid'\n\tlist ip '127.0.0.1'\n\tlist schedule 'daily 00:00-12:00'\n\toption schedule_cut '1s'\n",
			func(o *Options) { o.Guard = g })
		sr := open(t, e)
		ended(t, sr)
		if took := time.Since(start); took < 2*time.Second {
			t.Errorf("cut after %v, before the window closed and schedule_cut passed", took)
		}
	})
}

// TestWholeBodiesNoEmptyRead: requests whose bodies come whole with their heads and fit the
// buffer are answered inside the RawRead (serveRaw): the wait for the next request costs no read
// that finds nothing. Only the first read of a connection may find nothing (the request not yet
// there when it is accepted). A body past the buffer costs one such read after its answer
// (served outside): moving it to a larger buffer would save that call but hold the larger
// buffer for as long as the provider takes to answer.
func TestWholeBodiesNoEmptyRead(t *testing.T) {
	var empty atomic.Int64
	testHookDeviceEmptyRead = func() { empty.Add(1) }
	t.Cleanup(func() { testHookDeviceEmptyRead = nil }) // after the gateway's cleanup
	h := startHeld(t)
	e := startGateway(t, mainSection("idle_timeout", "60s")+provider("openai", h.srv.URL, keyOpenAI, "bearer"))
	c, br := dialGateway(t, e)
	sizes := []int{100, 1 << 10, 2 << 10, 3 << 10, 3<<10 + 512, 100, 2 << 10, 1 << 10}
	for _, n := range sizes {
		body := `{"pad":"` + strings.Repeat("x", n-10) + `"}`
		io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
		if got, _ := readAnswers(t, c, br, 1); len(got) != 1 {
			t.Fatalf("no answer to a body of %d bytes", len(body))
		}
		if b := <-h.bodies; b != body {
			t.Fatalf("the provider got %d bytes, want %d", len(b), len(body))
		}
	}
	if n := empty.Load(); n > 1 {
		t.Errorf("%d reads of the device found nothing over %d requests", n, len(sizes))
	}
}
