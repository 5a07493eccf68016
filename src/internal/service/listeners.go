package service

import (
	"net"

	"github.com/coreos/go-systemd/v22/activation"
)

// inherited holds the sockets systemd passed (socket activation), by the role each serves.
type inherited struct {
	streams []namedListener
	packets []namedPacketConn
}

type namedListener struct {
	name string
	ln   net.Listener
}

type namedPacketConn struct {
	name string
	pc   net.PacketConn
}

// inheritSockets takes the sockets systemd passed, if any. Names come from FileDescriptorName=
// in the socket unit (tls, http, status, dns).
func inheritSockets() (*inherited, error) {
	files := activation.Files(true)
	in := &inherited{}
	for _, f := range files {
		name := f.Name()
		if ln, err := net.FileListener(f); err == nil {
			in.streams = append(in.streams, namedListener{name, ln})
		} else if pc, err := net.FilePacketConn(f); err == nil {
			in.packets = append(in.packets, namedPacketConn{name, pc})
		} else {
			f.Close()
			return nil, err
		}
		f.Close() // FileListener/FilePacketConn dup the descriptor
	}
	return in, nil
}

// takeStream returns the inherited stream socket for a role: by name, else by address.
func (in *inherited) takeStream(role, addr string) net.Listener {
	for i, s := range in.streams {
		if s.name == role || matchAddr(addr, s.ln.Addr()) {
			in.streams = append(in.streams[:i], in.streams[i+1:]...)
			return s.ln
		}
	}
	return nil
}

// takePacket is takeStream for datagram sockets.
func (in *inherited) takePacket(role, addr string) net.PacketConn {
	for i, s := range in.packets {
		if s.name == role || matchAddr(addr, s.pc.LocalAddr()) {
			in.packets = append(in.packets[:i], in.packets[i+1:]...)
			return s.pc
		}
	}
	return nil
}

// matchAddr reports whether a configured host:port names the bound address a (an empty host or
// a wildcard matches the wildcard address).
func matchAddr(configured string, a net.Addr) bool {
	host, port, err := net.SplitHostPort(configured)
	if err != nil || a == nil {
		return false
	}
	ahost, aport, err := net.SplitHostPort(a.String())
	if err != nil || aport != port {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if wild(host) {
		return wild(ahost)
	}
	return net.ParseIP(host).Equal(net.ParseIP(ahost))
}

// unused lists the inherited sockets no role took (a unit/config mismatch worth a warning).
func (in *inherited) unused() []string {
	var out []string
	for _, s := range in.streams {
		out = append(out, s.name+"="+s.ln.Addr().String())
	}
	for _, s := range in.packets {
		out = append(out, s.name+"="+s.pc.LocalAddr().String()+"/udp")
	}
	return out
}
