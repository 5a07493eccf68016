//go:build go1.26

package egress

import (
	"context"
	"net"
	"net/netip"
)

// dialTCP connects nd to an address that is already an IP and port: no string to build or parse.
// Go 1.26's net.Dialer.DialTCP; dialtcp_old.go is the same for older Go (go.mod's go line).
func dialTCP(ctx context.Context, nd *net.Dialer, network string, to netip.AddrPort) (*net.TCPConn, error) {
	return nd.DialTCP(ctx, network, netip.AddrPort{}, to)
}
