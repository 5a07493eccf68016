package neigh

import (
	"fmt"
	"syscall"
)

// dumpNeighbours asks the kernel for every neighbour entry (IPv4 and IPv6) over rtnetlink,
// in the network namespace of the calling thread.
func dumpNeighbours() ([]byte, error) {
	b, err := syscall.NetlinkRIB(syscall.RTM_GETNEIGH, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("netlink: neighbour dump: %w", err)
	}
	return b, nil
}
