//go:build !linux

package egress

import (
	"fmt"
	"syscall"
)

func BindToDevice(name string) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return fmt.Errorf("binding to interface %q needs Linux (SO_BINDTODEVICE)", name)
	}
}
