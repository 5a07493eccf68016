package names

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A dnsmasq lease file as OpenWrt writes it (IPv4 leases, then IPv6 after the duid line), and
// odhcpd's hosts file.
const leases = `1764600000 02:00:00:00:01:00 192.168.1.100 phone 01:02:00:00:00:01:00
1764600000 02:00:00:00:01:01 192.168.1.101 kids-tablet *
1764600000 02:00:00:00:01:02 192.168.1.102 * *
1764600000 02:00:00:00:01:03 192.168.1.103 <script> *
duid 00:01:00:01:2c:00:00:00:02:00:00:00:00:01
1764600000 1234 fd00::101 kids-tablet 00:01:00:01:aa
`

const odhcpd = `# br-lan 000100012c 1234 kids-tablet 1764600000 101 128 fd00::1:101
fd00::1:101	laptop
`

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "dhcp.leases"), filepath.Join(dir, "odhcpd")
	os.WriteFile(a, []byte(leases), 0o644)
	os.WriteFile(b, []byte(odhcpd), 0o644)
	n := New(a, b, filepath.Join(dir, "missing"))
	for _, tc := range []struct {
		addr, mac, want string
	}{
		{"192.168.1.100", "", "phone"},
		{"192.168.1.200", "02:00:00:00:01:01", "kids-tablet"}, // new address, known MAC
		{"::ffff:192.168.1.101", "", "kids-tablet"},
		{"fd00::101", "", "kids-tablet"},
		{"fd00::1:101", "", "laptop"},
		{"192.168.1.102", "", ""}, // no name given
		{"192.168.1.103", "", ""}, // not a host name
		{"192.168.1.9", "", ""},
	} {
		addr, _ := netip.ParseAddr(tc.addr)
		if got := n.Lookup(addr, tc.mac); got != tc.want {
			t.Errorf("Lookup(%s, %q) = %q, want %q", tc.addr, tc.mac, got, tc.want)
		}
	}
	// a new lease is seen after the file changes, without a restart
	os.WriteFile(a, []byte(leases+"1764600001 02:00:00:00:01:09 192.168.1.109 tv *\n"), 0o644)
	os.Chtimes(a, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if got := n.Lookup(netip.MustParseAddr("192.168.1.109"), ""); got != "tv" {
		t.Errorf("after the lease file changed: %q", got)
	}
	if (*Table)(nil).Lookup(netip.MustParseAddr("192.168.1.100"), "") != "" {
		t.Error("nil table found a name")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(leases))
	f.Add([]byte(odhcpd))
	f.Fuzz(func(t *testing.T, b []byte) {
		byMAC, byIP := map[string]string{}, map[netip.Addr]string{}
		Parse(b, byMAC, byIP)
		for _, n := range byIP {
			if hostname(n) != n || n == "" {
				t.Fatalf("name %q", n)
			}
		}
	})
}
