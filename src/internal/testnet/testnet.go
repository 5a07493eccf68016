// Package testnet holds listeners and helpers for tests. It is imported only by _test files.
package testnet

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"
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

// Buffer is a bytes.Buffer that many goroutines may write (a process's or a logger's output)
// while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ClientHello returns the first flight a TLS client sends for name (its ClientHello record),
// for tests that speak to the relay without finishing a handshake.
func ClientHello(tb testing.TB, name string) []byte {
	tb.Helper()
	a, b := net.Pipe()
	go func() { _ = tls.Client(a, &tls.Config{ServerName: name}).Handshake(); a.Close() }()
	buf := make([]byte, 8192)
	_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := b.Read(buf)
	if err != nil {
		tb.Fatal(err)
	}
	b.Close()
	return buf[:n]
}
