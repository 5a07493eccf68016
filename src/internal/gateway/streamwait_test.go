//go:build linux

package gateway

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/fakeprovider"
)

// TestStreamEventsReadOncePerEvent: between the events of a stream the gateway waits for the
// poller without first reading the provider's socket to find it empty (passRaw, encode: one
// RawRead for the whole answer), from a plain-HTTP provider and through crypto/tls alike: a
// stream of n events costs no read that finds nothing, where a read after every event did (a
// system call per event). And between events the stream holds no pooled buffer.
func TestStreamEventsReadOncePerEvent(t *testing.T) {
	if !inqBuilt {
		t.Skip("this build reads until EAGAIN: without TCP_INQ a short read does not tell the socket is empty")
	}
	for _, over := range []string{"http", "https"} {
		for _, tc := range []struct {
			name, body string
			extra      []string
			parked     string
		}{
			{"passed as framed", chatStream, nil, "gateway.(*exchange).passRaw("},
			// stream_usage re-frames the stream (encode), to take out the usage asked for
			{"stream_usage", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
				[]string{"stream_usage", "1"}, "gateway.(*exchange).encode("},
		} {
			t.Run(over+"/"+tc.name, func(t *testing.T) {
				// Reads that found nothing: the gateway's own (raw) ones, and the ones through
				// net.Conn, which find nothing and wait when begun on an empty socket.
				var empty, bufs atomic.Int64
				testHookEmptyRead = func() { empty.Add(1) }
				testHookBufs = func(d int) { bufs.Add(int64(d)) }
				t.Cleanup(func() { testHookEmptyRead, testHookBufs = nil, nil }) // after the gateway's cleanup
				up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) {
					f.Step = make(chan struct{})
					f.Text = strings.Repeat("word ", 40)
				})
				url := up.PlainURL()
				if over == "https" {
					url = up.URL()
				}
				e := startGateway(t, mainSection()+provider("openai", url, keyOpenAI, "bearer", tc.extra...), func(o *Options) {
					o.Dial = func(ctx context.Context, _ *config.Provider, network, addr string) (net.Conn, error) {
						var d net.Dialer
						c, err := d.DialContext(ctx, network, addr)
						if err != nil {
							return nil, err
						}
						return emptyReadConn{c.(*net.TCPConn), &empty}, nil
					}
				})
				res, err := e.client.Post(e.base+"/openai/v1/chat/completions", "application/json", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				sr := readSSE(res.Body)
				events, waits, held := 0, 0, 0
				for ev := ""; ev != "[DONE]"; events++ {
					ev = sr.next(t, 5*time.Second, fmt.Sprintf("event %d", events))
					if ev == "[DONE]" {
						break
					}
					steps := 1
					if tc.extra != nil && strings.Contains(ev, `"finish_reason":"stop"`) {
						steps = 2 // the usage chunk, which the gateway takes out, then [DONE]
					}
					for step := range steps {
						waitParked(t, tc.parked)
						// Only once the device has the last event is the wait known to have
						// begun after it (the usage chunk the gateway takes out may still be
						// on its way when the second step finds the goroutine parked).
						if step == 0 {
							waits++
							if bufs.Load() != 0 {
								held++
							}
						}
						select {
						case up.Step <- struct{}{}:
						case <-time.After(5 * time.Second):
							t.Fatalf("the fake never asked for event %d", events+1)
						}
					}
				}
				if events < 40 {
					t.Fatalf("%d events", events)
				}
				// A read can find nothing now and then (the poller may report data a read already
				// took), but not once per event.
				if n := empty.Load(); n > int64(events/4) {
					t.Errorf("%d reads of the provider found nothing in a stream of %d events", n, events)
				}
				if held > 0 {
					t.Errorf("the stream held pooled buffers in %d of its %d waits for the next event", held, waits)
				}
			})
		}
	}
}

// emptyReadConn counts the reads through net.Conn begun while its socket held nothing: each
// finds nothing, then waits.
type emptyReadConn struct {
	*net.TCPConn
	empty *atomic.Int64
}

func (c emptyReadConn) Read(p []byte) (int, error) {
	if rc, err := c.SyscallConn(); err == nil && sockInt(rc, unix.SIOCINQ) == 0 {
		c.empty.Add(1)
	}
	return c.TCPConn.Read(p)
}
