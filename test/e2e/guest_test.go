package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// --- 13. every network of the home: a guest network, and names below an intercepted host ---

// The guest network, as OpenWrt's guest Wi-Fi guides set it up: its own bridge and subnet, and
// a fw4 zone (guest, in fw4Ruleset) whose input is REJECT but DNS and DHCP, forwarding to wan.
const (
	routerGuest = "192.168.2.1"
	guestAddr   = "192.168.2.100"
	// link-local addresses on br-guest and the guest phone's eth0
	routerGuestLL  = "fe80::2:1"
	routerGuestMAC = "02:00:00:00:02:01"
	guestLL        = "fe80::2:100"
	guestMAC       = "02:00:00:00:02:00"
	// OpenAI's EU data-residency endpoint, a name below the intercepted api.openai.com. In
	// 198.18.0.0/15 like example.org: the router's dnsmasq (rebind protection on) keeps it.
	euOpenAI = "198.18.0.21"
)

// guestRules is README's guest section (relay only, no gateway, a day's cap), as `uci
// add`/`uci set` would append it.
const guestRules = `
config client 'guests'
	option name 'Guest Wi-Fi'
	list network 'guest'
	option gateway '0'
	option daily_bytes '50M'
`

// netStatusDoc is the part of /status about networks: the router's LAN-side networks, and the
// network each device's traffic arrived on.
type netStatusDoc struct {
	Config struct {
		Generation uint64 `json:"generation"`
	} `json:"config"`
	Networks []struct {
		Name, Device, Mode, Reason string
		Served                     bool
	} `json:"networks"`
	Devices []struct {
		Addr, Network, Client string
		counters
	} `json:"devices"`
}

func (s *sc) netStatus() netStatusDoc {
	s.t.Helper()
	r := s.h.airelay("status", "--json", "--addr", "127.0.0.1:9099")
	var st netStatusDoc
	if !r.ok() {
		s.fatalf("airelay status: %s", r)
	}
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		s.fatalf("airelay status: %v\n%s", err, r.out)
	}
	return st
}

// network returns the mode and reason status gives network name ("" when it is not listed).
func (st netStatusDoc) network(name string) (mode, reason string) {
	for _, n := range st.Networks {
		if n.Name == name {
			return n.Mode, n.Reason
		}
	}
	return "", ""
}

func guestScenario(s *sc) {
	h := s.h
	goodConf, _ := os.ReadFile(h.path(confPath))
	goodDnsmasq, _ := os.ReadFile(h.path(dnsmasqConf))
	guestDnsmasq := h.path("var/etc/dnsmasq.conf.guest")
	guest := fmt.Sprintf("%s%d-guest", nsPrefix, os.Getpid())
	defer func() {
		// back to lan alone: the guest network, its dnsmasq instance and rules gone
		removeNetns(guest)
		runIn(h.router, 10*time.Second, nil, "ip", "link", "del", "br-guest")
		os.Remove(guestDnsmasq)
		if p := h.proc("dnsmasq-guest"); p != nil {
			p.stop(5 * time.Second)
		}
		os.WriteFile(h.path(dnsmasqConf), goodDnsmasq, 0o644)
		os.WriteFile(h.path(confPath), goodConf, 0o600)
		h.restartDnsmasq()
		h.initReload()
	}()
	reload := func(extra string) {
		s.t.Helper()
		os.WriteFile(h.path(confPath), append(append([]byte(nil), goodConf...), extra...), 0o600)
		gen := s.netStatus().Config.Generation
		if err := h.initReload(); err != nil {
			s.fatalf("reload: %v", err)
		}
		for deadline := time.Now().Add(10 * time.Second); s.netStatus().Config.Generation == gen; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				s.fatalf("the daemon did not reload")
			}
		}
	}

	s.part("13a-below-host", func(p *sc) { belowHost(p) })

	// The guest network comes up: a bridge in the router, a phone on it.
	h.etc(guest, map[string]string{"resolv.conf": "nameserver " + routerGuest + "\n"}, true)
	h.ip("netns", "add", guest)
	h.ip("-n", guest, "link", "set", "lo", "up")
	h.ip("-n", h.router, "link", "add", "br-guest", "type", "bridge")
	h.ip("-n", h.router, "addr", "add", routerGuest+"/24", "dev", "br-guest")
	h.ip("-n", h.router, "link", "set", "br-guest", "up")
	h.ip("-n", h.router, "link", "add", "guest1", "type", "veth", "peer", "name", "eth0", "netns", guest)
	h.ip("-n", h.router, "link", "set", "guest1", "master", "br-guest")
	h.ip("-n", h.router, "link", "set", "guest1", "up")
	h.ip("-n", guest, "link", "set", "eth0", "address", guestMAC)
	h.ip("-n", guest, "addr", "add", guestAddr+"/24", "dev", "eth0")
	h.ip("-n", guest, "link", "set", "eth0", "up")
	h.ip("-n", guest, "route", "add", "default", "via", routerGuest)

	s.part("13b-served", func(p *sc) {
		// One dnsmasq answers both networks (OpenWrt's default instance with the guest
		// interface added); no 'list network' in main: every LAN-side network is served.
		os.WriteFile(h.path(dnsmasqConf), []byte(strings.Replace(string(goodDnsmasq), "listen-address="+routerLAN+",", "listen-address="+routerLAN+","+routerGuest+",", 1)), 0o644)
		h.restartDnsmasq()
		reload(guestRules)
		guestServed(p, guest)
	})

	s.part("13c-untouched", func(p *sc) {
		// guest has a dnsmasq instance of its own (/etc/config/dhcp: 'option interface guest'
		// and 'notinterface loopback' on it, 'notinterface guest' on the default one) and is
		// not in main's network list.
		conf := strings.Replace(string(goodDnsmasq), "bind-interfaces\n", "bind-interfaces\nexcept-interface=br-guest\n", 1)
		os.WriteFile(h.path(dnsmasqConf), []byte(conf), 0o644)
		os.MkdirAll(h.path("tmp/dnsmasq.guest.d"), 0o755)
		// No stop-dns-rebind here: the test nets stand in for the providers' public addresses,
		// and dnsmasq counts them as private.
		os.WriteFile(guestDnsmasq, []byte(`domain-needed
localise-queries
local=/lan/
domain=lan
expand-hosts
no-hosts
addn-hosts=`+h.path("tmp/hosts")+`
resolv-file=`+h.path("tmp/resolv.conf.d/resolv.conf.auto")+`
conf-dir=`+h.path("tmp/dnsmasq.guest.d")+`
interface=br-guest
except-interface=lo
listen-address=`+routerGuest+`
bind-interfaces
user=root
log-queries
`), 0o644)
		h.restartDnsmasq()
		if err := h.waitDNS(h.router, routerGuest, "openwrt.lan", routerLAN); err != nil {
			p.fatalf("the guest network's dnsmasq: %v\n%s", err, h.proc("dnsmasq-guest").out.String())
		}
		reload(guestRules + "\nconfig airelay 'main'\n\tlist network 'lan'\n")
		guestUntouched(p, guest)
	})
}

// 11a: eu.api.openai.com, below the intercepted api.openai.com, resolves and connects as
// without airelay (issue 23.7); api.openai.com itself is still intercepted.
func belowHost(s *sc) {
	h := s.h
	const eu = "eu.api.openai.com"
	// the ISP's DNS learns the name; a server answers HTTPS for it
	ispConf := filepath.Join(h.dir, "wan", "dnsmasq.conf")
	b, _ := os.ReadFile(ispConf)
	if !strings.Contains(string(b), eu) {
		os.WriteFile(ispConf, append(b, "host-record="+eu+","+euOpenAI+"\n"...), 0o644)
		h.proc("isp-dns").stop(5 * time.Second)
		h.start("isp-dns", h.wan, nil, "dnsmasq", "--keep-in-foreground", "--conf-file="+ispConf,
			"--pid-file=", "--user=root", "--log-facility=-")
		h.ip("-n", h.wan, "addr", "add", euOpenAI+"/32", "dev", "lo")
		site, err := serveHTTPS(h.wan, euOpenAI+":443", h.leaf(eu), "OpenAI EU endpoint")
		if err != nil {
			s.fatalf("%s: %v", eu, err)
		}
		h.addServer(site)
		if err := h.waitDNS(h.wan, ispDNS, eu, euOpenAI); err != nil {
			s.fatalf("ISP DNS: %v", err)
		}
	}
	d := s.dig(h.lan, eu, "A")
	if d.rcode != "NOERROR" || len(d.answers) != 1 || d.answers[0] != "A "+euOpenAI || d.server != routerLAN {
		s.fatalf("dig %s from lan (server %s): %s %v, want its real address %s\n%s", eu, d.server, d.rcode, d.answers, euOpenAI, d.result)
	}
	if d := s.dig(h.lan, openai.host, "A"); len(d.answers) != 1 || d.answers[0] != "A "+routerLAN {
		s.fatalf("dig %s from lan: %s %v, want the router", openai.host, d.rcode, d.answers)
	}
	before := device(s.status(), phoneAddr).Conns
	c := s.curl(h.lan, "https://"+eu+"/")
	if !c.ok() || c.status != 200 || c.peer != euOpenAI || !strings.Contains(c.body, "OpenAI EU endpoint") {
		s.fatalf("curl https://%s/ from lan: %d peer %s %s", eu, c.status, c.peer, c.result)
	}
	if after := device(s.status(), phoneAddr).Conns; after != before {
		s.errorf("airelay counted %d relay connection(s) for the phone's request to %s", after-before, eu)
	}
	s.prove("dig %s from lan → %s (the real answer, through dnsmasq) while %s → %s; https://%s/ 200, connected to %s directly, not relayed", eu, euOpenAI, openai.host, routerLAN, eu, c.peer)
}

// 11b: the guest network served: intercepted with its own address, relayed, and the 'guests'
// rule (network 'guest', gateway '0') applies; lan keeps working.
func guestServed(s *sc, guest string) {
	h := s.h
	st := s.netStatus()
	if mode, why := st.network("guest"); mode != "served" {
		s.fatalf("status: network guest is %q (%s), want served; networks %+v", mode, why, st.Networks)
	}
	if mode, _ := st.network("lan"); mode != "served" {
		s.fatalf("status: network lan is %q, want served", mode)
	}
	for _, ns := range []struct{ ns, want string }{{guest, routerGuest}, {h.lan, routerLAN}} {
		d := s.dig(ns.ns, openai.host, "A")
		if d.rcode != "NOERROR" || len(d.answers) != 1 || d.answers[0] != "A "+ns.want || d.server != ns.want {
			s.fatalf("dig %s from %s (server %s): %s %v, want the router's %s", openai.host, ns.ns, d.server, d.rcode, d.answers, ns.want)
		}
	}
	s.prove("status: lan and guest served; dig %s from guest → %s, from lan → %s (each its own network's router address, one dnsmasq)", openai.host, routerGuest, routerLAN)

	c := s.curl(guest, "-H", "Authorization: Bearer "+openai.key, "https://"+openai.host+"/v1/models")
	if !c.ok() || c.status != 200 || c.peer != routerGuest {
		s.fatalf("curl https://%s/v1/models from guest: %d peer %s %s", openai.host, c.status, c.peer, c.result)
	}
	g := s.curl(guest, "http://"+routerGuest+":8080/openai/v1/models")
	if g.status != 403 || !strings.Contains(g.body, `"code":"gateway_not_allowed"`) {
		s.fatalf("gateway from guest: %d %s", g.status, g.result)
	}
	// The same phone from its link-local address to the router's on br-guest: fe80:: is the
	// same on every link, so only the interface it came in on tells the network, and the
	// 'guests' rule must apply as it does to its other addresses.
	// (Neighbours set by hand: the guest zone rejects ICMPv6, neighbour discovery included.)
	h.ip("-n", h.router, "addr", "add", routerGuestLL+"/64", "dev", "br-guest", "nodad")
	h.ip("-n", guest, "addr", "add", guestLL+"/64", "dev", "eth0", "nodad")
	h.ip("-n", h.router, "link", "set", "br-guest", "address", routerGuestMAC)
	h.ip("-n", guest, "neigh", "replace", routerGuestLL, "lladdr", routerGuestMAC, "dev", "eth0", "nud", "permanent")
	h.ip("-n", h.router, "neigh", "replace", guestLL, "lladdr", guestMAC, "dev", "br-guest", "nud", "permanent")
	gl := s.curl(guest, "--interface", "eth0", "http://["+routerGuestLL+"%25eth0]:8080/openai/v1/models")
	if gl.status != 403 || !strings.Contains(gl.body, `"code":"gateway_not_allowed"`) {
		s.fatalf("gateway from guest's link-local address %s: %d %s", guestLL, gl.status, gl.result)
	}
	var dev, ll *struct {
		Addr, Network, Client string
		counters
	}
	st = s.netStatus()
	for i := range st.Devices {
		switch d := &st.Devices[i]; {
		case d.Addr == guestAddr:
			dev = d
		case strings.HasPrefix(d.Addr, guestLL):
			ll = d
		}
	}
	if dev == nil || dev.Network != "guest" || dev.Client != "guests" || dev.Conns < 1 || dev.Denied < 1 {
		s.fatalf("status for %s: %+v, want network guest, client guests, a relayed connection and a denial", guestAddr, dev)
	}
	if ll == nil || ll.Network != "guest" || ll.Client != "guests" || ll.Denied < 1 {
		s.fatalf("status for %s: %+v, want network guest, client guests and a denial", guestLL, ll)
	}
	s.prove("from guest: https://%s/v1/models 200 through the relay (connected to %s); gateway 403 gateway_not_allowed (client 'guests': network 'guest', gateway '0'), from its link-local address %s too; status: %s on network guest, client guests, %d connection(s), %d denied", openai.host, c.peer, guestLL, guestAddr, dev.Conns, dev.Denied)

	if !s.relayWorks() {
		s.fatalf("the phone on lan can no longer use the relay")
	}
	if g := s.curl(h.lan, gateway+"/openai/v1/models"); g.status != 200 {
		s.fatalf("gateway from lan: %d %s", g.status, g.result)
	}
	s.prove("lan: relay and gateway still work")
}

// 11c: the guest network not served: real DNS answers, HTTPS straight to the provider, nothing
// of airelay's on its device.
func guestUntouched(s *sc, guest string) {
	h := s.h
	st := s.netStatus()
	if mode, why := st.network("guest"); mode != "untouched" || !strings.Contains(why, "not in the network list") {
		s.fatalf("status: network guest is %q (%s), want untouched; networks %+v", mode, why, st.Networks)
	}
	if _, err := os.Stat(h.path("tmp/dnsmasq.guest.d/airelay.conf")); err == nil {
		s.fatalf("the guest network's dnsmasq instance has an airelay file")
	}
	for _, chain := range []string{"dstnat", "input"} {
		b, _ := os.ReadFile(h.path(runDir + "/fw4-" + chain + ".nft"))
		if strings.Contains(string(b), "br-guest") || !strings.Contains(string(b), "br-lan") {
			s.fatalf("fw4 %s fragment, want br-lan's rules only:\n%s", chain, b)
		}
	}
	s.prove("status: guest untouched (not in main's network list); its dnsmasq instance has no airelay file and the fw4 fragments only br-lan's rules")

	d := s.dig(guest, openai.host, "A")
	if d.rcode != "NOERROR" || len(d.answers) != 1 || d.answers[0] != "A "+openai.addr || d.server != routerGuest {
		s.fatalf("dig %s from guest (server %s): %s %v, want the real %s", openai.host, d.server, d.rcode, d.answers, openai.addr)
	}
	before := guestConns(st)
	c := s.curl(guest, "-H", "Authorization: Bearer "+openai.key, "https://"+openai.host+"/v1/models")
	if !c.ok() || c.status != 200 || c.peer != openai.addr {
		s.fatalf("curl https://%s/v1/models from guest: %d peer %s %s", openai.host, c.status, c.peer, c.result)
	}
	if after := guestConns(s.netStatus()); after != before {
		s.errorf("airelay counted %d connection(s) of the untouched guest", after-before)
	}
	// nothing of airelay's is open to it: fw4's guest zone rejects the router's ports
	for _, port := range []string{"443", "8443", "8080"} {
		if c, err := dialIn(guest, "tcp", routerGuest+":"+port, 2*time.Second); err == nil {
			c.Close()
			s.fatalf("from guest, %s:%s accepted a connection", routerGuest, port)
		}
	}
	s.prove("dig %s from guest → %s (the provider's real address); https://%s/v1/models 200 connected to %s directly, not counted; %s:443, :8443, :8080 refused by the guest zone", openai.host, openai.addr, openai.host, c.peer, routerGuest)

	if !s.relayWorks() {
		s.fatalf("the phone on lan can no longer use the relay")
	}
	s.prove("lan: relay still works")
}

func guestConns(st netStatusDoc) uint64 {
	for _, d := range st.Devices {
		if d.Addr == guestAddr {
			return d.Conns
		}
	}
	return 0
}
