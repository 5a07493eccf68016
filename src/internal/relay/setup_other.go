//go:build !linux || 386

package relay

import "net"

// rawConn exists only where connections are set up on raw sockets (setup_linux.go).
type rawConn struct{}

func (*rawConn) kick() {}

func (r *Relay) serveRaw(*net.TCPListener) (bool, error) { return false, nil }
