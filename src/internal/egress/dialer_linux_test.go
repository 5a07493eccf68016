package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/airelay/airelay/src/internal/testnet"
)

// TestLocalPortTakenAtConnect: a provider connection gets its local port from connect(2),
// which shares a port between connections to different destinations, never from a bind to
// the wildcard address first, which takes a port for that socket alone (Go 1.26's
// Dialer.DialTCP does that bind for a zero local address: golang/go#81620). With two local
// ports in the namespace, four providers are reachable at once only without that bind; with
// it the third dial fails "address already in use", and a router with many open connections
// runs out of ports 4x sooner. Both the relay and the gateway dial through here.
func TestLocalPortTakenAtConnect(t *testing.T) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs the ip command (iproute2) to set up the namespace")
	}
	testnet.InFreshNetns(t, func() error {
		if out, err := exec.Command(ip, "link", "set", "lo", "up").CombinedOutput(); err != nil {
			return testnet.Skip(fmt.Sprintf("ip link set lo up: %v: %s", err, out))
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("40000 40001"), 0); err != nil {
			return testnet.Skip("cannot narrow the namespace's local port range: " + err.Error())
		}
		var errs []error
		n := 0
		for i := range 4 {
			// Listeners on fixed ports outside the range, so that they take none of its two.
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20001+i))
			if err != nil {
				return err
			}
			defer ln.Close()
			for _, spec := range []Spec{{Kind: Direct}, {Kind: Iface, Iface: "lo"}} {
				d := Dialer{Spec: spec}
				n++
				c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
				if err != nil {
					errs = append(errs, fmt.Errorf("%v dial %d of 8, to %s: %w", spec.Kind, n, ln.Addr(), err))
					continue
				}
				defer c.Close() // all open at once
			}
		}
		return errors.Join(errs...)
	})
}

// keepAliveOf reads a socket's keep-alive: SO_KEEPALIVE, and TCP_KEEPIDLE in seconds.
func keepAliveOf(t *testing.T, c *net.TCPConn) (on, idle int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var err1, err2 error
	if err := raw.Control(func(fd uintptr) {
		on, err1 = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle, err2 = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
	}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return on, idle
}

// TestKeepAlive: provider connections probe after 15 s of silence (WAN-side NATs), except
// when the caller turns it on itself (KeepAliveLater).
func TestKeepAlive(t *testing.T) {
	target := echoTarget(t)
	for _, later := range []bool{false, true} {
		d := Dialer{KeepAliveLater: later}
		c, err := d.DialTCP(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		on, idle := keepAliveOf(t, c)
		if later && on != 0 || !later && (on != 1 || idle != 15) {
			t.Errorf("KeepAliveLater %v: SO_KEEPALIVE %d, TCP_KEEPIDLE %d", later, on, idle)
		}
		if later {
			if err := c.SetKeepAliveConfig(KeepAliveConfig); err != nil {
				t.Fatal(err)
			}
			if on, idle := keepAliveOf(t, c); on != 1 || idle != 15 {
				t.Errorf("KeepAliveConfig set later: SO_KEEPALIVE %d, TCP_KEEPIDLE %d", on, idle)
			}
		}
		c.Close()
	}
}
