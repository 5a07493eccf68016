package relay

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/testnet"
)

// TestProviderKeepAlive: the relay turns TCP keep-alive on for the provider's socket (its Dial
// leaves it off; the poller's sweep turns it on within a second, so that the calls are not on
// the handshake's path), and the socket the poller holds has it: a NAT on the WAN side keeps a
// quiet stream's connection.
func TestProviderKeepAlive(t *testing.T) {
	e := newEnv(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tb := withConnect(t, ln.Addr().String())
	tb.Main.IdleTimeout = 30 * time.Second
	e.table.Store(tb)
	c := mustDial(t, e.addr)
	defer c.Close()
	hello := testnet.ClientHello(t, "api.openai.com")
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	p, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got := make([]byte, len(hello))
	p.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(p, got); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("the provider got %d bytes of the hello: %v", len(got), err)
	}
	// The relay's end of p, found among the poller's sockets by its address.
	var fd int
	waitFor(t, func() bool {
		pl := getPoller()
		pl.mu.Lock()
		defer pl.mu.Unlock()
		for _, pc := range pl.conns {
			if pc.rc.r != e.relay {
				continue
			}
			if sa, err := syscall.Getsockname(pc.fd[1]); err == nil {
				if a, ok := sa.(*syscall.SockaddrInet4); ok && a.Port == p.RemoteAddr().(*net.TCPAddr).Port {
					fd = pc.fd[1]
					if _, raw := pc.rc.key.(*rawConn); raw == netConnPath {
						t.Errorf("set up raw: %v, want %v", raw, !netConnPath)
					}
					return true
				}
			}
		}
		return false
	})
	// The sweep turns it on within its second; the connection stays open (idle_timeout 30s).
	var on, idle int
	var err1, err2 error
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		on, err1 = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle, err2 = syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		if err1 != nil || err2 != nil || on == 1 && idle == 15 {
			break
		}
	}
	if err1 != nil || err2 != nil || on != 1 || idle != 15 {
		t.Errorf("the provider's socket: SO_KEEPALIVE %d (%v), TCP_KEEPIDLE %d (%v); want 1, 15", on, err1, idle, err2)
	}
}

// TestNetConnPath runs the relay's tests on the net.Conn setup path, which serves where raw
// sockets are not used (386, not Linux) and carries tls_fallback and proxy egress everywhere.
func TestNetConnPath(t *testing.T) {
	netConnPath = true
	defer func() { netConnPath = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"RelayWithCurl", TestRelayWithCurl}, {"Routing", TestRouting}, {"NoFallbackCloses", TestNoFallbackCloses},
		{"Denied", TestDenied}, {"HalfClose", TestHalfClose}, {"HalfCloseFromProvider", TestHalfCloseFromProvider}, {"Timeouts", TestTimeouts},
		{"MaxConnsAndDrain", TestMaxConnsAndDrain}, {"ScheduleCut", TestScheduleCut},
		{"CutWhileHandedOver", TestCutWhileHandedOver}, {"EarlySendPastProviderBuffers", TestEarlySendPastProviderBuffers},
		{"MaxConnsPerDevice", TestMaxConnsPerDevice}, {"FailuresSendAlerts", TestFailuresSendAlerts},
		{"ProviderKeepAlive", TestProviderKeepAlive},
	} {
		t.Run(tc.name, tc.f)
	}
}
