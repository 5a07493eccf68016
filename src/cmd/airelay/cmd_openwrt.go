package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
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
	commands["migrate-keys"] = command{"move API keys from the config to the keys file LuCI cannot read", runMigrateKeys}
}

func runDnsmasqConf(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dnsmasq-conf", stderr)
	path := configFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	t, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	_, _ = stdout.Write(openwrt.DnsmasqConf(t))
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
	data, unused := openwrt.RuntimeConfig(src, a4, a6, *dev, keys)
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
