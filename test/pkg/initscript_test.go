package pkg

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Stand-ins for the OpenWrt pieces the init script talks to, written for this test. Each
// records its calls in /calls; none does the real work. rc.common follows the order of the real
// one for procd scripts: start = start_service + service_triggers, then service_started; stop =
// stop_service, then procd_kill; reload = reload_service.
var standIns = map[string]string{
	"etc/rc.common": `#!/bin/sh
. /lib/functions.sh
initscript=$1; action=${2:-help}; shift 2
start_service() { return 0; }
stop_service() { return 0; }
service_triggers() { return 0; }
. "$initscript"
. /lib/functions/procd.sh
name=$(basename "$initscript")
start() {
	procd_open_service "$name" "$initscript"
	start_service "$@"
	service_triggers
	procd_close_service
	if type service_started >/dev/null 2>&1; then service_started; fi
}
stop() { stop_service "$@"; procd_kill "$name" "$1"; }
reload() { if type reload_service >/dev/null 2>&1; then reload_service "$@"; else start; fi; }
restart() { stop; start; }
"$action" "$@"
`,
	// config_load and friends over /etc/config/<name>.zones: "section option=value,value …"
	"lib/functions.sh": `config_load() { CONFIG_FILE=/etc/config/$1.zones; }
config_foreach() { local fn=$1 s; shift; for s in $(cut -d ' ' -f 1 "$CONFIG_FILE" 2>/dev/null); do "$fn" "$s" "$@"; done; }
config_get() { local v; v=$(grep "^$2 " "$CONFIG_FILE" | tr ' ' '\n' | sed -n "s/^$3=//p" | tr , ' '); eval "$1=\"\${v:-$4}\""; }
config_get_bool() { config_get "$@"; }
`,
	// OpenWrt's zones: lan, and wan, which masquerades (guest is added by the test)
	"etc/config/firewall.zones": "lan name=lan network=lan\nwan name=wan network=wan,wan6 masq=1\n",
	"lib/functions/procd.sh": `rec() { echo "$*" >>/calls; }
procd_open_service() { rec procd_open_service "$@"; }
procd_close_service() { rec procd_close_service "$@"; }
procd_open_instance() { rec procd_open_instance "$@"; }
procd_set_param() { rec procd_set_param "$@"; }
procd_append_param() { rec procd_append_param "$@"; }
procd_close_instance() { rec procd_close_instance; : >/tmp/procd.running; }
procd_kill() { rec procd_kill "$@"; rm -f /tmp/procd.running; }
procd_send_signal() { rec procd_send_signal "$@"; }
procd_running() { [ -e /tmp/procd.running ]; }
procd_add_reload_trigger() { rec procd_add_reload_trigger "$@"; }
procd_add_reload_interface_trigger() { rec procd_add_reload_interface_trigger "$@"; }
`,
	"lib/functions/network.sh": `network_get_ipaddr() { eval "$1=192.168.1.1"; }
network_get_ipaddr6() { eval "$1=fd00:ab::1"; }
network_get_device() { case "$2" in lan) eval "$1=lo";; guest) eval "$1=br-guest";; *) eval "$1=";; esac; }
network_get_subnets() { case "$2" in lan) eval "$1=192.168.1.1/24";; guest) eval "$1=192.168.2.1/24";; *) eval "$1=";; esac; }
network_get_subnets6() { case "$2" in lan) eval "$1=fd00:ab::1/64";; *) eval "$1=";; esac; }
`,
	"etc/init.d/dnsmasq": "#!/bin/sh\necho \"dnsmasq $*\" >>/calls\n",
	// like the real fw4: -q silences it, a failed check says why on stderr. fw4-check-fails:
	// it refuses airelay's fragments; fw4-broken-include: another package's include breaks
	// every check and reload, with or without them (the live ruleset stays as it was)
	"sbin/fw4":       "#!/bin/sh\necho \"fw4 $*\" >>/calls\ncase \"$*\" in *check*) if [ -e /tmp/fw4-broken-include ] || { [ -e /tmp/fw4-check-fails ] && [ -e /var/run/airelay/fw4-dstnat.nft ]; }; then [ \"$1\" = -q ] || echo 'Error: Set is empty' >&2; exit 1; fi;; *reload*) [ ! -e /tmp/fw4-broken-include ] || exit 1;; esac\n",
	"usr/bin/logger": "#!/bin/sh\necho \"logger $*\" >>/calls\n",
	// fw4's live ruleset (nft -a list chain inet fw4 CHAIN): the fragment fw4 loaded, or
	// /tmp/live-CHAIN where a test keeps an older ruleset (nothing with nft-lost-rules); nft -f -
	// (rules taken out) is recorded
	"usr/sbin/nft": `#!/bin/sh
echo "nft $*" >>/calls
case "$*" in
*"list chain inet fw4 "*)
	chain=${*##* }
	[ -e /tmp/nft-lost-rules ] && exit 0
	f=/var/run/airelay/fw4-$chain.nft
	[ -e /tmp/live-$chain ] && f=/tmp/live-$chain
	awk '/comment/ { print $0 " # handle " NR + 40 }' "$f" 2>/dev/null
	;;
"-f -") sed 's/^/nft-f: /' >>/calls ;;
esac
`,
	"etc/passwd":                     "root:x:0:0:root:/root:/bin/ash\n",
	"etc/group":                      "root:x:0:\n",
	"var/etc/dnsmasq.conf.cfg01411c": "conf-file=/etc/dnsmasq.conf\nconf-dir=/tmp/dnsmasq.cfg01411c.d\nuser=dnsmasq\n",
}

// chrootRoot makes root a chroot shaped like OpenWrt: static busybox as /bin/sh and its applets,
// /dev/null, and the stand-ins above. Needs root and busybox-static (else the test is skipped).
func chrootRoot(t *testing.T, root string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	bb := need(t, "busybox")
	if f, err := elf.Open(bb); err == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Skip("busybox is not static (install busybox-static)")
			}
		}
		f.Close()
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "tmp", "var/run", "dev"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	if err := syscall.Mknod(filepath.Join(root, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("mknod /dev/null in the chroot: %v", err)
	}
	b, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755)
	run(t, "/", nil, "chroot", root, "/bin/busybox", "--install", "-s", "/bin")
	for name, text := range standIns {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// The procd init script, run by busybox sh in a chroot shaped like OpenWrt (the packaged
// x86_64 binary, the shipped config, stand-ins for procd, dnsmasq's init and fw4): the exact
// dnsmasq lines and firewall rules it installs, idempotent start, reload by SIGHUP after a
// config change, and a stop that removes everything it added.
func TestInitScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	install(t, ipks(t)["airelay/x86_64"], root)
	chrootRoot(t, root)
	initd := func(action string) []string {
		t.Helper()
		os.Remove(filepath.Join(root, "calls"))
		out, err := exec.Command("chroot", root, "/bin/sh", "/etc/rc.common", "/etc/init.d/airelay", action).CombinedOutput()
		if err != nil {
			t.Fatalf("/etc/init.d/airelay %s: %v\n%s", action, err, out)
		}
		calls, _ := os.ReadFile(filepath.Join(root, "calls"))
		return strings.Split(strings.TrimSpace(string(calls)), "\n")
	}
	has := func(calls []string, want string) bool {
		for _, c := range calls {
			if c == want {
				return true
			}
		}
		return false
	}
	count := func(calls []string, prefix string) int {
		n := 0
		for _, c := range calls {
			if strings.HasPrefix(c, prefix) {
				n++
			}
		}
		return n
	}
	airelay := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("chroot", append([]string{root, "/usr/sbin/airelay"}, args...)...).Output()
		if err != nil {
			t.Fatalf("airelay %v: %v", args, err)
		}
		return string(out)
	}
	read := func(p string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(root, p))
		return string(b), err == nil
	}
	dnsConf := "tmp/dnsmasq.cfg01411c.d/airelay.conf"

	// uci-defaults, as on an upgrade from a version that kept keys in /etc/config/airelay: the
	// legacy key moves to the keys file beside the one LuCI set there, and both files are 0600
	shipped, _ := read("etc/config/airelay")
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(strings.Replace(shipped, "config provider 'anthropic'\n", "config provider 'anthropic'\n\toption api_key 'sk-legacy'\n", 1)), 0o644)
	os.WriteFile(filepath.Join(root, "etc/config/airelay_keys"), []byte("config key 'openai'\n\toption api_key 'sk-from-keys-file'\n"), 0o644)
	if out, err := exec.Command("chroot", root, "/bin/sh", "/etc/uci-defaults/90-airelay").CombinedOutput(); err != nil {
		t.Fatalf("uci-defaults: %v\n%s", err, out)
	}
	if c, _ := read("etc/config/airelay"); c != shipped {
		t.Errorf("uci-defaults left the config as\n%s", c)
	}
	if k, _ := read("etc/config/airelay_keys"); k != "config key 'anthropic'\n\toption api_key 'sk-legacy'\n\nconfig key 'openai'\n\toption api_key 'sk-from-keys-file'\n" {
		t.Errorf("keys file after uci-defaults:\n%s", k)
	}
	for _, p := range []string{"etc/config/airelay", "etc/config/airelay_keys"} {
		if st, err := os.Stat(filepath.Join(root, p)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s after uci-defaults: %v %v, want 0600", p, st.Mode(), err)
		}
	}

	// start
	calls := initd("start")
	for _, want := range []string{
		"procd_set_param command /usr/sbin/airelay run --log syslog --redirect-state /var/run/airelay/redirect --config /var/run/airelay/airelay --config-state /var/run/airelay/config-state",
		"procd_set_param respawn",
		"procd_set_param stdout 1",
		"procd_set_param stderr 1",
		"procd_set_param limits nofile=8192 8192",
		"procd_set_param user root", // no airelay user in this root
		"procd_add_reload_trigger airelay airelay_keys system firewall dhcp",
		"procd_add_reload_interface_trigger lan",
		"dnsmasq restart",
		"fw4 check",
		"fw4 -q reload",
	} {
		if !has(calls, want) {
			t.Errorf("start: no %q in\n%s", want, strings.Join(calls, "\n"))
		}
	}
	// procd applies capabilities and no_new_privs only to jailed instances: none are asked for
	if count(calls, "procd_set_param capabilities") != 0 || count(calls, "procd_set_param no_new_privs") != 0 {
		t.Errorf("start asks procd for a sandbox it does not apply:\n%s", strings.Join(calls, "\n"))
	}
	rc, _ := read("var/run/airelay/airelay")
	if !strings.Contains(rc, "\toption api_key 'sk-from-keys-file'\n") {
		t.Errorf("runtime config without the key from /etc/config/airelay_keys:\n%s", rc)
	}
	if state, _ := read("var/run/airelay/redirect"); !strings.HasPrefix(state, "active\n") {
		t.Errorf("redirect state after start: %q", state)
	}
	if !strings.Contains(rc, "option lan_ipv4 '192.168.1.1'") || !strings.Contains(rc, "option lan_ipv6 'fd00:ab::1'") ||
		!strings.Contains(rc, "config runtime_network\n\toption network 'lan'\n\toption device 'lo'\n\toption zone 'lan'\n\tlist ipv4 '192.168.1.1/24'\n\tlist ipv6 'fd00:ab::1/64'\n\toption mode 'served'\n\tlist dnsmasq 'cfg01411c'\n") ||
		strings.Contains(rc, "'wan'") {
		t.Errorf("runtime config without the LAN (and only the LAN) as netifd, fw4 and dnsmasq describe it:\n%s", rc)
	}
	// the config passed: kept on flash as the last valid one, without the key; the state says current
	lastValid, _ := read("etc/airelay/last-valid")
	if !strings.Contains(lastValid, "config provider 'openai'") || strings.Contains(lastValid, "sk-") {
		t.Errorf("last valid config after start:\n%s", lastValid)
	}
	if st, _ := read("var/run/airelay/config-state"); st != "{\"state\":\"current\"}\n" {
		t.Errorf("config state after start: %q", st)
	}
	for p, mode := range map[string]os.FileMode{"var/run/airelay": 0o700 | os.ModeDir, "var/run/airelay/airelay": 0o600,
		"var/run/airelay/config-state": 0o600, "etc/airelay": 0o700 | os.ModeDir, "etc/airelay/last-valid": 0o600} {
		if st, err := os.Stat(filepath.Join(root, p)); err != nil || st.Mode() != mode {
			t.Errorf("%s: %v, want mode %v", p, st, mode)
		}
	}
	got, ok := read(dnsConf)
	want := airelay("dnsmasq-conf", "--config", "/var/run/airelay/airelay", "--instance", "cfg01411c")
	if !ok || got != want || !strings.Contains(got, "server=/api.openai.com/127.0.0.1#5353\n") || !strings.Contains(got, "rebind-domain-ok=/api.openai.com/\n") ||
		!strings.Contains(got, "interface-name=api.openai.com,lo\n") || !strings.Contains(got, "server=/*.api.openai.com/#\n") {
		t.Errorf("dnsmasq conf-dir file:\n%s\nwant\n%s", got, want)
	}
	if _, ok := read("tmp/dnsmasq.d/airelay.conf"); ok {
		t.Error("wrote /tmp/dnsmasq.d although the running dnsmasq's conf-dir is another")
	}
	nat, _ := read("var/run/airelay/fw4-dstnat.nft")
	in, _ := read("var/run/airelay/fw4-input.nft")
	// the LAN's device by name (network_get_device says lo here), not fw4's zone set
	if !strings.Contains(nat, `iifname "lo" fib daddr type local tcp dport 443 counter redirect to :8443 `) ||
		!strings.Contains(in, `iifname "lo" tcp dport 8443 counter accept `) ||
		!strings.Contains(in, `iifname "lo" tcp dport 8080 counter accept `) ||
		nat != airelay("firewall", "--config", "/var/run/airelay/airelay", "--chain", "dstnat") {
		t.Errorf("fw4 fragments:\n%s\n%s", nat, in)
	}
	// the package's symlinks now lead fw4 to the fragments
	if target, err := filepath.EvalSymlinks(filepath.Join(root, "usr/share/nftables.d/chain-pre/dstnat/30-airelay.nft")); err == nil {
		t.Errorf("symlink resolves on the host side: %s", target)
	}
	if l, _ := os.Readlink(filepath.Join(root, "usr/share/nftables.d/chain-pre/dstnat/30-airelay.nft")); l != "/var/run/airelay/fw4-dstnat.nft" {
		t.Errorf("dstnat symlink -> %q", l)
	}

	// start again: nothing changed, so neither dnsmasq nor fw4 is disturbed
	calls = initd("start")
	if count(calls, "dnsmasq ") != 0 || count(calls, "fw4 ") != 0 {
		t.Errorf("second start restarted dnsmasq or fw4:\n%s", strings.Join(calls, "\n"))
	}

	// reload after `uci commit` disabled a provider: new copy, SIGHUP, new dnsmasq lines
	cfg, _ := read("etc/config/airelay")
	cfg = strings.Replace(cfg, "config provider 'openai'\n", "config provider 'openai'\n\toption enabled '0'\n", 1)
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(cfg), 0o600)
	calls = initd("reload")
	if !has(calls, "procd_send_signal airelay * HUP") || !has(calls, "dnsmasq restart") || count(calls, "fw4 ") != 0 {
		t.Errorf("reload:\n%s", strings.Join(calls, "\n"))
	}
	if got, _ := read(dnsConf); strings.Contains(got, "api.openai.com") || !strings.Contains(got, "api.anthropic.com") {
		t.Errorf("after reload:\n%s", got)
	}

	// a broken config: reload leaves the copy, dnsmasq, fw4 and the last valid config as they
	// are, says why in logread and on the console, fails, and signals the daemon only so that
	// its status shows the refusal
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(strings.Replace(cfg, "option tls_listen ':8443'", "option tls_listen 'nonsense'", 1)), 0o600)
	before, _ := read("var/run/airelay/airelay")
	lvBefore, _ := read("etc/airelay/last-valid")
	os.Remove(filepath.Join(root, "calls"))
	out, err := exec.Command("chroot", root, "/bin/sh", "/etc/rc.common", "/etc/init.d/airelay", "reload").CombinedOutput()
	if err == nil {
		t.Errorf("reload of a broken config succeeded: %s", out)
	}
	calls = func() []string {
		b, _ := os.ReadFile(filepath.Join(root, "calls"))
		return strings.Split(string(b), "\n")
	}()
	if after, _ := read("var/run/airelay/airelay"); after != before || count(calls, "dnsmasq") != 0 || count(calls, "fw4") != 0 || !has(calls, "procd_send_signal airelay * HUP") {
		t.Errorf("a broken config reached the copy, dnsmasq or fw4, or the daemon was not told:\n%s", strings.Join(calls, "\n"))
	}
	if lv, _ := read("etc/airelay/last-valid"); lv != lvBefore {
		t.Error("a refused reload changed the last valid config")
	}
	if !strings.Contains(string(out), "airelay: reload refused, serving the last valid config from ") || !strings.Contains(string(out), "section 'main' option 'tls_listen' value 'nonsense'") ||
		count(calls, "logger -t airelay -p daemon.err reload refused, serving the last valid config") != 1 {
		t.Errorf("the refusal is not on the console and in logread:\n%s\n%s", out, strings.Join(calls, "\n"))
	}
	if st, _ := read("var/run/airelay/config-state"); !strings.Contains(st, `"state":"last_valid"`) || !strings.Contains(st, `"refused":true`) {
		t.Errorf("config state after a refused reload: %q", st)
	}
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(cfg), 0o600)

	// stop: everything airelay added is gone, and dnsmasq and fw4 reload without it
	calls = initd("stop")
	for _, want := range []string{"dnsmasq restart", "fw4 -q reload", "procd_kill airelay"} {
		if !has(calls, want) {
			t.Errorf("stop: no %q in\n%s", want, strings.Join(calls, "\n"))
		}
	}
	// the copy holds the API keys: it must not stay in tmpfs
	for _, p := range []string{dnsConf, "var/run/airelay/fw4-dstnat.nft", "var/run/airelay/fw4-input.nft", "var/run/airelay/airelay", "var/run/airelay/redirect"} {
		if _, ok := read(p); ok {
			t.Errorf("%s left behind after stop", p)
		}
	}
	calls = initd("stop")
	if count(calls, "dnsmasq") != 0 || count(calls, "fw4") != 0 {
		t.Errorf("stopping a stopped airelay touched dnsmasq or fw4:\n%s", strings.Join(calls, "\n"))
	}

	// 23.05: no per-instance conf-dir found, so /tmp/dnsmasq.d; and a zone fw4 cannot load
	// leaves no fragment behind
	os.Remove(filepath.Join(root, "var/etc/dnsmasq.conf.cfg01411c"))
	os.WriteFile(filepath.Join(root, "tmp/fw4-check-fails"), nil, 0o644)
	calls = initd("start")
	if _, ok := read("tmp/dnsmasq.d/airelay.conf"); !ok {
		t.Error("23.05 layout: no /tmp/dnsmasq.d/airelay.conf")
	}
	if _, ok := read("var/run/airelay/fw4-dstnat.nft"); ok || count(calls, "logger ") == 0 {
		t.Errorf("fw4 check failed but the fragment stayed, or nothing was logged:\n%s", strings.Join(calls, "\n"))
	}
	if state, _ := read("var/run/airelay/redirect"); !strings.HasPrefix(state, "inactive\nfw4 refused airelay's rules: Error: Set is empty") {
		t.Errorf("redirect state when fw4 refuses the rules: %q", state)
	}
	initd("stop")
	os.Remove(filepath.Join(root, "tmp/fw4-check-fails"))

	// fw4 took the files but its live ruleset lacks the rule: status says so
	os.WriteFile(filepath.Join(root, "tmp/nft-lost-rules"), nil, 0o644)
	calls = initd("start")
	if state, _ := read("var/run/airelay/redirect"); !strings.HasPrefix(state, "inactive\nHTTPS to the router is not redirected on lan: the rule is not in fw4's live dstnat chain") {
		t.Errorf("redirect state with the rule missing from the ruleset: %q\n%s", state, strings.Join(calls, "\n"))
	}
	// fw4 loads it later (a firewall restart): fw4 runs airelay's include, which the
	// uci-defaults registered, and the state follows the live ruleset
	os.Remove(filepath.Join(root, "tmp/nft-lost-rules"))
	include := func() {
		t.Helper()
		if out, err := exec.Command("chroot", root, "/bin/sh", "-c", ". /usr/share/airelay/fw4.include").CombinedOutput(); err != nil {
			t.Fatalf("fw4 include: %v\n%s", err, out)
		}
	}
	include()
	if state, _ := read("var/run/airelay/redirect"); !strings.HasPrefix(state, "active\nHTTPS to the router from lan goes to the SNI relay\nnet lan active\n") {
		t.Errorf("redirect state after fw4 ran the include: %q", state)
	}

	// Issue 19.7: another package's include breaks fw4, and tls_listen moves from :8443 to
	// :8444. fw4 can load nothing, so its live ruleset keeps airelay's old redirect to :8443,
	// where nothing listens any more: airelay takes that rule out itself, keeps its new
	// fragments for when fw4 loads again, and says the redirect is not active.
	live, _ := read("var/run/airelay/fw4-dstnat.nft")
	os.WriteFile(filepath.Join(root, "tmp/live-dstnat"), []byte(live), 0o644)
	os.WriteFile(filepath.Join(root, "tmp/fw4-broken-include"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(strings.Replace(cfg, "option tls_listen ':8443'", "option tls_listen ':8444'", 1)), 0o600)
	calls = initd("reload")
	if !has(calls, "nft-f: delete rule inet fw4 dstnat handle 42") || count(calls, "fw4 -q reload") != 0 {
		t.Errorf("the stale redirect to :8443 was not taken out of the live ruleset:\n%s", strings.Join(calls, "\n"))
	}
	if nat, _ := read("var/run/airelay/fw4-dstnat.nft"); !strings.Contains(nat, "redirect to :8444 ") {
		t.Errorf("the new fragment was not kept for when fw4 loads again: %q", nat)
	}
	if state, _ := read("var/run/airelay/redirect"); !strings.HasPrefix(state, "inactive\nHTTPS to the router is not redirected on lan") {
		t.Errorf("redirect state with fw4 broken by another include: %q", state)
	}
	os.Remove(filepath.Join(root, "tmp/fw4-broken-include"))
	os.Remove(filepath.Join(root, "tmp/live-dstnat"))
	include() // fw4 loads again (the other package fixed): its include sees the new rule
	if state, _ := read("var/run/airelay/redirect"); !strings.HasPrefix(state, "active\n") {
		t.Errorf("redirect state once fw4 loaded the new fragment: %q", state)
	}
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(cfg), 0o600)
	initd("stop")

	// a guest network (its own fw4 zone, not masquerading) is served beside lan: its own
	// rules, the dnsmasq file answers it with its own address, and its interface reloads
	os.WriteFile(filepath.Join(root, "etc/config/firewall.zones"), []byte(standIns["etc/config/firewall.zones"]+"guest name=guest network=guest\n"), 0o644)
	os.WriteFile(filepath.Join(root, "var/etc/dnsmasq.conf.cfg01411c"), []byte(standIns["var/etc/dnsmasq.conf.cfg01411c"]), 0o644)
	calls = initd("start")
	nat, _ = read("var/run/airelay/fw4-dstnat.nft")
	in, _ = read("var/run/airelay/fw4-input.nft")
	dns, _ := read(dnsConf)
	if !has(calls, "procd_add_reload_interface_trigger guest") || !strings.Contains(nat, `iifname "br-guest" fib daddr type local tcp dport 443 counter redirect to :8443 comment "airelay: guest HTTPS`) ||
		!strings.Contains(in, `iifname "br-guest" tcp dport 8080 counter accept`) || !strings.Contains(dns, "interface-name=api.anthropic.com,br-guest\n") {
		t.Errorf("guest network:\n%s\n%s\n%s\n%s", nat, in, dns, strings.Join(calls, "\n"))
	}
	initd("stop")
	os.WriteFile(filepath.Join(root, "etc/config/firewall.zones"), []byte(standIns["etc/config/firewall.zones"]), 0o644)

	// as the package's unprivileged user, a listener below 1024 is refused at start with the
	// reason on the console and in logread, and the last valid config serves instead: a
	// daemon, the dnsmasq file and the redirect, as before the mistake
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(standIns["etc/passwd"]+"airelay:x:100:100:airelay:/var:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte(standIns["etc/group"]+"airelay:x:100:\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(strings.Replace(cfg, "option tls_listen ':8443'", "option tls_listen ':443'", 1)), 0o600)
	startBad := func(what string) (string, []string) {
		t.Helper()
		os.Remove(filepath.Join(root, "calls"))
		out, err := exec.Command("chroot", root, "/bin/sh", "/etc/rc.common", "/etc/init.d/airelay", "start").CombinedOutput()
		b, _ := os.ReadFile(filepath.Join(root, "calls"))
		calls := strings.Split(string(b), "\n")
		if err != nil || count(calls, "procd_open_instance") != 1 || count(calls, "procd_set_param user airelay") != 1 {
			t.Errorf("%s: start did not run the daemon: %v %s\n%s", what, err, out, b)
		}
		if _, ok := read(dnsConf); !ok {
			t.Errorf("%s: no dnsmasq file", what)
		}
		if nat, _ := read("var/run/airelay/fw4-dstnat.nft"); !strings.Contains(nat, "redirect to :8443") {
			t.Errorf("%s: no redirect to the relay's port:\n%s", what, nat)
		}
		return string(out), calls
	}
	outS, calls := startBad("tls_listen :443 as user airelay")
	wantWhy := "/etc/config/airelay: section 'main' option 'tls_listen' value ':443': port 443 is below"
	if !strings.HasPrefix(outS, "airelay: serving the last valid config from ") || !strings.Contains(outS, wantWhy) ||
		count(calls, "logger -t airelay -p daemon.err serving the last valid config from ") != 1 || !strings.Contains(strings.Join(calls, "\n"), wantWhy) {
		t.Errorf("no console and log line saying why :443 was refused and what serves:\n%s\n%s", outS, strings.Join(calls, "\n"))
	}
	if rc, _ := read("var/run/airelay/airelay"); !strings.Contains(rc, "option tls_listen ':8443'") || !strings.Contains(rc, "option api_key 'sk-from-keys-file'") {
		t.Errorf("the copy is not the last valid config with the keys:\n%s", rc)
	}
	for _, p := range []string{"var/run/airelay", "var/run/airelay/airelay", "var/run/airelay/config-state", "etc/airelay"} {
		if st, err := os.Stat(filepath.Join(root, p)); err != nil || st.Sys().(*syscall.Stat_t).Uid != 100 {
			t.Errorf("%s is not the daemon's user's: %v", p, err)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "etc/airelay/last-valid")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("the last valid config must be root's, 0600: %v %v", st, err)
	}
	initd("stop")
	if _, ok := read("var/run/airelay/config-state"); ok {
		t.Error("stop left the config state")
	}
	if _, ok := read("etc/airelay/last-valid"); !ok {
		t.Error("stop removed the last valid config")
	}

	// a fresh install edited wrongly (no last valid config): the failing config is read
	// strictly. The misspelt client is denied, the listener falls back to its default, and
	// everything is wired
	os.Remove(filepath.Join(root, "etc/airelay/last-valid"))
	os.WriteFile(filepath.Join(root, "etc/config/airelay"), []byte(strings.Replace(cfg, "option tls_listen ':8443'", "option tls_listen ':443'", 1)+
		"\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\tlist schedule 'Mon-Fry 15:00-20:00'\n"), 0o600)
	outS, calls = startBad("a fresh install edited wrongly")
	if !strings.HasPrefix(outS, "airelay: no valid config to serve, so /etc/config/airelay is read strictly") || !strings.Contains(outS, "section 'kid' option 'schedule' value 'Mon-Fry 15:00-20:00'") ||
		count(calls, "logger -t airelay -p daemon.err no valid config to serve") != 1 {
		t.Errorf("fail-closed start not said on the console and in logread:\n%s\n%s", outS, strings.Join(calls, "\n"))
	}
	if st, _ := read("var/run/airelay/config-state"); !strings.Contains(st, `"state":"fail_closed"`) {
		t.Errorf("config state: %q", st)
	}
	if _, ok := read("etc/airelay/last-valid"); ok {
		t.Error("a failing config was kept as the last valid one")
	}
	initd("stop")
	if _, ok := read(dnsConf); ok {
		t.Error("stop left " + dnsConf)
	}
}
