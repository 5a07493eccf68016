package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// The router's LAN-side networks (lan, guest, iot). The user names the served ones in main's
// 'list network'; what each network is right now (its device, the router's addresses on it,
// its fw4 zone, which dnsmasq instances answer there) is learned by the init script from
// netifd, fw4 and dnsmasq at every start and reload, and handed to the daemon as
// anonymous 'runtime_network' sections in the runtime copy (/var/run/airelay/airelay), which
// `airelay runtime-config` writes (anonymous, so they never share a name with a client
// section the user called 'guest'). Those sections are runtime data: never written by hand,
// never in /etc/config/airelay (runtime-config drops any it finds there).

// NetMode is what airelay does for one network.
type NetMode uint8

const (
	// NetUntouched: not served; nothing of airelay's reaches its devices (their DNS answers
	// are the real ones, nothing of theirs is redirected).
	NetUntouched NetMode = iota
	// NetServed: its devices are intercepted, relayed, counted and controlled.
	NetServed
	// NetPassthrough: not served, but its DNS comes from a dnsmasq instance that also serves
	// a served network, so its AI names resolve to the router; the relay passes its HTTPS
	// through to the providers with no client rule, schedule or quota, and the gateway is
	// not offered to it. Giving it a dnsmasq instance of its own makes it untouched.
	NetPassthrough
)

var netModeNames = [...]string{"untouched", "served", "passthrough"}

func (m NetMode) String() string { return netModeNames[m] }

// Network is one LAN-side network as the init script found it.
type Network struct {
	Name   string
	Device string // br-guest; "" when netifd has none (interface down)
	Zone   string // its fw4 zone
	// IPv4 and IPv6 are the router's addresses on it, with the length of the subnet they
	// serve: a device's address in one of these prefixes is on this network.
	IPv4, IPv6 []netip.Prefix
	Mode       NetMode
	Reason     string   // why it is not served, or what is wrong with it; "" when all is well
	Dnsmasq    []string // dnsmasq instances (UCI section names) that answer DNS on Device
}

// Serves reports whether the relay (and for NetServed the gateway) takes its devices.
func (n *Network) Serves() bool { return n != nil && n.Mode != NetUntouched }

// Contains reports whether a is an address of a device on n. A link-local IPv6 address is the
// same on every link, so its zone, the router's device a connection from it came in on (Go
// names it), tells the network: n's Device. Without a zone it is on no network.
func (n *Network) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() && a.IsLinkLocalUnicast() {
		return n.Device != "" && a.Zone() == n.Device
	}
	a = a.WithZone("") // a zone is never in a prefix (Prefix.Contains)
	ps := n.IPv4
	if a.Is6() {
		ps = n.IPv6
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Network returns the runtime network of that name, or nil.
func (t *Table) Network(name string) *Network {
	for _, n := range t.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NetworkOf returns the network a device with address a is on, or nil when no network's
// prefixes hold it (not on OpenWrt, or an address the init script has not seen yet). A TCP
// connection that reached airelay has a source address the router routes back through the
// device it came in on, so the router's own prefixes tell the network exactly; a link-local
// address (the router holds no prefix of those per network) is told by the zone the connection
// came with (Contains). It does not allocate.
func (t *Table) NetworkOf(a netip.Addr) *Network {
	for _, n := range t.Networks {
		if n.Contains(a) {
			return n
		}
	}
	return nil
}

// Passthrough reports whether a device at a is on a network whose HTTPS the relay passes
// through untouched (NetPassthrough).
func (t *Table) Passthrough(a netip.Addr) bool {
	if len(t.Networks) == 0 {
		return false
	}
	n := t.NetworkOf(a)
	return n != nil && n.Mode == NetPassthrough
}

// onNetwork reports whether client c applies on network n (nil: not known).
func (c *Client) onNetwork(n *Network) bool {
	if len(c.Networks) == 0 {
		return true
	}
	return n != nil && slices.Contains(c.Networks, n.Name)
}

// ParseNetMode reads a runtime_network mode.
func ParseNetMode(s string) (NetMode, bool) {
	i := slices.Index(netModeNames[:], s)
	return NetMode(max(i, 0)), i >= 0
}

// loadNetworks reads the runtime_network sections the init script's runtime-config wrote.
func (l *loader) loadNetworks() {
	names, _ := l.tree.GetSections(l.cfg, "runtime_network")
	for _, sname := range names {
		s := l.section("runtime_network", sname)
		name, o := s.one("network")
		if err := CheckNetwork(name); err != nil {
			s.fail(o, name, "%v", err)
			continue
		}
		if l.t.Network(name) != nil {
			s.fail(o, name, "a second runtime_network section for this network")
			continue
		}
		n := &Network{Name: name, Device: s.device("device"), Zone: s.str("zone"), Reason: s.str("reason")}
		if n.Zone != "" && !ValidName(n.Zone) {
			o := s.schema.option("zone")
			s.fail(o, n.Zone, "not a firewall zone name (letters, digits and '_')")
		}
		v, o := s.one("mode")
		mode, ok := ParseNetMode(v)
		if !ok {
			s.fail(o, v, "must be one of: %s", strings.Join(netModeNames[:], ", "))
		}
		n.Mode = mode
		for _, fam := range []struct {
			opt string
			v4  bool
			out *[]netip.Prefix
		}{{"ipv4", true, &n.IPv4}, {"ipv6", false, &n.IPv6}} {
			o, vals, _ := s.values(fam.opt)
			for _, v := range vals {
				p, err := netip.ParsePrefix(v)
				if err != nil || p.Addr().Is4() != fam.v4 || p.Addr().Zone() != "" {
					s.fail(o, v, "not the router's IPv%s address with its prefix length", map[bool]string{true: "4", false: "6"}[fam.v4])
					continue
				}
				*fam.out = append(*fam.out, p)
			}
		}
		o, vals, _ := s.values("dnsmasq")
		for _, v := range vals {
			if !ValidName(v) {
				s.fail(o, v, "not a dnsmasq instance (a UCI section name of /etc/config/dhcp)")
				continue
			}
			n.Dnsmasq = append(n.Dnsmasq, v)
		}
		if n.Mode != NetUntouched && n.Device == "" {
			l.errorf(sname, "device", "", "network '%s': a %s network needs its device", name, n.Mode)
		}
		l.t.Networks = append(l.t.Networks, n)
	}
}

// clientsOn is the candidates for one address or MAC: the first that applies on the device's
// network wins.
func firstOn(cs []*Client, n *Network) *Client {
	for _, c := range cs {
		if c.onNetwork(n) {
			return c
		}
	}
	return nil
}

// disjoint reports whether two clients can never match the same device: both limited to
// networks, and no network in common.
func disjoint(a, b *Client) bool {
	if len(a.Networks) == 0 || len(b.Networks) == 0 {
		return false
	}
	for _, n := range a.Networks {
		if slices.Contains(b.Networks, n) {
			return false
		}
	}
	return true
}

// clash returns the client in cs that c may match the same device as, or nil.
func clash(cs []*Client, c *Client) *Client {
	for _, d := range cs {
		if !disjoint(c, d) {
			return d
		}
	}
	return nil
}

// macKey is a MAC as the index keys it.
func macKey(hw net.HardwareAddr) [6]byte { return [6]byte(hw) }

// common lists the networks both a and b name.
func common(a, b []string) []string {
	var out []string
	for _, n := range a {
		if slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}

func networkNames(ns []string) string {
	return fmt.Sprintf("'%s'", strings.Join(ns, "', '"))
}

// Client returns the client section of that name, or nil.
func (t *Table) Client(id string) *Client {
	for _, c := range t.Clients {
		if c.ID == id {
			return c
		}
	}
	return nil
}
