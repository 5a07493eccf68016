package e2e

import "strings"

// --- 12. an address changing hands ---

// handoverScenario is issue 19's point 4: the phone (allowed) and the kid (denied by MAC) trade
// addresses, as when DHCP gives an address that one device just used to another. Each
// device's first connection from its new address, seconds after the other device's last one
// from it, must be decided on its own MAC: the kid is refused on the phone's old address and
// the phone served on the kid's, through the relay and the gateway; then the same back.
func handoverScenario(s *sc) {
	h := s.h
	type dev struct{ ns, name, mac, addr string }
	phone := &dev{h.lan, "phone", phoneMAC, phoneAddr}
	kid := &dev{h.kid, "kid", kidMAC, kidAddr}
	// swap trades the two devices' addresses the way a device takes a new lease: the old
	// address goes, the new one comes with the default route, and the device's own neighbour
	// cache starts empty, so its first packet to the router is an ARP request from the new
	// address. Both let go before either takes the other's.
	swap := func() {
		for _, d := range []*dev{phone, kid} {
			h.ip("-n", d.ns, "addr", "del", d.addr+"/24", "dev", "eth0")
		}
		phone.addr, kid.addr = kid.addr, phone.addr
		for _, d := range []*dev{phone, kid} {
			h.ip("-n", d.ns, "addr", "add", d.addr+"/24", "dev", "eth0")
			h.ip("-n", d.ns, "route", "replace", "default", "via", routerLAN)
			h.ip("-n", d.ns, "neigh", "flush", "dev", "eth0")
		}
	}
	defer func() {
		if phone.addr != phoneAddr {
			swap() // the scenarios after this one expect the devices where they were
		}
	}()

	// check sends each device's requests from where it is now: the kid refused by the relay
	// and the gateway, the phone served by both (200); and status shows each address with the
	// MAC and client of the device that holds it. It reports every miss, not only the first.
	check := func(when string) bool {
		c := s.curl(kid.ns, "--max-time", "5", "https://"+openai.host+"/v1/models")
		if c.ok() || !strings.Contains(strings.ToLower(c.errOut), "access denied") {
			s.errorf("%s: the kid from %s reached %s through the relay, or failed otherwise: %s", when, kid.addr, openai.host, c.result)
		}
		if g := s.curl(kid.ns, gateway+"/openai/v1/models"); g.status != 403 || !strings.Contains(g.body, "access_denied") {
			s.errorf("%s: the kid from %s through the gateway: %d %s", when, kid.addr, g.status, g.result)
		}
		c = s.curl(phone.ns, "--max-time", "5", "-H", "Authorization: Bearer "+openai.key, "https://"+openai.host+"/v1/models")
		if !c.ok() || c.status != 200 {
			s.errorf("%s: the phone from %s through the relay: %s", when, phone.addr, c.result)
		}
		if g := s.curl(phone.ns, gateway+"/openai/v1/models"); g.status != 200 {
			s.errorf("%s: the phone from %s through the gateway: %d %s", when, phone.addr, g.status, g.result)
		}
		st := s.status()
		for _, d := range []struct {
			*dev
			client string
		}{{phone, "phone"}, {kid, "kids"}} {
			if row := device(st, d.addr); row.MAC != d.mac || row.Client != d.client {
				s.errorf("%s: status for %s: mac %q client %q, want %s (%s)", when, d.addr, row.MAC, row.Client, d.mac, d.client)
			}
		}
		return !s.t.Failed()
	}

	if !check("before") {
		return
	}
	s.prove("phone on %s served, kid on %s refused (relay and gateway)", phone.addr, kid.addr)
	swap()
	if !check("addresses swapped") {
		return
	}
	s.prove("addresses swapped, each device's first connection right after: kid on %s (the phone's a moment ago) refused with TLS alert access_denied and gateway 403; phone on %s (the kid's) served; status names each address by its new MAC", kid.addr, phone.addr)
	swap()
	if !check("swapped back") {
		return
	}
	s.prove("swapped back: phone on %s served, kid on %s refused again", phone.addr, kid.addr)
}
