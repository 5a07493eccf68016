package egress

import (
	"fmt"
	"syscall"
)

// bindToDevice returns a net.Dialer.Control that binds the socket to one interface
// (SO_BINDTODEVICE), so the connection leaves through it whatever the routing table says.
func bindToDevice(name string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.BindToDevice(int(fd), name) }); err != nil {
			return err
		}
		switch serr {
		case nil:
			return nil
		case syscall.ENODEV:
			return fmt.Errorf("interface %q does not exist", name)
		}
		return fmt.Errorf("bind to interface %q: %w", name, serr)
	}
}
