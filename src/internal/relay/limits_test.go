package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/testnet"
)

// smallBuffers is a socket option setter (for net.ListenConfig and net.Dialer) that makes the
// socket's send and receive buffers as small as the kernel allows, as on a router with little
// memory.
func smallBuffers(opts ...int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			for _, o := range opts {
				if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o, 4096); e != nil {
					serr = e
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// TestEarlySendPastProviderBuffers (issue 23.6): a device that sends more than the provider's
// socket can take before the provider's first answer (an upload the provider reads whole before
// it answers) is relayed, not reset. With small socket buffers, as on a router, a few hundred
// KiB are enough to fill them.
func TestEarlySendPastProviderBuffers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux only")
	}
	e := newEnv(t, "", func(r *Relay) {
		r.Dial = func(ctx context.Context, _ *config.Provider, network, addr string) (net.Conn, error) {
			d := net.Dialer{Control: smallBuffers(syscall.SO_SNDBUF)}
			return d.DialContext(ctx, network, addr)
		}
	})
	lc := net.ListenConfig{Control: smallBuffers(syscall.SO_RCVBUF)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hello := testnet.ClientHello(t, "api.openai.com")
	const upload = 4 << 20
	helloRead, goRead := make(chan struct{}), make(chan struct{})
	got := make(chan string, 1)
	go func() { // the provider: reads the hello, then (when told) the whole upload, then answers
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, len(hello))); err != nil {
			got <- "hello: " + err.Error()
			return
		}
		close(helloRead)
		<-goRead
		n, err := io.CopyN(io.Discard, c, upload)
		if err != nil {
			got <- fmt.Sprintf("upload: %d bytes, %v", n, err)
			return
		}
		fmt.Fprintf(c, "got %d bytes", n)
		got <- ""
	}()
	e.table.Store(withConnect(t, ln.Addr().String()))
	tb := *e.table.Load()
	tb.Main.IdleTimeout = time.Minute
	e.table.Store(&tb)
	small := func(fd int) { _ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096) }
	testHookSocket.Store(&small)
	t.Cleanup(func() { testHookSocket.Store(nil) })

	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	select {
	case <-helloRead:
	case msg := <-got:
		t.Fatalf("the provider: %s", msg)
	}
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(bytes.Repeat([]byte("u"), upload))
		sent <- err
	}()
	// Wait until the relay has filled the provider's socket and wants it writable, with the
	// provider's first answer still to come (the state the old code reset in), or until the
	// connection ended.
	port := c.LocalAddr().(*net.TCPAddr).Port
	p := getPoller()
	waiting := false
	waitFor(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pc := range p.conns {
			if int(pc.rc.from.Port()) == port && pc.h[0].pending > 0 && pc.out[1] && pc.h[1].bytes == 0 {
				waiting = true
				return true
			}
		}
		return e.relay.Active() == 0
	})
	if !waiting {
		t.Fatalf("the relay closed the connection when the provider's socket filled before its first answer (the device's upload: %v)", <-sent)
	}
	close(goRead)
	if err := <-sent; err != nil {
		t.Fatalf("the device's upload: %v", err)
	}
	if msg := <-got; msg != "" {
		t.Fatalf("the provider: %s", msg)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if want := fmt.Sprintf("got %d bytes", upload); string(answer) != want {
		t.Fatalf("the device got %q (%v), want %q", answer, err, want)
	}
}

// TestWriteTimeoutCutsStalledReader (issue 23.3): a device that stops reading while the provider
// still sends is cut after write_timeout, and counted, although it keeps sending (so the
// connection is never idle) and idle_timeout is an hour. Both ways the provider's bytes reach
// the device are tried: a relay socket with a small send buffer (full with the first answer)
// and a normal one.
func TestWriteTimeoutCutsStalledReader(t *testing.T) {
	for _, small := range []bool{true, false} {
		t.Run(fmt.Sprintf("small-relay-buffers=%v", small), func(t *testing.T) {
			testWriteTimeout(t, small)
		})
	}
}

func testWriteTimeout(t *testing.T, small bool) {
	e := newEnv(t, "")
	if small { // the relay's own listener: its device sockets get a small send buffer
		lc := net.ListenConfig{Control: smallBuffers(syscall.SO_SNDBUF)}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.addr = ln.Addr().String()
		go e.relay.Serve(ln)
	}
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	cut := make(chan error, 1)
	go func() { // the provider: answers without end, until its socket is closed under it
		c, err := up.Accept()
		if err != nil {
			cut <- err
			return
		}
		defer c.Close()
		go io.Copy(io.Discard, c)
		chunk := bytes.Repeat([]byte("d"), 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				cut <- err
				return
			}
		}
	}()
	tb, err := config.LoadBytes("test", []byte("config airelay 'main'\n\toption idle_timeout '1h'\n\toption write_timeout '1s'\n"+
		"config provider 'openai'\n\tlist host 'api.openai.com'\n\toption connect '"+up.Addr().String()+"'\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.table.Store(tb)

	d := net.Dialer{Control: smallBuffers(syscall.SO_RCVBUF)}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(testnet.ClientHello(t, "api.openai.com")); err != nil {
		t.Fatal(err)
	}
	// The device reads nothing, and says something every 100ms: never idle.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("ping")); err != nil {
					return
				}
			}
		}
	}()
	select {
	case <-cut:
	case <-time.After(30 * time.Second): // a bound for the test, far past write_timeout
		t.Fatal("a device that stopped reading still held its connection and the provider's after 30s (write_timeout 1s)")
	}
	waitFor(t, func() bool { return e.relay.Active() == 0 })
	if n := e.stats.Provider("openai").WriteTimeouts.Load(); n != 1 {
		t.Errorf("write_timeouts = %d, want 1", n)
	}
	if !strings.Contains(e.logText(), "write_timeout") {
		t.Error("the cut was not logged")
	}
}

// TestMaxConnsPerDevice (issue 23.4): past max_conns_per_device a device's next connection is
// closed at once while another device is still served, and a slot it frees is its own again.
func TestMaxConnsPerDevice(t *testing.T) {
	e := newEnv(t, "\toption max_conns_per_device '2'")
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := func(src string) (*tls.Conn, error) {
		c := tls.Client(dialFrom(src), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "api.openai.com"})
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, c.Handshake()
	}
	first, err := open("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := open("127.0.0.1"); err == nil {
		t.Fatal("a third connection of a device with max_conns_per_device 2 was served")
	}
	if _, err := open("127.0.0.2"); err != nil {
		t.Fatalf("another device was refused: %v", err)
	}
	first.Close()
	waitFor(t, func() bool { return e.relay.Active() == 2 })
	if _, err := open("127.0.0.1"); err != nil {
		t.Fatalf("the device's freed slot: %v", err)
	}
	if !strings.Contains(e.logText(), "max_conns_per_device") {
		t.Error("the refusal was not logged")
	}
}

// TestFailuresSendAlerts (issue 23.8): when the provider cannot be reached, or the name is not
// served and there is no fallback, the device's TLS ends with an alert that says so, not with a
// bare close.
func TestFailuresSendAlerts(t *testing.T) {
	e := newEnv(t, "")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there now: connection refused
	e.table.Store(withConnect(t, deadAddr))
	if _, err := e.get("api.openai.com", "/"); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("provider unreachable: %v, want a TLS internal_error alert", err)
	}
	if _, err := e.get("unknown.example", "/"); err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Errorf("name not served, no fallback: %v, want a TLS unrecognized_name alert", err)
	}
	e.load("")
	tb := *e.table.Load()
	tb.Main.TLSFallback = deadAddr
	e.table.Store(&tb)
	if _, err := e.get("router.lan", "/"); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("fallback unreachable: %v, want a TLS internal_error alert", err)
	}
}
