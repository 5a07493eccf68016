package config

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The runtime copy of a home with three LAN-side networks: lan and guest served, iot left
// untouched, and client sections that match by network alone, by MAC on one network, by MAC
// anywhere, and by address.
const threeNetworks = `
config airelay 'main'
	list network 'lan'
	list network 'guest'

config runtime_network
	option network 'lan'
	option device 'br-lan'
	option zone 'lan'
	list ipv4 '192.168.1.1/24'
	list ipv6 'fd00:1::1/64'
	option mode 'served'
	list dnsmasq 'cfg01411c'

config runtime_network
	option network 'guest'
	option device 'br-guest'
	option zone 'guest'
	list ipv4 '192.168.2.1/24'
	option mode 'served'
	list dnsmasq 'cfg01411c'

config runtime_network
	option network 'iot'
	option device 'br-iot'
	option zone 'iot'
	list ipv4 '192.168.3.1/24'
	option mode 'untouched'
	option reason 'not listed in main'

config client 'guests'
	option name 'Guest Wi-Fi'
	list network 'guest'
	option gateway '0'
	option daily_bytes '50M'

config client 'laptop_away'
	list mac '02:00:00:00:00:0a'
	list network 'guest'
	option access 'deny'

config client 'laptop'
	list mac '02:00:00:00:00:0a'
	list network 'lan'

config client 'printer'
	list ip '192.168.1.50'

config client 'kids_v6'
	list ip 'fd00:1::/64'
	list network 'guest'
`

func TestClientForNetwork(t *testing.T) {
	tb := mustLoad(t, threeNetworks)
	laptop := net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}
	for _, c := range []struct {
		ip   string
		mac  net.HardwareAddr
		want string
	}{
		{"192.168.2.77", nil, "guests"},         // any device on guest
		{"::ffff:192.168.2.77", nil, "guests"},  // mapped form of the same
		{"192.168.2.77", laptop, "laptop_away"}, // the laptop on guest: its guest section first
		{"192.168.1.77", laptop, "laptop"},      // the laptop at home
		{"192.168.1.78", nil, ""},               // another lan device: no section
		{"192.168.1.50", nil, "printer"},        // by address, any network
		{"fd00:1::99", nil, ""},                 // in kids_v6's prefix, but on lan, not guest
		{"192.168.3.10", laptop, ""},            // iot: neither laptop section names it
		{"10.0.0.5", nil, ""},                   // on no known network: network sections never match
		{"10.0.0.5", laptop, ""},                // the same with a MAC that only has network sections
		// A link-local address is on every link: the zone the connection came in on (the
		// router's device) tells the network, as a prefix does for the others.
		{"fe80::1234%br-guest", nil, "guests"},
		{"fe80::a8bb:ccff:fedd:eeff%br-guest", laptop, "laptop_away"},
		{"fe80::a8bb:ccff:fedd:eeff%br-lan", laptop, "laptop"},
		{"fe80::1234%br-lan", nil, ""},
		{"fe80::1234%br-iot", laptop, ""}, // untouched iot: neither laptop section names it
		{"fe80::1234", nil, ""},           // no zone: on no known network
		{"fe80::1234%eth9", laptop, ""},   // a device that is no network's
	} {
		got := ""
		if cl := tb.ClientFor(netip.MustParseAddr(c.ip), c.mac); cl != nil {
			got = cl.ID
		}
		if got != c.want {
			t.Errorf("ClientFor(%s, %v) = %q, want %q", c.ip, c.mac, got, c.want)
		}
	}
	g := tb.Client("guests")
	if !g.NoGateway || g.Quota.Bytes != 50<<20 {
		t.Errorf("guests: NoGateway %v, quota %+v", g.NoGateway, g.Quota)
	}
	if tb.Client("laptop").NoGateway {
		t.Error("gateway defaults to allowed")
	}
	if n := tb.NetworkOf(netip.MustParseAddr("fd00:1::99")); n == nil || n.Name != "lan" {
		t.Errorf("NetworkOf(fd00:1::99) = %v", n)
	}
	for a, want := range map[string]string{"fe80::1%br-guest": "guest", "fe80::1%br-lan": "lan", "fe80::1": "", "fe80::1%br-gues": "", "fd00:1::99%br-guest": "lan"} {
		got := ""
		if n := tb.NetworkOf(netip.MustParseAddr(a)); n != nil {
			got = n.Name
		}
		if got != want {
			t.Errorf("NetworkOf(%s) = %q, want %q", a, got, want)
		}
	}
	if n := tb.Network("iot"); n == nil || n.Mode != NetUntouched || n.Serves() || n.Reason != "not listed in main" {
		t.Errorf("iot: %+v", n)
	}
	// lan has IPv6: the printer's IPv4 rule alone does not hold the printer's IPv6 addresses
	if len(tb.Warnings) != 1 || !strings.Contains(tb.Warnings[0], "section 'printer': option 'ip' holds IPv4 addresses only") {
		t.Errorf("warnings: %q, want the printer's IPv4-only one alone", tb.Warnings)
	}
}

// A section whose addresses are all IPv4 does not match its devices when they come from IPv6,
// which they do once the LAN has it: said when the config is read (airelay check, the log).
func TestIPv4OnlySectionWarned(t *testing.T) {
	const main = "config airelay 'main'\n\toption lan_ipv4 '192.168.1.1'\n"
	const v6 = "\toption lan_ipv6 'fd00::1'\n"
	for _, c := range []struct {
		name, text string
		warn       bool
	}{
		{"IPv4 address, lan_ipv6", main + v6 + "config client 'tablet'\n\tlist ip '192.168.1.50'\n\toption access 'deny'\n", true},
		{"IPv4 prefix, lan_ipv6", main + v6 + "config client 'kids'\n\tlist ip '192.168.1.64/26'\n", true},
		{"no IPv6 on the LAN", main + "config client 'tablet'\n\tlist ip '192.168.1.50'\n", false},
		{"with its MAC", main + v6 + "config client 'tablet'\n\tlist ip '192.168.1.50'\n\tlist mac '02:00:00:00:00:50'\n", false},
		{"with an IPv6 prefix", main + v6 + "config client 'kids'\n\tlist ip '192.168.1.64/26'\n\tlist ip 'fd00:1::/64'\n", false},
		{"by network", main + v6 + "config client 'all'\n\toption access 'deny'\n", false},
	} {
		tb := mustLoad(t, c.text)
		got := slices.ContainsFunc(tb.Warnings, func(w string) bool { return strings.Contains(w, "holds IPv4 addresses only") })
		if got != c.warn {
			t.Errorf("%s: warned %v, want %v (%q)", c.name, got, c.warn, tb.Warnings)
		}
	}
}

func TestClientForNoAllocs(t *testing.T) {
	tb := mustLoad(t, threeNetworks)
	a := netip.MustParseAddr("192.168.2.77")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}
	ll := netip.MustParseAddr("fe80::1234%br-guest")
	for _, a := range []netip.Addr{a, ll} {
		if n := testing.AllocsPerRun(100, func() { tb.ClientFor(a, mac) }); n != 0 {
			t.Errorf("ClientFor(%s) allocates %v times", a, n)
		}
	}
}

// Sections that could match the same device on the same network are refused, as two sections
// with the same MAC always were; on disjoint networks they are what per-network rules need.
func TestNetworkClashes(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"same MAC, overlapping networks", `
config client 'a'
	list mac '02:00:00:00:00:01'
	list network 'lan'
	list network 'guest'
config client 'b'
	list mac '02:00:00:00:00:01'
	list network 'guest'
`, "section 'b' option 'mac' value '02:00:00:00:00:01': also a MAC of client 'a' on a network both name"},
		{"same MAC, one of them on every network", `
config client 'a'
	list mac '02:00:00:00:00:01'
config client 'b'
	list mac '02:00:00:00:00:01'
	list network 'guest'
`, "also a MAC of client 'a'"},
		{"same address twice", `
config client 'a'
	list ip '192.168.2.9'
	list network 'guest'
config client 'b'
	list ip '192.168.2.9'
	list network 'guest'
`, "also an address of client 'a'"},
		{"two sections for one network", `
config client 'a'
	list network 'guest'
config client 'b'
	list network 'iot'
	list network 'guest'
`, "section 'b' option 'network': client 'a' already matches every device on 'guest'"},
		{"one network twice", `
config runtime_network
	option network 'guest'
config runtime_network
	option network 'guest'
`, "option 'network' value 'guest': a second runtime_network section for this network"},
		{"bad runtime mode", `
config runtime_network
	option network 'guest'
	option device 'br-guest'
	option mode 'maybe'
`, "option 'mode' value 'maybe': must be one of: untouched, served, passthrough"},
		{"served without a device", `
config runtime_network
	option network 'guest'
	option mode 'served'
`, "option 'device': network 'guest': a served network needs its device"},
		{"address of the wrong family", `
config runtime_network
	option network 'guest'
	option device 'br-guest'
	list ipv6 '192.168.2.1/24'
`, "option 'ipv6' value '192.168.2.1/24': not the router's IPv6 address with its prefix length"},
	} {
		_, err := LoadBytes("test.uci", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestPassthrough(t *testing.T) {
	tb := mustLoad(t, strings.Replace(threeNetworks, "option mode 'untouched'", "option mode 'passthrough'", 1))
	if !tb.Passthrough(netip.MustParseAddr("192.168.3.10")) || tb.Passthrough(netip.MustParseAddr("192.168.2.10")) || tb.Passthrough(netip.MustParseAddr("10.0.0.1")) {
		t.Error("Passthrough: only iot's devices pass through")
	}
	if mustLoad(t, "config airelay 'main'\n").Passthrough(netip.MustParseAddr("192.168.3.10")) {
		t.Error("no runtime networks: nothing passes through")
	}
}
