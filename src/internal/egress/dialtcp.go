package egress

import (
	"context"
	"net"
	"net/netip"
)

// dialTCP connects nd to an address that is already an IP and port, through its string form
// (an IP literal: nothing is resolved). Not Go 1.26's Dialer.DialTCP: for a zero local address
// it binds the socket to the wildcard address before connecting (golang/go#81620), one system
// call more per dial and a local port for that socket alone (TestLocalPortTakenAtConnect).
func dialTCP(ctx context.Context, nd *net.Dialer, network string, to netip.AddrPort) (*net.TCPConn, error) {
	c, err := nd.DialContext(ctx, network, to.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
