package openwrt

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The dnsmasq lines against the real dnsmasq (Debian's, the version OpenWrt 24.10 ships), in a
// network namespace shaped like a router with three LAN-side networks: br-lan, br-guest and
// br-iot (veth devices), OpenWrt's localise-queries, rebind protection and an upstream
// server, a fake "ISP" resolver that knows the providers' real addresses (and an HTTPS record),
// and a fake "airelay" that answers every AI name with 10.9.9.9. Queries sent to the router's
// address on a network are answered as queries from that network: dnsmasq localises by the
// address a query was sent to.
func TestDnsmasqReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	for _, prog := range []string{"ip", "dnsmasq", "dig"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed", prog)
		}
	}
	ns := fmt.Sprintf("airelay-ow-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	in := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	in("ip", "link", "set", "lo", "up")
	in("ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
	in("ip", "addr", "add", "127.0.0.3/8", "dev", "lo")
	for i, dev := range []string{"br-lan", "br-guest", "br-iot"} {
		peer := "p" + strings.TrimPrefix(dev, "br")
		in("ip", "link", "add", dev, "type", "veth", "peer", "name", peer)
		in("ip", "link", "set", peer, "up")
		in("ip", "addr", "add", fmt.Sprintf("192.168.%d.1/24", i+1), "dev", dev)
		if dev == "br-lan" {
			in("ip", "addr", "add", "fd00:1::1/64", "dev", dev, "nodad")
		}
		in("ip", "link", "set", dev, "up")
	}
	dir := t.TempDir()
	start := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--pid-file=", "--user=root", "--log-facility=-", "--no-hosts"}, args...)...)
		var log bytes.Buffer
		cmd.Stderr = &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s:\n%s", name, log.String())
			}
		})
	}
	dig := func(server, name, typ string) []string {
		t.Helper()
		var out string
		for i := 0; i < 100; i++ {
			o, err := exec.Command("ip", "netns", "exec", ns, "dig", "+short", "+time=1", "+tries=1", "@"+server, name, typ).CombinedOutput()
			out = string(o)
			if err == nil && !strings.Contains(out, "connection refused") && !strings.Contains(out, "timed out") {
				lines := strings.Fields(out)
				slices.Sort(lines)
				return lines
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("dig @%s %s %s: %s", server, name, typ, out)
		return nil
	}
	// the ISP (outside the ranges rebind protection counts as private): the providers' real addresses, and an HTTPS record that must never reach a
	// served device (it would hand it other endpoints and ECH keys)
	start("isp", "--port=53", "--listen-address=127.0.0.3", "--bind-interfaces", "--no-resolv",
		"--address=/openai.com/198.18.0.7", "--address=/openai.com/2001:db8::7", "--dns-rr=api.openai.com,65,000100")
	// airelay's DNS interceptor, as far as dnsmasq can tell
	start("airelay", "--port=5353", "--listen-address=127.0.0.2", "--bind-interfaces", "--no-resolv",
		"--address=/openai.com/10.9.9.9")

	tb := load(t, `config airelay 'main'
	option dns_listen '127.0.0.2:5353'
	list network 'lan'
	list network 'guest'
config provider 'openai'
	list host 'api.openai.com'
	list host 'eu.api.openai.com'
`)
	facts := []NetFacts{
		{Name: "lan", Zone: "lan", Device: "br-lan", IPv4: prefixes("192.168.1.1/24"), IPv6: prefixes("fd00:1::1/64")},
		{Name: "guest", Zone: "guest", Device: "br-guest", IPv4: prefixes("192.168.2.1/24")},
		{Name: "iot", Zone: "iot", Device: "br-iot", IPv4: prefixes("192.168.3.1/24")},
	}
	// router: OpenWrt's dnsmasq defaults that matter here, one instance per setup
	router := func(name, listen string, inst DnsmasqInstance, rt string) {
		t.Helper()
		confDir := filepath.Join(dir, name+".d")
		os.MkdirAll(confDir, 0o755)
		if b := DnsmasqConf(load(t, rt), inst.Name); b != nil {
			os.WriteFile(filepath.Join(confDir, "airelay.conf"), b, 0o644)
		}
		start(name, "--port=53", "--listen-address="+listen, "--bind-interfaces", "--no-resolv", "--server=127.0.0.3",
			"--localise-queries", "--stop-dns-rebind", "--rebind-localhost-ok", "--domain-needed", "--conf-dir="+confDir)
	}

	// 1. lan and guest served, iot with a dnsmasq instance of its own: left untouched.
	main := DnsmasqInstance{Name: "main", Only: []string{"br-lan", "br-guest"}}
	iot := DnsmasqInstance{Name: "iot", Only: []string{"br-iot"}}
	rt, _ := RuntimeConfigNetworks([]byte(mustRead(t, tb.Source)), tb, facts, []DnsmasqInstance{main, iot}, nil)
	router("main", "192.168.1.1,192.168.2.1", main, string(rt))
	router("iot", "192.168.3.1", iot, string(rt))

	check := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	check("lan A", dig("192.168.1.1", "api.openai.com", "A"), "192.168.1.1")
	check("guest A", dig("192.168.2.1", "api.openai.com", "A"), "192.168.2.1")
	check("lan AAAA", dig("192.168.1.1", "api.openai.com", "AAAA"), "fd00:1::1")
	check("guest AAAA (guest has no IPv6: lan's, reached through the redirect)", dig("192.168.2.1", "api.openai.com", "AAAA"), "fd00:1::1")
	check("lan HTTPS (airelay's NODATA, not the ISP's record)", dig("192.168.1.1", "api.openai.com", "TYPE65"))
	check("guest, a regional name that is a host", dig("192.168.2.1", "eu.api.openai.com", "A"), "192.168.2.1")
	// issue 23 point 7: a name below an intercepted host resolves as without airelay
	check("lan, a name below the host", dig("192.168.1.1", "x.api.openai.com", "A"), "198.18.0.7")
	check("lan, a name below the regional host", dig("192.168.1.1", "x.eu.api.openai.com", "A"), "198.18.0.7")
	check("lan, a name two below", dig("192.168.1.1", "a.b.api.openai.com", "AAAA"), "2001:db8::7")
	check("iot A (untouched: the real answer)", dig("192.168.3.1", "api.openai.com", "A"), "198.18.0.7")
	check("iot HTTPS (untouched: the real record)", dig("192.168.3.1", "api.openai.com", "TYPE65"), ".", "1")

	// 2. iot shares the instance: passed through, so its devices get the router's address on
	// iot, where its relay listener and redirect are.
	shared := DnsmasqInstance{Name: "shared"}
	rt, _ = RuntimeConfigNetworks([]byte(mustRead(t, tb.Source)), tb, facts, []DnsmasqInstance{shared}, nil)
	router("shared", "127.0.0.4", shared, string(rt)) // only its conf matters: served below on new addresses
	in("ip", "addr", "add", "192.168.1.2/24", "dev", "br-lan")
	in("ip", "addr", "add", "192.168.3.2/24", "dev", "br-iot")
	router("shared2", "192.168.1.2,192.168.3.2", shared, string(rt))
	check("iot A through a shared instance (passthrough)", dig("192.168.3.2", "api.openai.com", "A"), "192.168.3.1", "192.168.3.2")
	check("lan A through the shared instance", dig("192.168.1.2", "api.openai.com", "A"), "192.168.1.1", "192.168.1.2")
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
