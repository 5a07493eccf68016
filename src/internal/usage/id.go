package usage

import (
	"net"
	"net/netip"
)

// ID is what identifies a device across its addresses: its MAC where the neighbour table knows
// it, else its IPv4 address, else its IPv6 /64 (a device takes as many addresses from its /64
// as it likes, so each of them is not a device). Daily quotas, the history and the relay's
// per-device connection cap count by ID. It is comparable and costs no allocation.
type ID struct {
	mac [6]byte      // the MAC when known; zero otherwise
	pfx netip.Prefix // without a MAC: the IPv4 address (/32) or the IPv6 /64
}

// IDOf is the ID of the device at addr whose MAC is mac (nil or not 6 bytes: not known).
func IDOf(addr netip.Addr, mac net.HardwareAddr) ID {
	if len(mac) == 6 {
		if m := [6]byte(mac); m != [6]byte{} {
			return ID{mac: m}
		}
	}
	return idOfAddr(addr)
}

func idOfAddr(addr netip.Addr) ID {
	addr = addr.Unmap()
	if addr.Is4() {
		return ID{pfx: netip.PrefixFrom(addr, 32)}
	}
	p, _ := addr.WithZone("").Prefix(64) // the zero Prefix for an invalid address
	return ID{pfx: p}
}

// idOf is IDOf with the MAC as stats keeps it ("aa:bb:cc:dd:ee:ff", or "").
func idOf(addr netip.Addr, mac string) ID {
	if m, ok := parseMAC6(mac); ok {
		return ID{mac: m}
	}
	return idOfAddr(addr)
}

// MAC returns the ID's MAC, nil when it is an address.
func (id ID) MAC() net.HardwareAddr {
	if !id.HasMAC() {
		return nil
	}
	return net.HardwareAddr(id.mac[:])
}

// HasMAC reports whether the ID is a MAC.
func (id ID) HasMAC() bool { return id.mac != [6]byte{} }

// Valid reports whether the ID names a device (the zero ID does not).
func (id ID) Valid() bool { return id.HasMAC() || id.pfx.IsValid() }

// String is the MAC, or the address or /64 (192.168.1.50/32, fd00:1::/64).
func (id ID) String() string {
	if id.HasMAC() {
		return id.MAC().String()
	}
	return id.pfx.String()
}

// parseMAC6 reads "aa:bb:cc:dd:ee:ff" (or with '-') without allocating.
func parseMAC6(s string) ([6]byte, bool) {
	var m [6]byte
	if len(s) != 17 {
		return m, false
	}
	for i := range m {
		if i > 0 && s[3*i-1] != ':' && s[3*i-1] != '-' {
			return m, false
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return m, false
		}
		m[i] = hi<<4 | lo
	}
	return m, m != [6]byte{}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
