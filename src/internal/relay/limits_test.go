package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
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
	e := newEnv(t, "")
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
	e.relay.Dial = func(ctx context.Context, _ *config.Provider, network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: smallBuffers(syscall.SO_SNDBUF)}
		return d.DialContext(ctx, network, addr)
	}

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
			if int(pc.rc.from.Port()) == port && pc.out[1] && pc.h[1].held {
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
