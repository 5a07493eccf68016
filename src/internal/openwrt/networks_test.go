package openwrt

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/airelay/airelay/src/internal/config"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range s {
		out = append(out, netip.MustParsePrefix(v))
	}
	return out
}

var (
	lanFacts   = NetFacts{Name: "lan", Zone: "lan", Device: "br-lan", IPv4: prefixes("192.168.1.1/24"), IPv6: prefixes("fd00:ab:0:1::1/64", "2001:db8:0:1::1/64")}
	guestFacts = NetFacts{Name: "guest", Zone: "guest", Device: "br-guest", IPv4: prefixes("192.168.2.1/24"), IPv6: prefixes("fd00:ab:0:2::1/64")}
	iotFacts   = NetFacts{Name: "iot", Zone: "iot", Device: "br-iot", IPv4: prefixes("192.168.3.1/24")}
	// OpenWrt's default instance, answering on every device (no interface= lines).
	oneDnsmasq = []DnsmasqInstance{ParseDnsmasqConf("cfg01411c", []byte("conf-dir=/tmp/dnsmasq.cfg01411c.d\nexcept-interface=lo\n"))}
	// The default instance kept off iot, which has an instance of its own (OpenWrt's way to
	// give a network its own resolver: a second 'config dnsmasq' with 'list interface').
	twoDnsmasq = []DnsmasqInstance{
		ParseDnsmasqConf("cfg01411c", []byte("conf-dir=/tmp/dnsmasq.cfg01411c.d\ninterface=br-lan\ninterface=br-guest\nexcept-interface=br-iot\n")),
		ParseDnsmasqConf("iot", []byte("conf-dir=/tmp/dnsmasq.iot.d\ninterface=br-iot\n")),
	}
)

// The whole OpenWrt output for homes with two and three networks: the runtime copy the daemon
// reads, the dnsmasq file of each instance, and the two fw4 fragments.
func TestNetworksGolden(t *testing.T) {
	src, err := os.ReadFile("testdata/site.uci")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		served string // main's list network, space-separated
		nets   []NetFacts
		dns    []DnsmasqInstance
	}{
		// every LAN-side network (no list): lan and guest, one dnsmasq
		{"nets2", "", []NetFacts{lanFacts, guestFacts}, oneDnsmasq},
		// lan and guest served, iot left untouched with a resolver of its own
		{"nets3", "lan guest", []NetFacts{lanFacts, guestFacts, iotFacts}, twoDnsmasq},
		// the same, but iot shares the default dnsmasq: passed through
		{"nets3shared", "lan guest", []NetFacts{lanFacts, guestFacts, iotFacts}, oneDnsmasq},
	} {
		t.Run(c.name, func(t *testing.T) {
			user := string(src)
			for _, n := range strings.Fields(c.served) {
				user = strings.Replace(user, "config airelay 'main'\n", "config airelay 'main'\n\tlist network '"+n+"'\n", 1)
			}
			tb := load(t, user)
			out, _ := RuntimeConfigNetworks([]byte(user), tb, c.nets, c.dns, nil)
			golden(t, c.name+".runtime.uci", out)
			rt := load(t, string(out))
			for _, d := range c.dns {
				golden(t, c.name+"."+d.Name+".dnsmasq", DnsmasqConf(rt, d.Name))
			}
			r, err := Firewall(rt, "lan")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".dstnat.nft", r.DstNAT)
			golden(t, c.name+".input.nft", r.Input)
		})
	}
}

func TestPlan(t *testing.T) {
	mode := func(nets []config.Network) map[string]string {
		m := map[string]string{}
		for _, n := range nets {
			m[n.Name] = n.Mode.String() + ": " + n.Reason
		}
		return m
	}
	tb := load(t, "config airelay 'main'\n\tlist network 'lan'\n\tlist network 'gest'\n\tlist network 'iot'\n")
	down := iotFacts
	down.Device = ""
	lan6 := NetFacts{Name: "lan6", Zone: "lan", Device: "br-lan", IPv6: prefixes("2001:db8:9::1/64")}
	got := mode(Plan(tb, []NetFacts{lanFacts, lan6, guestFacts, down}, oneDnsmasq))
	for name, want := range map[string]string{
		"lan":   "served: ",
		"lan6":  "untouched: the same device as network lan, which stands for both",
		"guest": "passthrough: not in the network list of main, but dnsmasq instance cfg01411c also answers served network lan",
		"iot":   "untouched: no device (the interface is down)",
		"gest":  "untouched: in the network list of main, but not a LAN-side network",
	} {
		if !strings.HasPrefix(got[name], want) {
			t.Errorf("%s: %q, want %q…", name, got[name], want)
		}
	}
	plan := Plan(tb, []NetFacts{lanFacts, lan6}, oneDnsmasq)
	if p := Primary(plan); p == nil || p.Name != "lan" || len(p.IPv6) != 3 {
		t.Errorf("lan takes lan6's addresses: %+v", p)
	}
	tb = load(t, "config airelay 'main'\n\toption listen_device 'br-guest'\n")
	got = mode(Plan(tb, []NetFacts{lanFacts, guestFacts}, twoDnsmasq))
	if got["guest"] != "served: " || !strings.HasPrefix(got["lan"], "untouched: listen_device br-guest of main limits") {
		t.Errorf("listen_device set by hand: %v", got)
	}
	// no dnsmasq answers on guest: served all the same (the gateway works), and said so
	got = mode(Plan(load(t, ""), []NetFacts{guestFacts}, twoDnsmasq[1:]))
	if !strings.HasPrefix(got["guest"], "served: no dnsmasq instance answers DNS on br-guest") {
		t.Errorf("guest without a resolver: %v", got)
	}
}

func TestParseDnsmasqConf(t *testing.T) {
	d := ParseDnsmasqConf("guest", []byte("# auto-generated\nconf-file=/etc/dnsmasq.conf\ninterface=br-guest\ninterface=br-guest\nexcept-interface=lo\nconf-dir=/tmp/dnsmasq.guest.d,*.conf\nconf-dir=/other\n"))
	if d.ConfDir != "/tmp/dnsmasq.guest.d" || len(d.Only) != 1 || !d.Answers("br-guest") || d.Answers("br-lan") || d.Answers("lo") {
		t.Errorf("%+v", d)
	}
	all := ParseDnsmasqConf("cfg01411c", []byte("except-interface=br-iot\n"))
	if !all.Answers("br-lan") || all.Answers("br-iot") || all.Answers("") {
		t.Errorf("%+v", all)
	}
}

// A runtime copy written again keeps exactly one set of runtime_network sections, and drops
// any the user's file had.
func TestRuntimeNetworksReplaces(t *testing.T) {
	nets := Plan(load(t, ""), []NetFacts{lanFacts}, oneDnsmasq)
	once := RuntimeNetworks([]byte("config airelay 'main'\n\nconfig runtime_network\n\toption network 'stale'\n\toption mode 'served'\n\nconfig client 'x'\n\tlist network 'lan'\n"), nets)
	twice := RuntimeNetworks(once, nets)
	if string(once) != string(twice) || strings.Contains(string(once), "stale") || strings.Count(string(once), "config runtime_network") != 1 || !strings.Contains(string(once), "config client 'x'\n\tlist network 'lan'\n") {
		t.Errorf("copy:\n%s\nagain:\n%s", once, twice)
	}
}
