package egress

import (
	"fmt"
	"syscall"
)

// BindToDevice returns a socket Control function (net.Dialer, net.ListenConfig) that binds the
// socket to one interface (SO_BINDTODEVICE): a dialled connection leaves through it whatever
// the routing table says, and a listener accepts only what arrives on it.
func BindToDevice(name string) func(network, address string, c syscall.RawConn) error {
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
