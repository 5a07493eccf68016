package openwrt

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func load(t *testing.T, text string) *config.Table {
	t.Helper()
	p := filepath.Join(t.TempDir(), "airelay")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tb, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func site(t *testing.T) *config.Table {
	b, err := os.ReadFile("testdata/site.uci")
	if err != nil {
		t.Fatal(err)
	}
	return load(t, string(b))
}

func TestGolden(t *testing.T) {
	tb := site(t)
	golden(t, "site.dnsmasq", DnsmasqConf(tb, ""))
	r, err := Firewall(tb, "lan")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "site.dstnat.nft", r.DstNAT)
	golden(t, "site.input.nft", r.Input)
	src, _ := os.ReadFile("testdata/site.uci")
	golden(t, "site.runtime.uci", first(RuntimeConfig(src, netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("fd00:ab::1"), "br-lan", nil)))
}

func TestDnsmasqTargets(t *testing.T) {
	for _, c := range []struct{ listen, want string }{
		{"127.0.0.1:5353", "server=/api.openai.com/127.0.0.1#5353\n"},
		{":53535", "server=/api.openai.com/127.0.0.1#53535\n"},
		{"0.0.0.0:5353", "server=/api.openai.com/127.0.0.1#5353\n"},
		{"[::]:5353", "server=/api.openai.com/::1#5353\n"},
		{"[::1]:5353", "server=/api.openai.com/::1#5353\n"},
		{"", ""},
	} {
		tb := load(t, "config airelay 'main'\n\toption dns_listen '"+c.listen+"'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n")
		got := string(DnsmasqConf(tb, ""))
		if c.want == "" {
			if got != "" {
				t.Errorf("dns_listen %q: want nothing, got %q", c.listen, got)
			}
			continue
		}
		if !strings.Contains(got, c.want) || !strings.Contains(got, "rebind-domain-ok=/api.openai.com/\n") {
			t.Errorf("dns_listen %q: got\n%s", c.listen, got)
		}
	}
}

// Disabled airelay, or no listeners: nothing is wired, so the router behaves as without it.
func TestDisabledWiresNothing(t *testing.T) {
	tb := load(t, "config airelay 'main'\n\toption enabled '0'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n")
	if b := DnsmasqConf(tb, ""); b != nil {
		t.Errorf("dnsmasq: %q", b)
	}
	if r, _ := Firewall(tb, "lan"); r.DstNAT != nil || r.Input != nil {
		t.Errorf("firewall: %+v", r)
	}
	tb = load(t, "config airelay 'main'\n\toption tls_listen ''\n\toption http_listen '127.0.0.1:8080'\n")
	if r, _ := Firewall(tb, "lan"); r.DstNAT != nil || r.Input != nil {
		t.Errorf("no LAN listener, still rules: %s %s", r.DstNAT, r.Input)
	}
	tb = load(t, "config airelay 'main'\n\toption tls_listen ':443'\n")
	if r, _ := Firewall(tb, "lan"); r.DstNAT != nil || !bytes.Contains(r.Input, []byte("tcp dport 443 ")) {
		t.Errorf("tls_listen :443 needs no redirect, only the accept: %s %s", r.DstNAT, r.Input)
	}
}

func TestFirewallZone(t *testing.T) {
	tb := site(t)
	if _, err := Firewall(tb, "lan; flush ruleset"); err == nil {
		t.Error("a zone name with nft syntax was accepted")
	}
	r, err := Firewall(tb, "1guest")
	if err != nil || !bytes.Contains(r.Input, []byte("iifname $_1guest_devices ")) {
		t.Errorf("zone starting with a digit: %v %s", err, r.Input)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(r.DstNAT)+string(r.Input)), "\n") {
		if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "iifname $_1guest_devices ") {
			t.Errorf("a rule not limited to the zone's devices (could match WAN): %s", l)
		}
	}
}

func TestRuntimeConfig(t *testing.T) {
	a4, a6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
	for _, c := range []struct{ name, in, want4, want6, wantDev string }{
		{"empty options replaced", "config airelay 'main'\n\toption lan_ipv4 ''\n\toption lan_ipv6 \"\"\n\toption listen_device ''\n", "10.0.0.1", "fd00::1", "br-lan"},
		{"missing options added", "config airelay 'main'\n\toption log_level 'debug'\n", "10.0.0.1", "fd00::1", "br-lan"},
		{"user value kept", "config airelay 'main'\n\toption lan_ipv4 '192.168.9.1'\n\toption listen_device 'lan1'\n", "192.168.9.1", "fd00::1", "lan1"},
		{"no main section", "config provider 'x'\n\tlist host 'a.example'", "10.0.0.1", "fd00::1", "br-lan"},
	} {
		out, _ := RuntimeConfig([]byte(c.in), a4, a6, "br-lan", nil)
		tb := load(t, string(out))
		if tb.Main.LANv4.String() != c.want4 || tb.Main.LANv6.String() != c.want6 || tb.Main.ListenDevice != c.wantDev {
			t.Errorf("%s: lan %v %v %q from\n%s", c.name, tb.Main.LANv4, tb.Main.LANv6, tb.Main.ListenDevice, out)
		}
		if len(tb.Warnings) > 0 {
			t.Errorf("%s: warnings %v from\n%s", c.name, tb.Warnings, out)
		}
	}
	in := []byte("config airelay 'main'\n\toption lan_ipv4 ''\n")
	if out, _ := RuntimeConfig(in, netip.Addr{}, netip.Addr{}, "", nil); !bytes.Equal(out, in) {
		t.Errorf("no addresses known: the file must be unchanged, got %q", out)
	}
	if out, _ := RuntimeConfig(in, netip.Addr{}, netip.Addr{}, "br/lan", nil); !bytes.Equal(out, in) {
		t.Errorf("an invalid device name must not be written, got %q", out)
	}
}

// The fragments load into a ruleset shaped like fw4's (table inet fw4, zone defines, the
// chains they are included in), checked by nft itself without touching the kernel's rules.
// With the LAN device named (the init script's runtime copy), they load even when fw4 renders
// the zone's device set empty, which nft refuses as soon as a rule uses it (issue 13: the
// redirect was silently dropped); the zone-define form is shown to fail there, so the case is
// real.
func TestFirewallNftCheck(t *testing.T) {
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft is not installed")
	}
	withDev := load(t, "config airelay 'main'\n\toption listen_device 'br-lan'\n")
	src := []byte("config airelay 'main'\n\tlist network 'lan'\n\tlist network 'guest'\n")
	nets, _ := RuntimeConfigNetworks(src, load(t, string(src)), []NetFacts{lanFacts, guestFacts, iotFacts}, oneDnsmasq, nil)
	perNetwork := load(t, string(nets))
	for _, tc := range []struct {
		name    string
		tb      *config.Table
		devices string
		loads   bool
	}{
		{"zone define", site(t), `{ "br-lan" }`, true},
		{"zone define, empty zone", site(t), `{ }`, false},
		{"device", withDev, `{ "br-lan" }`, true},
		{"device, empty zone", withDev, `{ }`, true},
		{"lan, guest and iot (passthrough), empty zone", perNetwork, `{ }`, true},
	} {
		r, err := Firewall(tc.tb, "lan")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "dstnat.nft"), r.DstNAT, 0o644)
		os.WriteFile(filepath.Join(dir, "input.nft"), r.Input, 0o644)
		ruleset := `table inet fw4 {
	define lan_devices = ` + tc.devices + `
	define lan_subnets = { 192.168.1.0/24 }
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		include "` + dir + `/input.nft"
		ct state established,related accept
	}
	chain dstnat {
		type nat hook prerouting priority dstnat; policy accept;
		include "` + dir + `/dstnat.nft"
	}
}
`
		p := filepath.Join(dir, "ruleset.nft")
		os.WriteFile(p, []byte(ruleset), 0o644)
		out, err := exec.Command(nft, "-c", "-f", p).CombinedOutput()
		if err != nil && (bytes.Contains(out, []byte("Operation not permitted")) || bytes.Contains(out, []byte("Netlink"))) {
			t.Skipf("nft -c needs netlink here: %s", out)
		}
		if loads := err == nil; loads != tc.loads {
			t.Errorf("%s: nft -c loads = %v, want %v: %v\n%s\n%s", tc.name, loads, tc.loads, err, out, ruleset)
		}
	}
}

func TestFirewallDevice(t *testing.T) {
	tb := load(t, "config airelay 'main'\n\toption listen_device 'br-lan'\n")
	r, err := Firewall(tb, "lan")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(r.DstNAT, []byte(`iifname "br-lan" fib daddr type local tcp dport 443 counter redirect to :8443 `)) ||
		!bytes.Contains(r.Input, []byte(`iifname "br-lan" tcp dport 8443 counter accept `)) {
		t.Errorf("rules with listen_device br-lan:\n%s%s", r.DstNAT, r.Input)
	}
}

func first[A, B any](a A, _ B) A { return a }

// TestRuntimeConfigKeys: keys from the keys file become the providers' api_key in the copy,
// replacing one left in the config; a key for no provider is reported; the copy loads and
// carries the key the loader reads back, quote included.
func TestRuntimeConfigKeys(t *testing.T) {
	in := "config airelay 'main'\n\noption lan_ipv4 '10.0.0.1'\n\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'old'\n\nconfig provider anthropic # comment\n\tlist host 'api.anthropic.com'\n\nconfig provider 'groq'\n\tlist host 'api.groq.com'\n\toption api_key 'kept'"
	keys := map[string]string{"openai": "sk-new", "anthropic": "sk-'q\"", "gone": "x", "zz": "y"}
	out, unused := RuntimeConfig([]byte(in), netip.Addr{}, netip.Addr{}, "", keys)
	want := "config airelay 'main'\n\noption lan_ipv4 '10.0.0.1'\n\nconfig provider 'openai'\n\toption api_key 'sk-new'\n\tlist host 'api.openai.com'\n\nconfig provider anthropic # comment\n\toption api_key 'sk-'\\''q\"'\n\tlist host 'api.anthropic.com'\n\nconfig provider 'groq'\n\tlist host 'api.groq.com'\n\toption api_key 'kept'"
	if string(out) != want {
		t.Errorf("copy:\n%s\nwant:\n%s", out, want)
	}
	if !slices.Equal(unused, []string{"gone", "zz"}) {
		t.Errorf("unused = %v", unused)
	}
	tb, err := config.LoadBytes("copy", out)
	if err != nil {
		t.Fatal(err)
	}
	for p, k := range map[string]string{"openai": "sk-new", "anthropic": "sk-'q\"", "groq": "kept"} {
		if got := tb.Provider(p).APIKey.Reveal(); got != k {
			t.Errorf("%s: api_key %q, want %q", p, got, k)
		}
	}
}

func TestPrivilegedPorts(t *testing.T) {
	tb, err := config.LoadBytes("/etc/config/airelay", []byte("config airelay 'main'\n\toption tls_listen ':443'\n\toption dns_listen '127.0.0.1:53'\n\toption http_listen ':8080'\n\toption status_listen ''\n"))
	if err != nil {
		t.Fatal(err)
	}
	errs := PrivilegedPorts(tb, "airelay", 1024)
	if len(errs) != 2 {
		t.Fatalf("got %v, want tls_listen and dns_listen", errs)
	}
	for i, want := range []string{
		"/etc/config/airelay: section 'main' option 'dns_listen' value '127.0.0.1:53': port 53 is below 1024, and airelay runs as user 'airelay'",
		"/etc/config/airelay: section 'main' option 'tls_listen' value ':443': port 443 is below 1024",
	} {
		if !strings.HasPrefix(errs[i].Error(), want) {
			t.Errorf("error %d: %v\nwant prefix %s", i, errs[i], want)
		}
	}
	if errs := PrivilegedPorts(tb, "root", 1024); errs != nil {
		t.Errorf("root: %v", errs)
	}
	if errs := PrivilegedPorts(tb, "airelay", 0); errs != nil {
		t.Errorf("ip_unprivileged_port_start 0: %v", errs)
	}
}

func TestDoHCanary(t *testing.T) {
	on := DnsmasqConf(load(t, "config provider 'openai'\n\tlist host 'api.openai.com'\n"), "")
	off := DnsmasqConf(load(t, "config airelay 'main'\n\toption doh_canary '0'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n"), "")
	if !bytes.HasSuffix(on, []byte("\naddress=/use-application-dns.net/\n")) {
		t.Errorf("doh_canary on by default: %s", on)
	}
	if bytes.Contains(off, []byte(DoHCanary)) || !bytes.Contains(off, []byte("server=/api.openai.com/")) {
		t.Errorf("doh_canary 0: %s", off)
	}
}

// TestMoveKeys: an old config's keys leave /etc/config/airelay for the keys file, the rest of
// the file unchanged; a key already in the keys file wins and the other is kept aside, never
// dropped; the result reads back.
func TestMoveKeys(t *testing.T) {
	cfg := "config airelay 'main'\n\toption api_key 'not-a-provider'\n\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'sk-'\\''old'\n\noption x\nconfig provider anthropic\n\toption api_key \"sk-ant\"  # comment\n\tlist host 'api.anthropic.com'\n"
	m := MoveKeys([]byte(cfg), map[string]string{"anthropic": "sk-newer"})
	want := "config airelay 'main'\n\toption api_key 'not-a-provider'\n\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\noption x\nconfig provider anthropic\n\tlist host 'api.anthropic.com'\n"
	if string(m.Config) != want {
		t.Errorf("config after the move:\n%s\nwant:\n%s", m.Config, want)
	}
	if !slices.Equal(m.Moved, []string{"openai"}) || m.Same != nil || !slices.Equal(m.Other["anthropic"], []string{"sk-ant"}) || len(m.Other) != 1 ||
		m.Keys["openai"] != "sk-'old" || m.Keys["anthropic"] != "sk-newer" {
		t.Errorf("moved %v same %v other %v keys %v", m.Moved, m.Same, m.Other, m.Keys)
	}
	file := KeysFile(m.Keys)
	if string(file) != "config key 'anthropic'\n\toption api_key 'sk-newer'\n\nconfig key 'openai'\n\toption api_key 'sk-'\\''old'\n" {
		t.Errorf("keys file:\n%s", file)
	}
	back, err := config.ParseKeys("k", file)
	if err != nil || back["openai"] != "sk-'old" || back["anthropic"] != "sk-newer" {
		t.Errorf("keys file reads back as %v %v", back, err)
	}
	if again := MoveKeys(m.Config, nil); string(again.Config) != want || again.Moved != nil || again.Other != nil {
		t.Errorf("a second move changed something: %+v", again)
	}
}

// Issue 19.5: every key of a line taken out ends up in the keys file or in Other.
func TestMoveKeysNeverDrops(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		keys      map[string]string
		inForce   string
		same      []string
		other     []string
	}{
		{"same key in both", "config provider 'openai'\n\toption api_key 'sk-A'\n", map[string]string{"openai": "sk-A"}, "sk-A", []string{"openai"}, nil},
		{"another key in the keys file", "config provider 'openai'\n\toption api_key 'sk-typed'\n", map[string]string{"openai": "sk-file"}, "sk-file", nil, []string{"sk-typed"}},
		{"set twice, none in the file", "config provider 'openai'\n\toption api_key 'sk-1'\n\toption api_key 'sk-2'\n", nil, "sk-2", nil, []string{"sk-1"}},
		{"set twice, the file has one of them", "config provider 'openai'\n\toption api_key 'sk-1'\n\toption api_key 'sk-file'\n", map[string]string{"openai": "sk-file"}, "sk-file", []string{"openai"}, []string{"sk-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := MoveKeys([]byte(tc.cfg), tc.keys)
			if strings.Contains(string(m.Config), "api_key") || m.Keys["openai"] != tc.inForce || !slices.Equal(m.Same, tc.same) || !slices.Equal(m.Other["openai"], tc.other) {
				t.Errorf("%+v", m)
			}
			saved := string(SavedKeys(m.Other, "/etc/config/airelay", "/etc/config/airelay_keys", time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)))
			for _, k := range tc.other {
				if !strings.Contains(saved, "config key 'openai'\n\toption api_key '"+k+"'\n") || !strings.HasPrefix(saved, "# airelay migrate-keys, 2026-12-04T12:00:00Z: ") {
					t.Errorf("saved block:\n%s", saved)
				}
			}
		})
	}
}
