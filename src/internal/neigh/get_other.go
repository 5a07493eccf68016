//go:build !linux

package neigh

import (
	"errors"
	"net/netip"
)

func getNeighbour(netip.Addr) ([]byte, error) {
	return nil, errors.New("asking for a neighbour needs Linux (rtnetlink)")
}

func isNotFound(error) bool { return false }
