package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The router: its files at their OpenWrt paths below h.root, dnsmasq, an fw4-shaped ruleset,
// the web UI, and airelay started, reloaded and wired the way files/airelay.init does it.

// startRouter lays out the router's files as the package installs them, loads the firewall,
// starts dnsmasq and the web UI, then starts airelay the way its init script does.
func (h *home) startRouter() {
	for _, d := range []string{"etc/config", "var/etc", "tmp/dnsmasq.cfg01411c.d", chainPre + "/dstnat", chainPre + "/input"} {
		os.MkdirAll(h.path(d), 0o755)
	}
	// /etc/config/airelay: the shipped config and the user's additions
	shipped, err := os.ReadFile(filepath.Join(h.repo, "files/airelay.config"))
	if err != nil {
		h.fatalf("%v", err)
	}
	cfg := string(shipped) + siteConfig
	// the shipped history_file is /etc/airelay on the router: here, below the router's root
	os.MkdirAll(h.path("etc/airelay"), 0o700)
	cfg += "\nconfig airelay 'main'\n\toption history_file '" + h.path("etc/airelay/history.json") + "'\n"
	for _, f := range []string{"/tmp/resolv.conf.d/resolv.conf.auto", "/tmp/resolv.conf.auto"} {
		if _, err := os.Stat(f); err == nil {
			// The namespaces share the test machine's /tmp; its WAN resolvers are not ours.
			h.t.Logf("%s exists on this machine; naming the ISP's resolver in the config instead", f)
			cfg += "\nconfig airelay 'main'\n\tlist resolver '" + ispDNS + "'\n"
			break
		}
	}
	if err := os.WriteFile(h.path(confPath), []byte(cfg), 0o600); err != nil {
		h.fatalf("%v", err)
	}
	// the package's symlinks (mk/ipk.mk --link): fw4 follows them to the fragments while they exist
	for _, chain := range []string{"dstnat", "input"} {
		os.Symlink(h.path(runDir+"/fw4-"+chain+".nft"), h.path(chainPre+"/"+chain+"/30-airelay.nft"))
	}
	// dnsmasq as OpenWrt 24.10 configures its default instance (/etc/config/dhcp defaults),
	// trimmed to what matters here: rebind protection (why airelay's lines carry
	// rebind-domain-ok), upstream servers from resolv.conf.auto, and the instance's conf-dir,
	// where airelay's init script puts its file.
	os.WriteFile(h.path("tmp/hosts"), []byte(routerLAN+" openwrt\n"), 0o644)
	os.MkdirAll(h.path("tmp/resolv.conf.d"), 0o755)
	os.WriteFile(h.path("tmp/resolv.conf.d/resolv.conf.auto"), []byte("nameserver "+ispDNS+"\n"), 0o644)
	os.WriteFile(h.path(dnsmasqConf), []byte(`domain-needed
localise-queries
stop-dns-rebind
rebind-localhost-ok
local=/lan/
domain=lan
expand-hosts
no-hosts
addn-hosts=`+h.path("tmp/hosts")+`
cache-size=1000
resolv-file=`+h.path("tmp/resolv.conf.d/resolv.conf.auto")+`
conf-dir=`+h.path("tmp/dnsmasq.cfg01411c.d")+`
listen-address=`+routerLAN+`,127.0.0.1
bind-interfaces
user=root
log-queries
`), 0o644)

	if err := h.fw4Reload(); err != nil {
		h.fatalf("fw4: %v", err)
	}
	h.startDnsmasq()

	// The router's own HTTPS (uhttpd/LuCI): on loopback only, reachable from the LAN solely
	// through the relay's tls_fallback.
	ui, err := serveHTTPS(h.router, "127.0.0.1:443", h.leaf("openwrt.lan", routerLAN), "OpenWrt LuCI (router web UI)")
	if err != nil {
		h.fatalf("web UI: %v", err)
	}
	h.addServer(ui)
	h.webUI = ui

	if said, err := h.initStart(); err != nil || said != "" {
		h.fatalf("/etc/init.d/airelay start: %v %s", err, said)
	}
}

func (h *home) startDnsmasq() {
	h.t.Helper()
	h.mu.Lock()
	h.dnsmasqN++
	h.mu.Unlock()
	h.start("dnsmasq", h.router, nil, "dnsmasq", "--keep-in-foreground", "--conf-file="+h.path(dnsmasqConf),
		"--pid-file=", "--log-facility=-")
	if err := h.waitDNS(h.router, "127.0.0.1", "openwrt.lan", routerLAN); err != nil {
		h.fatalf("router dnsmasq: %v\n%s", err, h.proc("dnsmasq").out.String())
	}
}

// fw4Ruleset is shaped like the ruleset fw4 generates for OpenWrt's default zones (lan: br-lan,
// wan: wan) and a guest zone as OpenWrt's guest Wi-Fi guides add it (br-guest: input REJECT
// but DNS and DHCP, forwarding to wan only), reduced to what the test needs. It is stricter
// than OpenWrt on one point: the LAN may reach the router only for DNS and ICMP, so everything
// airelay needs from the LAN is opened by the fragments it generates. Those are included where fw4 includes
// /usr/share/nftables.d/chain-pre/<chain>/*.nft; fw4 skips a dangling symlink.
const fw4Ruleset = `table inet fw4
delete table inet fw4
table inet fw4 {
	define lan_devices = { "br-lan" }
	define guest_devices = { "br-guest" }
	define wan_devices = { "wan" }

	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept comment "!fw4: Accept traffic from loopback"
%s		ct state vmap { established : accept, related : accept } comment "!fw4: Handle inbound flows"
		iifname $lan_devices meta l4proto { tcp, udp } th dport 53 accept comment "DNS from the LAN"
		iifname $guest_devices meta l4proto { tcp, udp } th dport 53 accept comment "Allow-DNS-Guest"
		iifname $guest_devices udp dport 67 accept comment "Allow-DHCP-Guest"
		iifname $guest_devices counter reject comment "!fw4: reject guest input"
		meta l4proto { icmp, ipv6-icmp } accept
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state vmap { established : accept, related : accept } comment "!fw4: Handle forwarded flows"
		iifname $lan_devices oifname $wan_devices accept comment "lan to wan"
		iifname $guest_devices oifname $wan_devices accept comment "guest to wan"
	}

	chain dstnat {
		type nat hook prerouting priority dstnat; policy accept;
%s	}

	chain srcnat {
		type nat hook postrouting priority srcnat; policy accept;
		oifname $wan_devices meta nfproto ipv4 masquerade comment "!fw4: Masquerade IPv4 wan traffic"
	}
}
`

// fw4Ruleset renders the ruleset with the chain-pre includes that resolve.
func (h *home) fw4Render() string {
	inc := map[string]string{}
	for _, chain := range []string{"input", "dstnat"} {
		files, _ := filepath.Glob(h.path(chainPre + "/" + chain + "/*.nft"))
		for _, f := range files {
			if _, err := os.Stat(f); err == nil {
				inc[chain] += "\t\tinclude \"" + f + "\"\n"
			}
		}
	}
	return fmt.Sprintf(fw4Ruleset, inc["input"], inc["dstnat"])
}

// fw4 check (nft -c) and fw4 reload (nft -f) in the router.
func (h *home) fw4(check bool) error {
	p := h.path("var/etc/fw4.nft")
	if err := os.WriteFile(p, []byte(h.fw4Render()), 0o644); err != nil {
		return err
	}
	args := []string{"nft", "-f", p}
	if check {
		args = []string{"nft", "-c", "-f", p}
	}
	if r := runIn(h.router, 20*time.Second, nil, args...); !r.ok() {
		return fmt.Errorf("%s: %s", strings.Join(args, " "), r)
	}
	return nil
}

func (h *home) fw4Reload() error { return h.fw4(false) }

// --- airelay, started and wired the way files/airelay.init does it ---

func (h *home) airelay(args ...string) result {
	return runIn(h.router, 20*time.Second, nil, append([]string{h.airelayBin}, args...)...)
}

// lanIPv4 is what network_get_ipaddr finds for network.lan: br-lan's address.
func (h *home) lanIPv4() string {
	out := h.in(h.router, "ip", "-4", "-o", "addr", "show", "dev", "br-lan")
	m := regexp.MustCompile(`inet (\S+)/`).FindStringSubmatch(out)
	if m == nil {
		h.fatalf("no IPv4 address on br-lan: %s", out)
	}
	return m[1]
}

// lanSide are the networks of the router's fw4 zones that do not masquerade (the init script's
// lan_networks): network, zone, and the device netifd gives it while it is up.
var lanSide = []struct{ net, zone, dev string }{{"lan", "lan", "br-lan"}, {"guest", "guest", "br-guest"}}

// networkArgs is the init script's network_args: each LAN-side network with its device and
// the router's addresses on it (none while its device is missing or down), and each dnsmasq
// instance's generated config.
func (h *home) networkArgs() []string {
	var args []string
	for _, n := range lanSide {
		args = append(args, "--network", n.net, "--zone", n.zone)
		r := runIn(h.router, 10*time.Second, nil, "ip", "-o", "addr", "show", "dev", n.dev, "up")
		if !r.ok() || strings.TrimSpace(r.out) == "" {
			continue // network_get_device: none while the interface is down
		}
		args = append(args, "--device", n.dev)
		for _, m := range regexp.MustCompile(`inet6? (\S+) .*scope global`).FindAllStringSubmatch(r.out, -1) {
			args = append(args, "--subnet", m[1])
		}
	}
	files, _ := filepath.Glob(h.path("var/etc/dnsmasq.conf.*"))
	for _, f := range files {
		args = append(args, "--dnsmasq-conf", f)
	}
	return args
}

// runtimeConfig is the init script's runtime_config: the copy the daemon reads, with the LAN
// address and the LAN-side networks filled in, and the last valid config kept. A config that
// does not pass is said on
// stdout (the console and logread on the router): at start the last valid config, else the
// failing one read strictly, is copied instead (exit 3); on reload the copy stays (exit 2).
// It returns runtime-config's exit code and that line (or its stderr).
func (h *home) runtimeConfig(reload bool) (int, string) {
	os.MkdirAll(h.path(runDir), 0o700)
	os.Chmod(h.path(runDir), 0o700)
	os.MkdirAll(h.path("etc/airelay"), 0o700)
	args := []string{"runtime-config", "--config", h.path(confPath), "--out", h.path(runConf),
		"--last-valid", h.path(lastValid), "--state", h.path(configState), "--lan-ipv4", h.lanIPv4(), "--lan-ipv6", ""}
	args = append(args, h.networkArgs()...)
	if reload {
		args = append(args, "--reload")
	}
	r := h.airelay(args...)
	msg := strings.TrimSpace(r.out)
	if msg == "" {
		msg = strings.TrimSpace(r.errOut)
	}
	return r.code, msg
}

// initStart is `/etc/init.d/airelay start`: runtime_config, the procd instance (airelay run
// --config the copy), then service_started's wire_dnsmasq and wire_firewall. What
// runtime_config said about a config that does not pass is returned (the console's line).
func (h *home) initStart() (said string, err error) {
	code, msg := h.runtimeConfig(false)
	if code != 0 && code != 3 {
		return msg, fmt.Errorf("airelay runtime-config: exit %d: %s", code, msg)
	}
	if code == 3 {
		said = msg
	}
	if err := h.startDaemon(); err != nil {
		return said, err
	}
	return said, h.wire()
}

// initStop is `/etc/init.d/airelay stop`: the daemon stopped, the dnsmasq file and the fw4
// fragments removed (dnsmasq restarted, fw4 reloaded), the copy and its state removed.
func (h *home) initStop() error {
	h.proc("airelay").stop(10 * time.Second)
	changed := false
	for _, in := range h.dnsmasqInstances() {
		if c, err := put(filepath.Join(in.dir, "airelay.conf"), ""); err != nil {
			return err
		} else if c {
			changed = true
		}
	}
	if changed {
		h.proc("dnsmasq").stop(5 * time.Second)
		h.startDnsmasq()
	}
	os.Remove(h.path(runDir + "/fw4-dstnat.nft"))
	os.Remove(h.path(runDir + "/fw4-input.nft"))
	os.Remove(h.path(runConf))
	os.Remove(h.path(configState))
	return h.fw4Reload()
}

// startDaemon is what procd runs (and runs again when the daemon dies: respawn).
func (h *home) startDaemon() error {
	// TZ=UTC: schedules read the router's local time; the clock file lets scenario 8 move it
	p := h.start("airelay", h.router, []string{"TZ=UTC", "AIRELAY_CLOCK_FILE=" + h.path(clockFile)}, h.airelayBin, "run",
		"--config", h.path(runConf), "--config-state", h.path(configState))
	return p.waitOutput("msg=ready", 30*time.Second)
}

// initReload is `/etc/init.d/airelay reload` (uci commit airelay): runtime_config, SIGHUP,
// wire_dnsmasq, wire_firewall. A config that does not pass leaves the copy as it is; the
// daemon still gets SIGHUP, to show why in its status, and the reload fails with the line
// runtime_config logged.
func (h *home) initReload() error {
	code, msg := h.runtimeConfig(true)
	switch code {
	case 0, 3:
	case 2:
		if _, err := os.Stat(h.path(runConf)); err == nil {
			h.proc("airelay").signal(syscall.SIGHUP)
		}
		return fmt.Errorf("airelay runtime-config refused the config: %s", msg)
	default:
		return fmt.Errorf("airelay runtime-config: exit %d: %s", code, msg)
	}
	if err := h.proc("airelay").signal(syscall.SIGHUP); err != nil {
		return err
	}
	return h.wire()
}

// wire is service_started: each dnsmasq instance's file in its conf-dir (every dnsmasq
// restarted when one changed) and the fw4 fragments (fw4 check, then reload, when they changed).
func (h *home) wire() error {
	changed := false
	for _, in := range h.dnsmasqInstances() {
		r := h.airelay("dnsmasq-conf", "--config", h.path(runConf), "--instance", in.names, "--config-state", h.path(configState))
		if !r.ok() {
			return fmt.Errorf("airelay dnsmasq-conf: %s", r)
		}
		c, err := put(filepath.Join(in.dir, "airelay.conf"), r.out)
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if changed {
		h.restartDnsmasq()
	}
	changed = false
	for _, chain := range []string{"dstnat", "input"} {
		r := h.airelay("firewall", "--config", h.path(runConf), "--config-state", h.path(configState), "--zone", "lan", "--chain", chain)
		if !r.ok() {
			return fmt.Errorf("airelay firewall: %s", r)
		}
		c, err := put(h.path(runDir+"/fw4-"+chain+".nft"), r.out)
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if !changed {
		return nil
	}
	if err := h.fw4(true); err != nil {
		os.Remove(h.path(runDir + "/fw4-dstnat.nft"))
		os.Remove(h.path(runDir + "/fw4-input.nft"))
		h.fw4Reload()
		return fmt.Errorf("the fragments do not load: %w", err)
	}
	return h.fw4Reload()
}

// restartDnsmasq is /etc/init.d/dnsmasq restart: every instance. The default one is "dnsmasq";
// another instance X (var/etc/dnsmasq.conf.X) runs as "dnsmasq-X".
func (h *home) restartDnsmasq() {
	h.proc("dnsmasq").stop(5 * time.Second)
	h.startDnsmasq()
	files, _ := filepath.Glob(h.path("var/etc/dnsmasq.conf.*"))
	for _, f := range files {
		if f == h.path(dnsmasqConf) {
			continue
		}
		name := "dnsmasq-" + strings.TrimPrefix(filepath.Base(f), "dnsmasq.conf.")
		if p := h.proc(name); p != nil {
			p.stop(5 * time.Second)
		}
		h.start(name, h.router, nil, "dnsmasq", "--keep-in-foreground", "--conf-file="+f, "--pid-file=", "--log-facility=-")
	}
}

// dnsmasqInstance is a conf-dir and the instances that read it ("a,b" when they share it).
type dnsmasqInstance struct{ names, dir string }

// dnsmasqInstances is the init script's dnsmasq_instances, grouped by conf-dir as wire_dnsmasq
// does: from each instance's generated config (var/etc/dnsmasq.conf.<instance>).
func (h *home) dnsmasqInstances() []dnsmasqInstance {
	var out []dnsmasqInstance
	files, _ := filepath.Glob(h.path("var/etc/dnsmasq.conf.*"))
	for _, f := range files {
		name := strings.TrimPrefix(filepath.Base(f), "dnsmasq.conf.")
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			d, ok := strings.CutPrefix(l, "conf-dir=")
			if !ok {
				continue
			}
			d, _, _ = strings.Cut(d, ",")
			i := slices.IndexFunc(out, func(in dnsmasqInstance) bool { return in.dir == d })
			if i < 0 {
				out = append(out, dnsmasqInstance{name, d})
			} else {
				out[i].names += "," + name
			}
			break
		}
	}
	if len(out) == 0 {
		out = []dnsmasqInstance{{"-", h.path("tmp/dnsmasq.d")}}
	}
	return out
}

// put is the init script's put: install content as file, or remove file when content is empty.
// It reports whether file changed.
func put(file, content string) (bool, error) {
	old, err := os.ReadFile(file)
	exists := err == nil
	if content == "" {
		if !exists {
			return false, nil
		}
		return true, os.Remove(file)
	}
	if exists && string(old) == content {
		return false, nil
	}
	return true, os.WriteFile(file, []byte(content), 0o644)
}

// status is `airelay status --json` on the router.
func (h *home) status() (*statusDoc, error) {
	r := h.airelay("status", "--json", "--addr", "127.0.0.1:9099")
	if !r.ok() {
		return nil, fmt.Errorf("airelay status: %s", r)
	}
	var st statusDoc
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		return nil, fmt.Errorf("airelay status: %v\n%s", err, r.out)
	}
	return &st, nil
}

// device finds a device's row in a status document (a zero row when it is not there yet).
func device(st *statusDoc, addr string) deviceRow {
	for _, d := range st.Devices {
		if d.Addr == addr {
			return d
		}
	}
	return deviceRow{Addr: addr}
}
