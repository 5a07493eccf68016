//go:build !go1.26

package egress

import (
	"context"
	"net"
	"net/netip"
)

// dialTCP connects nd to an address that is already an IP and port. Before Go 1.26 net.Dialer
// has no DialTCP, so the address goes through its string form (an IP literal: nothing is
// resolved); dialtcp_go126.go avoids that.
func dialTCP(ctx context.Context, nd *net.Dialer, network string, to netip.AddrPort) (*net.TCPConn, error) {
	c, err := nd.DialContext(ctx, network, to.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
