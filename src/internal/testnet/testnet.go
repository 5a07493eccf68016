// Package testnet holds listeners for tests. It is imported only by _test files.
package testnet

import (
	"net"
	"testing"
)

// UDPAndTCP listens on one loopback port for both UDP and TCP, as a DNS server does. The UDP
// port the kernel picks may already be taken for TCP by another process (tests of other
// packages run in parallel), so it picks again rather than fail.
func UDPAndTCP(tb testing.TB) (net.PacketConn, net.Listener) {
	tb.Helper()
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		if try == 20 {
			tb.Fatal(err)
		}
	}
}
