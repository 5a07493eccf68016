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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/openwrt"
	"github.com/airelay/airelay/src/internal/schedule"
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
	statePath, runAs := configStateFlag(fs), runAsFlag(fs)
	inst := fs.String("instance", "", "dnsmasq instance (section of /etc/config/dhcp) the file is for")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	t, err := loadServed(*path, *statePath, *runAs)
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
	statePath, runAs := configStateFlag(fs), runAsFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *chain != "dstnat" && *chain != "input" {
		fmt.Fprintln(stderr, "airelay firewall: --chain must be dstnat or input")
		return exitConfig
	}
	t, err := loadServed(*path, *statePath, *runAs)
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

// Exit codes of runtime-config beyond the common ones.
const exitFallback = 3 // the config does not pass; the copy is the last valid one, or the failing one read strictly

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
	lastValid := fs.String("last-valid", "", "file keeping the last config that passed, without its keys (/etc/airelay/last-valid); with --state")
	statePath := fs.String("state", "", "file saying which config the copy is and why, for run, dnsmasq-conf and firewall --config-state (/var/run/airelay/config-state). With it, a config that does not pass still leaves a copy to serve: the last valid one, else the failing one read strictly (exit 3, the reason on stdout)")
	reload := fs.Bool("reload", false, "the daemon serves the copy in --out: a config that does not pass leaves it as it is (exit 2, the reason on stdout), unless it is a fail-closed copy")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "airelay runtime-config: --out is required")
		return exitConfig
	}
	var keys map[string]string
	if *keysPath != "" {
		var err error
		if keys, err = config.LoadKeys(*keysPath); err != nil {
			fmt.Fprintln(stderr, "airelay runtime-config:", err)
			if *statePath == "" {
				return exitConfig
			}
			if _, statErr := os.Stat(*out); *reload && statErr == nil {
				// a reload: the copy in force, with its keys, keeps serving; status says why
				st, _ := openwrt.ReadState(*statePath)
				if st.State == "" {
					st.State = openwrt.StateCurrent
				}
				st.Errors, st.Refused = err.Error(), true
				if werr := openwrt.WriteState(*statePath, st); werr != nil {
					fmt.Fprintln(stderr, "airelay runtime-config:", werr)
					return exitFail
				}
				fmt.Fprintln(stdout, "reload refused, the config in force keeps serving: "+err.Error())
				return exitConfig
			}
			// at start, serve without the keys rather than not at all
			fmt.Fprintln(stderr, "warning: starting without the API keys: the gateway puts no key on requests")
		}
	}
	portStart := unprivilegedPortStart()
	ports := func(t *config.Table) []error { return openwrt.PrivilegedPorts(t, *runAs, portStart) }
	var dns []openwrt.DnsmasqInstance
	if len(facts.nets) > 0 {
		var err error
		if dns, err = facts.dnsmasq(); err != nil {
			fmt.Fprintln(stderr, "airelay runtime-config:", err)
			return exitFail
		}
	}
	// fill writes the copy of src (read as t) with the LAN and the keys, after check accepted
	// it. With the router's networks the daemon listens on each served one's device, so no
	// single listen_device; lan_ipv4/lan_ipv6 are the primary network's.
	fill := func(src []byte, t *config.Table, check func(tmp string) error) error {
		var data []byte
		var unused []string
		if len(facts.nets) > 0 && t != nil {
			data, unused = openwrt.RuntimeConfigNetworks(src, t, facts.nets, dns, keys)
		} else {
			a4, _ := netip.ParseAddr(*lan4) // an empty or bad address is the zero Addr: not filled in
			a6, _ := netip.ParseAddr(*lan6)
			data, unused = openwrt.RuntimeConfig(src, a4, a6, *dev, keys)
		}
		for _, p := range unused {
			fmt.Fprintf(stderr, "warning: %s: section '%s': no provider section has that name; its key is not used\n", *keysPath, p)
		}
		return writePrivate(*out, data, check)
	}
	failed := func(err error) int {
		fmt.Fprintln(stderr, "airelay runtime-config:", err)
		var bad checkError
		if errors.As(err, &bad) {
			return exitConfig
		}
		return exitFail
	}

	var t *config.Table
	src, err := os.ReadFile(*path)
	if err == nil {
		if t, err = config.Load(*path); err == nil {
			if errs := ports(t); len(errs) > 0 {
				err = errors.Join(errs...)
			}
		}
	}
	if err == nil {
		err = fill(src, t, func(tmp string) error {
			if _, err := config.Load(tmp); err != nil {
				return fmt.Errorf("the filled-in copy of %s does not load: %w", *path, err)
			}
			return nil
		})
		if err != nil {
			return failed(err)
		}
		if *lastValid != "" {
			if err := openwrt.SaveLastValid(*lastValid, src); err != nil {
				fmt.Fprintf(stderr, "warning: the last valid config is not kept: %v\n", err)
			}
		}
		if *statePath != "" {
			if err := openwrt.WriteState(*statePath, openwrt.State{State: openwrt.StateCurrent}); err != nil {
				return failed(err)
			}
		}
		return exitOK
	}

	// The config does not pass.
	fmt.Fprintln(stderr, err) // the user's file, named as they know it
	if *statePath == "" {
		return exitConfig
	}
	problems := oneLine(err)
	var strict *config.Table // the failing config read strictly
	if src != nil {
		// every problem at once, the listeners the daemon's user may not bind among them
		var all error
		if strict, all = config.FailClosed(*path, src, ports); all != nil {
			problems = oneLine(all)
		}
	}
	prev, _ := openwrt.ReadState(*statePath)
	if _, statErr := os.Stat(*out); *reload && statErr == nil && prev.State != openwrt.StateFailClosed {
		// A reload: what serves keeps serving. The copy is the config that last passed.
		when := modTime(*lastValid, *out)
		st := openwrt.State{State: openwrt.StateLastValid, Errors: problems, Refused: true,
			Message: "serving the last valid config from " + when + "; " + problems}
		if err := openwrt.WriteState(*statePath, st); err != nil {
			return failed(err)
		}
		fmt.Fprintln(stdout, "reload refused, "+st.Message)
		return exitConfig
	}
	// Start or boot: the last valid config, else the failing one read strictly.
	if *lastValid != "" {
		if lv, rerr := os.ReadFile(*lastValid); rerr == nil {
			lvt, lvErr := usable(*lastValid, lv, ports)
			if lvErr == nil {
				lvErr = fill(lv, lvt, func(tmp string) error {
					_, err := usable(tmp, nil, ports)
					return err
				})
			}
			if lvErr == nil {
				st := openwrt.State{State: openwrt.StateLastValid, Errors: problems,
					Message: "serving the last valid config from " + modTime(*lastValid, "") + "; " + problems}
				if err := openwrt.WriteState(*statePath, st); err != nil {
					return failed(err)
				}
				fmt.Fprintln(stdout, st.Message)
				return exitFallback
			}
			fmt.Fprintf(stderr, "the last valid config %s does not pass either: %v\n", *lastValid, lvErr)
		}
	}
	if src == nil {
		return exitConfig // nothing to read strictly
	}
	err = fill(src, strict, func(tmp string) error {
		if t, _ := config.LoadFailClosed(tmp, ports); t == nil {
			return fmt.Errorf("the filled-in copy of %s does not read", *path)
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	st := openwrt.State{State: openwrt.StateFailClosed, Errors: problems,
		Message: "no valid config to serve, so " + *path + " is read strictly: the devices and providers its problems concern are refused, told where the problem is; " + problems}
	if err := openwrt.WriteState(*statePath, st); err != nil {
		return failed(err)
	}
	fmt.Fprintln(stdout, st.Message)
	return exitFallback
}

// usable reads the config at path (text data, or read from path when nil) and reports why it
// cannot serve: it does not load, or the daemon's user may not bind a listener.
func usable(path string, data []byte, ports func(*config.Table) []error) (*config.Table, error) {
	var t *config.Table
	var err error
	if data == nil {
		t, err = config.Load(path)
	} else {
		t, err = config.LoadBytes(path, data)
	}
	if err != nil {
		return nil, err
	}
	return t, errors.Join(ports(t)...)
}

// modTime is the time the file at path (else at alt) was last written, in the router's zone,
// as status shows it.
func modTime(path, alt string) string {
	for _, p := range []string{path, alt} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			return fi.ModTime().In(schedule.Local()).Format("2006-01-02 15:04 MST")
		}
	}
	return "an unknown time"
}

// oneLine joins a config's problems into one line (status, logread, the console).
func oneLine(err error) string {
	return strings.Join(strings.Split(strings.TrimSpace(err.Error()), "\n"), "; ")
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
// the browser cannot read them back. No key is ever dropped: when the keys file already holds
// another key for a provider, that one stays in force and the one from the config is saved in
// the backup file beside it (<keys>.saved, 0600, appended to). The files are written backup
// first, keys file next, config last, so a failure between two leaves a key in two places,
// never in none. It prints no key.
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
	m := openwrt.MoveKeys(src, keys)
	savedPath := *keysPath + ".saved"
	if len(m.Other) > 0 {
		old, err := os.ReadFile(savedPath)
		if err != nil && !os.IsNotExist(err) {
			fmt.Fprintln(stderr, "airelay migrate-keys:", err)
			return exitFail
		}
		data := append(old, openwrt.SavedKeys(m.Other, *path, *keysPath, time.Now())...)
		if err := openwrt.WriteFileAtomic(savedPath, data, 0o600); err != nil {
			fmt.Fprintln(stderr, "airelay migrate-keys:", err)
			return exitFail
		}
	}
	if _, statErr := os.Stat(*keysPath); len(m.Moved) > 0 || statErr != nil {
		if err := writePrivate(*keysPath, openwrt.KeysFile(m.Keys), nil); err != nil {
			fmt.Fprintln(stderr, "airelay migrate-keys:", err)
			return exitFail
		}
	} else if err := os.Chmod(*keysPath, 0o600); err != nil {
		fmt.Fprintln(stderr, "airelay migrate-keys:", err)
		return exitFail
	}
	if len(m.Moved)+len(m.Same)+len(m.Other) == 0 {
		return exitOK
	}
	if err := writePrivate(*path, m.Config, nil); err != nil {
		fmt.Fprintln(stderr, "airelay migrate-keys:", err)
		return exitFail
	}
	if len(m.Moved) > 0 {
		fmt.Fprintf(stdout, "moved the API keys of %s from %s to %s\n", strings.Join(m.Moved, ", "), *path, *keysPath)
	}
	if len(m.Same) > 0 {
		fmt.Fprintf(stdout, "removed the API keys of %s from %s: %s holds the same ones\n", strings.Join(m.Same, ", "), *path, *keysPath)
	}
	if len(m.Other) > 0 {
		names := make([]string, 0, len(m.Other))
		for p := range m.Other {
			names = append(names, p)
		}
		slices.Sort(names)
		fmt.Fprintf(stdout, "kept the API keys of %s in %s; the other keys %s held for them are saved in %s (mode 0600), not in use\n",
			strings.Join(names, ", "), *keysPath, *path, savedPath)
	}
	return exitOK
}

// configStateFlag is --config-state: the state file runtime-config --state wrote beside the
// copy named by --config. The daemon, dnsmasq-conf and firewall read the copy as it says (a
// fail-closed copy strictly), so the three agree on the listeners, names and rules.
func configStateFlag(fs *flag.FlagSet) *string {
	return fs.String("config-state", "", "state file written by runtime-config --state (/var/run/airelay/config-state): read a fail-closed copy strictly, and show in status which config serves and why")
}

// loadServed reads the config at path as the state file at statePath (none: "") says it is
// meant: a fail-closed copy strictly (config.LoadFailClosed, with the listeners the daemon's
// user may not bind taking their defaults), any other as loadConfig does. The state goes
// with the table, for status.
func loadServed(path, statePath, runAs string) (*config.Table, error) {
	if statePath == "" {
		return loadConfig(path)
	}
	st, err := openwrt.ReadState(statePath)
	if err != nil {
		return nil, err
	}
	var t *config.Table
	if st.State == openwrt.StateFailClosed {
		start := unprivilegedPortStart()
		t, err = config.LoadFailClosed(path, func(t *config.Table) []error { return openwrt.PrivilegedPorts(t, runAs, start) })
		if t == nil {
			return nil, err
		}
	} else if t, err = loadConfig(path); err != nil {
		return nil, err
	}
	if st.State != openwrt.StateCurrent {
		t.Fallback = config.Fallback{State: st.State, Message: st.Message}
	}
	if st.Refused {
		t.Fallback.Refused = st.Errors
	}
	return t, nil
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
