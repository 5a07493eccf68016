package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/openwrt"
)

// The OpenWrt glue: files/airelay.init calls these so the shell only writes and reloads.

func init() {
	commands["dnsmasq-conf"] = command{"print the dnsmasq conf-dir lines that send the AI names to airelay", runDnsmasqConf}
	commands["firewall"] = command{"print the fw4 nftables fragment for one chain (dstnat or input)", runFirewall}
	commands["runtime-config"] = command{"write the config with the router's LAN addresses filled in", runRuntimeConfig}
	commands["fw4-sync"] = command{"take stale airelay rules out of fw4's live ruleset and write the redirect state", runFW4Sync}
	commands["migrate-keys"] = command{"move API keys from the config to the keys file LuCI cannot read", runMigrateKeys}
}

func runDnsmasqConf(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dnsmasq-conf", stderr)
	path := configFlag(fs)
	inst := fs.String("instance", "", "dnsmasq instance (section of /etc/config/dhcp) the file is for")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	t, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	_, _ = stdout.Write(openwrt.DnsmasqConf(t, *inst))
	return exitOK
}

func runFirewall(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("firewall", stderr)
	path := configFlag(fs)
	zone := fs.String("zone", "lan", "fw4 zone whose devices may use the relay and the gateway")
	chain := fs.String("chain", "", "fragment to print: dstnat or input")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *chain != "dstnat" && *chain != "input" {
		fmt.Fprintln(stderr, "airelay firewall: --chain must be dstnat or input")
		return exitConfig
	}
	t, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	r, err := openwrt.Firewall(t, *zone)
	if err != nil {
		fmt.Fprintln(stderr, "airelay firewall:", err)
		return exitConfig
	}
	if *chain == "dstnat" {
		_, _ = stdout.Write(r.DstNAT)
	} else {
		_, _ = stdout.Write(r.Input)
	}
	return exitOK
}

func runRuntimeConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("runtime-config", stderr)
	path := fs.String("config", config.DefaultPath, "UCI config file to read")
	out := fs.String("out", "", "file to write (mode 0600, replaced atomically); required")
	lan4 := fs.String("lan-ipv4", "", "the router's LAN IPv4 address, used when lan_ipv4 is empty")
	lan6 := fs.String("lan-ipv6", "", "the router's LAN IPv6 address, used when lan_ipv6 is empty")
	dev := fs.String("lan-device", "", "the LAN's network device (br-lan), used when listen_device is empty")
	var facts netFlags
	facts.register(fs)
	keysPath := fs.String("keys", "", "UCI file of the providers' API keys (/etc/config/airelay_keys) put into the copy; a missing file is no keys")
	runAs := runAsFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "airelay runtime-config: --out is required")
		return exitConfig
	}
	src, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, "airelay runtime-config:", err)
		return exitConfig
	}
	t, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err) // the user's file, named as they know it
		return exitConfig
	}
	if errs := openwrt.PrivilegedPorts(t, *runAs, unprivilegedPortStart()); len(errs) > 0 {
		fmt.Fprintln(stderr, errors.Join(errs...))
		return exitConfig
	}
	var keys map[string]string
	if *keysPath != "" {
		if keys, err = config.LoadKeys(*keysPath); err != nil {
			fmt.Fprintln(stderr, "airelay runtime-config:", err)
			return exitConfig
		}
	}
	a4, _ := netip.ParseAddr(*lan4) // an empty or bad address is the zero Addr: not filled in
	a6, _ := netip.ParseAddr(*lan6)
	var data []byte
	var unused []string
	if len(facts.nets) > 0 {
		// The router's networks: the daemon listens on each served one's device, so no
		// single listen_device; lan_ipv4/lan_ipv6 are the primary network's.
		dns, err := facts.dnsmasq()
		if err != nil {
			fmt.Fprintln(stderr, "airelay runtime-config:", err)
			return exitFail
		}
		data, unused = openwrt.RuntimeConfigNetworks(src, t, facts.nets, dns, keys)
	} else {
		data, unused = openwrt.RuntimeConfig(src, a4, a6, *dev, keys)
	}
	for _, p := range unused {
		fmt.Fprintf(stderr, "warning: %s: section '%s': no provider section has that name; its key is not used\n", *keysPath, p)
	}
	err = writePrivate(*out, data, func(tmp string) error {
		if _, err := config.Load(tmp); err != nil {
			return fmt.Errorf("the filled-in copy of %s does not load: %w", *path, err)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "airelay runtime-config:", err)
		var bad checkError
		if errors.As(err, &bad) {
			return exitConfig
		}
		return exitFail
	}
	return exitOK
}

// checkError is writePrivate's check refusing the new file.
type checkError struct{ error }

// writePrivate replaces path atomically with data, mode 0600, after check (may be nil) accepted
// the new file under its temporary name.
func writePrivate(path string, data []byte, check func(tmp string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".airelay-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err = tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && check != nil {
		if cerr := check(tmp.Name()); cerr != nil {
			err = checkError{cerr}
		}
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// runMigrateKeys is the package's uci-defaults step: keys written in /etc/config/airelay (older
// versions, or by hand) move to /etc/config/airelay_keys, which LuCI's ACL does not grant, so
// the browser cannot read them back. The keys file is written before the config, so a failure
// between the two leaves a key in both places, never in none. It prints no key.
func runMigrateKeys(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("migrate-keys", stderr)
	path := fs.String("config", config.DefaultPath, "UCI config file to take the keys out of")
	keysPath := fs.String("keys", config.KeysPath, "keys file to put them in (created, mode 0600)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	keys, err := config.LoadKeys(*keysPath)
	if err != nil {
		fmt.Fprintln(stderr, "airelay migrate-keys:", err)
		return exitConfig
	}
	src, err := os.ReadFile(*path)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(stderr, "airelay migrate-keys:", err)
		return exitFail
	}
	out, merged, moved, dropped := openwrt.MoveKeys(src, keys)
	if _, statErr := os.Stat(*keysPath); len(moved) > 0 || statErr != nil {
		if err := writePrivate(*keysPath, openwrt.KeysFile(merged), nil); err != nil {
			fmt.Fprintln(stderr, "airelay migrate-keys:", err)
			return exitFail
		}
	} else if err := os.Chmod(*keysPath, 0o600); err != nil {
		fmt.Fprintln(stderr, "airelay migrate-keys:", err)
		return exitFail
	}
	if len(moved)+len(dropped) == 0 {
		return exitOK
	}
	if err := writePrivate(*path, out, nil); err != nil {
		fmt.Fprintln(stderr, "airelay migrate-keys:", err)
		return exitFail
	}
	if len(moved) > 0 {
		fmt.Fprintf(stdout, "moved the API keys of %s from %s to %s\n", strings.Join(moved, ", "), *path, *keysPath)
	}
	if len(dropped) > 0 {
		fmt.Fprintf(stdout, "removed the older API keys of %s from %s: %s has newer ones\n", strings.Join(dropped, ", "), *path, *keysPath)
	}
	return exitOK
}

// runAsFlag is --run-as: the user the daemon runs as, whose right to bind low ports decides
// whether a listener below 1024 can work. The default is the init script's choice: airelay
// when the package created that user, else root.
func runAsFlag(fs *flag.FlagSet) *string {
	def := "root"
	if b, err := os.ReadFile("/etc/passwd"); err == nil && (bytes.HasPrefix(b, []byte("airelay:")) || bytes.Contains(b, []byte("\nairelay:"))) {
		def = "airelay"
	}
	return fs.String("run-as", def, "user the daemon runs as; listeners below net.ipv4.ip_unprivileged_port_start are refused unless root")
}

// unprivilegedPortStart is the lowest port a process without CAP_NET_BIND_SERVICE may bind:
// the kernel's net.ipv4.ip_unprivileged_port_start (Linux 4.11+), 1024 where it cannot be read.
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 1024
	}
	return n
}

// netFlags collects what the init script found on the router: every network of a LAN-side fw4
// zone (--network NAME, then --zone, --device and --subnet for it) and each dnsmasq instance's
// generated config (--dnsmasq-conf /var/etc/dnsmasq.conf.<instance>).
type netFlags struct {
	nets     []openwrt.NetFacts
	dnsFiles []string
}

func (f *netFlags) register(fs *flag.FlagSet) {
	fs.Func("network", "a network of a LAN-side fw4 zone (repeat; --zone, --device, --subnet that follow describe it)", func(v string) error {
		if err := config.CheckNetwork(v); err != nil {
			return fmt.Errorf("%q: %v", v, err)
		}
		f.nets = append(f.nets, openwrt.NetFacts{Name: v})
		return nil
	})
	last := func(flagName string) (*openwrt.NetFacts, error) {
		if len(f.nets) == 0 {
			return nil, fmt.Errorf("--%s before any --network", flagName)
		}
		return &f.nets[len(f.nets)-1], nil
	}
	fs.Func("zone", "the fw4 zone of the last --network", func(v string) error {
		n, err := last("zone")
		if err == nil && !config.ValidName(v) {
			err = fmt.Errorf("%q is not a zone name", v)
		}
		if err == nil {
			n.Zone = v
		}
		return err
	})
	fs.Func("device", "the device of the last --network (network_get_device)", func(v string) error {
		n, err := last("device")
		if err == nil {
			err = config.CheckDevice(v)
		}
		if err == nil {
			n.Device = v
		}
		return err
	})
	fs.Func("subnet", "a router address with its prefix length on the last --network (network_get_subnets, network_get_subnets6; repeat)", func(v string) error {
		n, err := last("subnet")
		if err != nil {
			return err
		}
		p, err := netip.ParsePrefix(v)
		if err != nil || p.Addr().Zone() != "" {
			return fmt.Errorf("%q: want address/length", v)
		}
		if p.Addr().Is4() {
			n.IPv4 = append(n.IPv4, p)
		} else if !p.Addr().IsLinkLocalUnicast() {
			n.IPv6 = append(n.IPv6, p)
		}
		return nil
	})
	fs.Func("dnsmasq-conf", "a dnsmasq instance's generated config, /var/etc/dnsmasq.conf.<instance> (repeat)", func(v string) error {
		f.dnsFiles = append(f.dnsFiles, v)
		return nil
	})
}

// dnsmasq reads the instances' generated configs. A name that is not an instance (the shell's
// unexpanded glob, dnsmasq's temporary .<pid> files) is skipped.
func (f *netFlags) dnsmasq() ([]openwrt.DnsmasqInstance, error) {
	var out []openwrt.DnsmasqInstance
	for _, p := range f.dnsFiles {
		name, ok := strings.CutPrefix(filepath.Base(p), "dnsmasq.conf.")
		if !ok || !config.ValidName(name) {
			continue
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, openwrt.ParseDnsmasqConf(name, b))
	}
	return out, nil
}

// runFW4Sync is what the init script runs after it wired the firewall, after airelay stopped,
// and what fw4 runs through airelay's script include after every firewall start or reload: it
// lists fw4's dstnat and input chains, deletes airelay's rules that the installed fragments no
// longer have (so a redirect never outlives its listener), and writes the redirect state.
func runFW4Sync(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fw4-sync", stderr)
	dstnat := fs.String("dstnat", "/var/run/airelay/fw4-dstnat.nft", "the installed dstnat fragment (missing: none)")
	input := fs.String("input", "/var/run/airelay/fw4-input.nft", "the installed input fragment (missing: none)")
	state := fs.String("state", "", "redirect state file to write (mode 0644); empty: print it")
	refused := fs.String("refused", "", "why the fragments are not installed (fw4 refused them)")
	nft := fs.String("nft", "nft", "the nft command")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	var want openwrt.Rules
	want.DstNAT, _ = os.ReadFile(*dstnat)
	want.Input, _ = os.ReadFile(*input)
	list := func() ([]openwrt.LiveRule, bool) {
		var live []openwrt.LiveRule
		loaded := true
		for _, chain := range []string{"dstnat", "input"} {
			out, err := exec.Command(*nft, "-a", "list", "chain", "inet", "fw4", chain).Output()
			if err != nil {
				loaded = false
				continue
			}
			live = append(live, openwrt.ParseLive(chain, out)...)
		}
		return live, loaded
	}
	live, loaded := list()
	cmds, st := openwrt.Sync(openwrt.SyncInput{Want: want, Live: live, FW4Loaded: loaded, Refused: *refused})
	if len(cmds) > 0 {
		c := exec.Command(*nft, "-f", "-")
		c.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
		if out, err := c.CombinedOutput(); err != nil {
			fmt.Fprintf(stderr, "airelay fw4-sync: nft could not take stale rules out: %v: %s\n", err, bytes.TrimSpace(out))
		} else {
			fmt.Fprintf(stderr, "airelay fw4-sync: took %d stale rule(s) out of the live ruleset\n", len(cmds))
		}
		live, loaded = list()
		_, st = openwrt.Sync(openwrt.SyncInput{Want: want, Live: live, FW4Loaded: loaded, Refused: *refused})
	}
	if *state == "" {
		_, _ = stdout.Write(st.Bytes())
		return exitOK
	}
	tmp := *state + ".new"
	if err := os.WriteFile(tmp, st.Bytes(), 0o644); err != nil {
		fmt.Fprintln(stderr, "airelay fw4-sync:", err)
		return exitFail
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		fmt.Fprintln(stderr, "airelay fw4-sync:", err)
		return exitFail
	}
	if err := os.Rename(tmp, *state); err != nil {
		fmt.Fprintln(stderr, "airelay fw4-sync:", err)
		return exitFail
	}
	return exitOK
}
