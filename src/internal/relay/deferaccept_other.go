//go:build !linux

package relay

import (
	"net"
	"time"
)

func deferAccept(net.Listener, time.Duration) {}
