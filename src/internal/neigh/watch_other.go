//go:build !linux

package neigh

import "errors"

func openEvents() (events, error) {
	return nil, errors.New("following the neighbour table needs Linux (rtnetlink)")
}
