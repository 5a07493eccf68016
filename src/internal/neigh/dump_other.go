//go:build !linux

package neigh

import "errors"

func dumpNeighbours() ([]byte, error) {
	return nil, errors.New("reading the neighbour table needs Linux (rtnetlink)")
}
