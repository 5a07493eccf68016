package relay

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/internal/testnet"
)

// Measurements print numbers; they assert nothing about time or memory. Run them with
//
//	AIRELAY_MEASURE=1 go test -run Measure -v ./src/internal/relay
//
// For the relay's instructions per connection, run the handshake measurement under callgrind
// (the client and the provider are raw sockets in the same process; GODEBUG keeps the runtime
// off instructions valgrind 3.19 does not know):
//
//	go test -c -o /tmp/relay.test ./src/internal/relay
//	AIRELAY_MEASURE=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//	    /tmp/relay.test -test.run MeasureHandshake -test.v
//
// and the relay's share is the difference with AIRELAY_MEASURE_DIRECT=1, which makes the same
// connections straight to the provider (both runs count their I refs per connection).
//
// AIRELAY_MEASURE_CONNS=n sets the number of connections (default 500 handshakes, 2000 held).
func skipUnlessMeasuring(t *testing.T) {
	if os.Getenv("AIRELAY_MEASURE") == "" {
		t.Skip("set AIRELAY_MEASURE=1 to measure")
	}
}

func measureConns(def int) int {
	n := def
	if v := os.Getenv("AIRELAY_MEASURE_CONNS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			n = def
		}
	}
	return n
}

// rawRelay is a relay in front of a raw TCP provider that reads a ClientHello and answers with
// a 4 KiB first flight, then echoes: the relay's path without TLS crypto on either end.
func rawRelay(t *testing.T) (relayAddr, providerAddr string, hello []byte, r *Relay) {
	t.Helper()
	hello = testnet.ClientHello(t, "api.openai.com")
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	flight := make([]byte, 4096)
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, len(hello))
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(flight); err != nil {
					return
				}
				io.Copy(c, c) // echo until the device closes
			}()
		}
	}()
	tb, err := config.LoadBytes("test", []byte("config airelay 'main'\n\toption idle_timeout '10m'\n\toption max_conns '100000'\n"+
		"\toption max_conns_per_device '100000'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption connect '"+up.Addr().String()+"'\n"))
	if err != nil {
		t.Fatal(err)
	}
	r = &Relay{
		Table: func() *config.Table { return tb },
		Stats: stats.New(),
		Dial: func(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		Log: logging.Text(io.Discard, nil),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return ln.Addr().String(), up.Addr().String(), hello, r
}

// open connects through the relay, sends the hello, reads the provider's first flight and one
// echoed message: a relayed connection set up and handed to the poller.
func openRaw(t *testing.T, addr string, hello []byte) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:4]); err != nil || string(buf[:4]) != "ping" {
		t.Fatalf("echo: %q %v", buf[:4], err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// TestMeasureHandshake opens and closes connections one after the other through the relay, and
// prints the relay process's allocations per connection (the client and provider here
// allocate too: compare figures of two commits, not with zero).
func TestMeasureHandshake(t *testing.T) {
	skipUnlessMeasuring(t)
	addr, direct, hello, r := rawRelay(t)
	what := "relayed"
	if os.Getenv("AIRELAY_MEASURE_DIRECT") != "" {
		addr, what = direct, "direct"
	}
	n := measureConns(500)
	for range 20 { // warm up: pools, the poller, the pipes
		openRaw(t, addr, hello).Close()
	}
	waitFor(t, func() bool { return r.Active() == 0 })
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for range n {
		openRaw(t, addr, hello).Close()
	}
	took := time.Since(start)
	for r.Active() != 0 {
		time.Sleep(time.Millisecond)
	}
	runtime.ReadMemStats(&m1)
	t.Logf("%d %s connections (hello, 4 KiB first flight, one echo, close): %.1f allocations and %.0f bytes allocated per connection in the whole process; %v each (noisy)",
		n, what, float64(m1.Mallocs-m0.Mallocs)/float64(n), float64(m1.TotalAlloc-m0.TotalAlloc)/float64(n), took/time.Duration(n))
}

// TestMeasureConnMemory holds connections open through the relay and prints what each costs
// the process in Go heap, stacks and goroutines once set up (the client's and provider's
// sockets are in the same process and counted too: compare commits).
func TestMeasureConnMemory(t *testing.T) {
	skipUnlessMeasuring(t)
	addr, _, hello, r := rawRelay(t)
	n := measureConns(2000)
	openRaw(t, addr, hello).Close()
	waitFor(t, func() bool { return r.Active() == 0 })
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, openRaw(t, addr, hello))
	}
	for r.Active() != int64(n) {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	t.Logf("%d open relayed connections: per connection %.0f B heap in use, %.0f B stacks, %.2f goroutines (the raw provider's echo goroutine is one)",
		n, per(m0.HeapInuse, m1.HeapInuse), per(m0.StackInuse, m1.StackInuse), float64(g1-g0)/float64(n))
	for _, c := range conns {
		c.Close()
	}
}
