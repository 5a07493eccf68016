package openwrt

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/airelay/airelay/src/internal/config"
)

// Every LAN-side network of the router (lan, guest, iot: each fw4 zone that does not
// masquerade) is served or left untouched. The init script gathers what the router says about
// them (NetFacts from netifd and fw4, DnsmasqInstance from each dnsmasq instance's generated
// config); Plan decides what airelay does with each, and RuntimeNetworks writes that into the
// runtime copy for the daemon, the dnsmasq file and the firewall fragments to read.

// NetFacts is one network of a LAN-side fw4 zone as the router reports it.
type NetFacts struct {
	Name   string
	Zone   string
	Device string         // network_get_device; "" when down
	IPv4   []netip.Prefix // network_get_subnets: the router's addresses with their prefix length
	IPv6   []netip.Prefix // network_get_subnets6
}

// DnsmasqInstance is one running dnsmasq instance, from its generated config
// (/var/etc/dnsmasq.conf.<section>).
type DnsmasqInstance struct {
	Name    string   // the /etc/config/dhcp section: cfg01411c, guest
	ConfDir string   // its conf-dir, where the airelay file goes
	Only    []string // interface=: the devices it answers on; empty: every device…
	Except  []string // …but these (except-interface=)
}

// Answers reports whether the instance answers DNS queries arriving on device dev.
func (d DnsmasqInstance) Answers(dev string) bool {
	if dev == "" || slices.Contains(d.Except, dev) {
		return false
	}
	return len(d.Only) == 0 || slices.Contains(d.Only, dev)
}

// ParseDnsmasqConf reads the lines of a generated dnsmasq config that say where the instance
// answers and where its conf-dir is. name is the instance (the file's suffix).
func ParseDnsmasqConf(name string, text []byte) DnsmasqInstance {
	d := DnsmasqInstance{Name: name}
	for _, l := range strings.Split(string(text), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "conf-dir":
			if d.ConfDir == "" {
				d.ConfDir, _, _ = strings.Cut(v, ",")
			}
		case "interface":
			for _, dev := range strings.Split(v, ",") {
				if dev = strings.TrimSpace(dev); dev != "" && !slices.Contains(d.Only, dev) {
					d.Only = append(d.Only, dev)
				}
			}
		case "except-interface":
			for _, dev := range strings.Split(v, ",") {
				if dev = strings.TrimSpace(dev); dev != "" && !slices.Contains(d.Except, dev) {
					d.Except = append(d.Except, dev)
				}
			}
		}
	}
	return d
}

// Plan decides, for every LAN-side network the router has and every network main's 'list
// network' names, whether airelay serves it, passes it through or leaves it untouched, and
// says why when it is not simply served. Served: the networks listed in main, or every
// LAN-side network when none is. A listed network that cannot be served (not LAN-side, no
// device) is reported and left untouched: its devices keep working as without airelay. An
// unlisted network whose dnsmasq instance also answers a served network cannot be given the
// real answers (one dnsmasq answers the AI names the same for every network it serves), so it
// is passed through: see NetPassthrough.
func Plan(t *config.Table, nets []NetFacts, dns []DnsmasqInstance) []config.Network {
	listed := t.Main.Networks
	served := func(name string) bool { return len(listed) == 0 || slices.Contains(listed, name) }
	instances := func(dev string) []string {
		var out []string
		for _, d := range dns {
			if d.Answers(dev) {
				out = append(out, d.Name)
			}
		}
		return out
	}
	var out []config.Network
	owner := map[string]int{} // device → index in out of the first network on it
	for _, f := range nets {
		n := config.Network{Name: f.Name, Zone: f.Zone, Device: f.Device, IPv4: f.IPv4, IPv6: f.IPv6, Dnsmasq: instances(f.Device)}
		if i, ok := owner[f.Device]; ok && f.Device != "" {
			// Two networks on one device (lan and an IPv6-only lan6 alias): the same devices,
			// served as one, under the first one's name, which takes the other's addresses.
			o := &out[i]
			o.IPv4, o.IPv6 = append(o.IPv4, f.IPv4...), append(o.IPv6, f.IPv6...)
			if o.Mode != config.NetServed && served(f.Name) && (t.Main.ListenDevice == "" || f.Device == t.Main.ListenDevice) {
				o.Mode, o.Reason = config.NetServed, ""
			}
			n.IPv4, n.IPv6, n.Dnsmasq = nil, nil, nil
			n.Reason = "the same device as network " + o.Name + ", which stands for both"
			out = append(out, n)
			continue
		}
		if f.Device != "" {
			owner[f.Device] = len(out)
		}
		switch {
		case !served(f.Name):
			n.Reason = "not in the network list of main"
		case t.Main.ListenDevice != "" && f.Device != t.Main.ListenDevice:
			n.Reason = "listen_device " + t.Main.ListenDevice + " of main limits airelay to that device"
		case f.Device == "":
			n.Reason = "no device (the interface is down): left untouched until it comes up"
		default:
			n.Mode = config.NetServed
		}
		out = append(out, n)
	}
	for i := range out {
		if n := &out[i]; n.Mode == config.NetServed && len(n.Dnsmasq) == 0 {
			n.Reason = "no dnsmasq instance answers DNS on " + n.Device + ": its devices' AI names are not sent to the router (the gateway still serves them)"
		}
	}
	// An unlisted network sharing a dnsmasq instance with a served one. (With a listen_device
	// written by hand the daemon listens on that device alone: the old single-LAN setup.)
	for i := range out {
		if t.Main.ListenDevice != "" {
			break
		}
		n := &out[i]
		if n.Mode != config.NetUntouched || n.Device == "" || owner[n.Device] != i {
			continue // served, down, or another network's alias
		}
		for _, inst := range n.Dnsmasq {
			if peer := servedBy(out, inst); peer != "" {
				n.Mode = config.NetPassthrough
				n.Reason = fmt.Sprintf("not in the network list of main, but dnsmasq instance %s also answers served network %s, so its AI names resolve to the router; the relay passes its HTTPS through with no rule and no count. Give it a dnsmasq instance of its own to leave it untouched", inst, peer)
				break
			}
		}
	}
	for _, name := range listed {
		if !slices.ContainsFunc(nets, func(f NetFacts) bool { return f.Name == name }) {
			out = append(out, config.Network{Name: name, Reason: "in the network list of main, but not a LAN-side network: no fw4 zone without masquerading holds it"})
		}
	}
	return out
}

// servedBy names a served network that dnsmasq instance inst answers, or "".
func servedBy(nets []config.Network, inst string) string {
	for _, n := range nets {
		if n.Mode == config.NetServed && slices.Contains(n.Dnsmasq, inst) {
			return n.Name
		}
	}
	return ""
}

// Primary is the network whose addresses airelay's own DNS answers with (lan_ipv4, lan_ipv6 of
// the runtime copy) when dnsmasq asks it: 'lan' when served, else the first served network.
// Every served network reaches those addresses through its redirect; dnsmasq answers each
// network with its own address itself (interface-name, see DnsmasqConf). nil: none is served.
func Primary(nets []config.Network) *config.Network {
	var first *config.Network
	for i := range nets {
		n := &nets[i]
		if n.Mode != config.NetServed {
			continue
		}
		if n.Name == "lan" {
			return n
		}
		if first == nil {
			first = n
		}
	}
	return first
}

const runtimeHeader = "# written by airelay runtime-config: the router's LAN-side networks as found now\n"

// RuntimeNetworks returns the UCI text src without any runtime_network section it had, and
// with one (anonymous) for each of nets appended.
func RuntimeNetworks(src []byte, nets []config.Network) []byte {
	var b bytes.Buffer
	skip := false
	for _, l := range strings.SplitAfter(string(src), "\n") {
		if l == runtimeHeader {
			// with the blank line before it
			if bytes.HasSuffix(b.Bytes(), []byte("\n\n")) {
				b.Truncate(b.Len() - 1)
			}
			continue
		}
		toks := uciTokens(l)
		if len(toks) > 0 && toks[0] == "config" {
			skip = len(toks) >= 2 && toks[1] == "runtime_network"
		}
		if !skip {
			b.WriteString(l)
		}
	}
	if len(nets) == 0 {
		return b.Bytes()
	}
	if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("\n" + runtimeHeader)
	for i, n := range nets {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("config runtime_network\n\toption network " + uciQuote(n.Name) + "\n")
		if n.Device != "" {
			b.WriteString("\toption device " + uciQuote(n.Device) + "\n")
		}
		if n.Zone != "" {
			b.WriteString("\toption zone " + uciQuote(n.Zone) + "\n")
		}
		for _, p := range n.IPv4 {
			b.WriteString("\tlist ipv4 '" + p.String() + "'\n")
		}
		for _, p := range n.IPv6 {
			b.WriteString("\tlist ipv6 '" + p.String() + "'\n")
		}
		b.WriteString("\toption mode '" + n.Mode.String() + "'\n")
		for _, d := range n.Dnsmasq {
			b.WriteString("\tlist dnsmasq " + uciQuote(d) + "\n")
		}
		if n.Reason != "" {
			b.WriteString("\toption reason " + uciQuote(n.Reason) + "\n")
		}
	}
	return b.Bytes()
}

// RuntimeConfigNetworks is RuntimeConfig for a router whose networks the init script reported:
// the plan for every network goes into the copy as runtime_network sections, lan_ipv4 and
// lan_ipv6 come from the primary network (a value the user wrote wins), and listen_device is
// not filled in, because the daemon listens on every served network's device. t is src
// loaded.
func RuntimeConfigNetworks(src []byte, t *config.Table, nets []NetFacts, dns []DnsmasqInstance, keys map[string]string) (out []byte, unused []string) {
	plan := Plan(t, nets, dns)
	var a4, a6 netip.Addr
	if p := Primary(plan); p != nil {
		if len(p.IPv4) > 0 {
			a4 = p.IPv4[0].Addr()
		}
		if len(p.IPv6) > 0 {
			a6 = p.IPv6[0].Addr()
		}
	}
	out, unused = RuntimeConfig(src, a4, a6, "", keys)
	return RuntimeNetworks(out, plan), unused
}
