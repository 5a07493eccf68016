package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// --- 11. a device with many IPv6 addresses has one daily quota (issue 23.1) ---

// The LAN's IPv6 prefix for this scenario (a ULA, as odhcpd hands out), the router's address
// in it, and how many addresses the phone takes from it (as privacy extensions do, one after
// the other).
const (
	lanV6Prefix = "fd00:1::"
	routerLANv6 = lanV6Prefix + "1"
	phoneV6s    = 40
)

// ipv6QuotaScenario gives the LAN an IPv6 prefix and the phone many addresses in it, sets
// default_daily_requests 2, and asks the gateway for /v1/models once from each address and
// once over IPv4: the phone (known by its MAC from the router's neighbour table) gets 200 200
// and then 429 daily_request_quota from every other address, the IPv4 one included, where
// each new address used to be a new device with a quota of its own. Status shows the same
// day's use on each of its addresses, and the history one row for the phone.
func ipv6QuotaScenario(s *sc) {
	h := s.h
	good, _ := os.ReadFile(h.path(confPath))
	var addrs []string
	defer func() {
		for _, a := range addrs {
			runIn(h.lan, 10*time.Second, nil, "ip", "-6", "addr", "del", a+"/64", "dev", "eth0")
		}
		runIn(h.router, 10*time.Second, nil, "ip", "-6", "addr", "del", routerLANv6+"/64", "dev", "br-lan")
		os.WriteFile(h.path(confPath), good, 0o600)
		os.Remove(h.path(clockFile))
		h.initReload()
	}()
	h.in(h.router, "ip", "-6", "addr", "add", routerLANv6+"/64", "dev", "br-lan", "nodad")
	for i := range phoneV6s {
		a := fmt.Sprintf("%s%x:%x:%x:%x", lanV6Prefix, 0x1000+i*7, i*31+5, 0xbeef^i, i+1)
		h.in(h.lan, "ip", "-6", "addr", "add", a+"/64", "dev", "eth0", "nodad")
		addrs = append(addrs, a)
	}
	// a new local day, so no use from the scenarios before counts, and the quota
	if err := os.WriteFile(h.path(clockFile), []byte("2027-01-04T10:00:00Z\n"), 0o644); err != nil {
		s.fatalf("%v", err)
	}
	os.WriteFile(h.path(confPath), append(append([]byte(nil), good...), "\nconfig airelay 'main'\n\toption default_daily_requests '2'\n"...), 0o600)
	gen := s.status().Config.Generation
	if err := h.initReload(); err != nil {
		s.fatalf("reload: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); s.status().Config.Generation == gen; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.fatalf("the daemon did not reload")
		}
	}

	var codes []string
	var refused curlOut
	for _, a := range addrs {
		c := s.curl(h.lan, "--interface", a, "-g", "http://["+routerLANv6+"]:8080/openai/v1/models")
		codes = append(codes, fmt.Sprint(c.status))
		if c.status == 429 {
			refused = c
		}
	}
	v4 := s.curl(h.lan, gateway+"/openai/v1/models")
	want := "200 200" + strings.Repeat(" 429", phoneV6s-2)
	if got := strings.Join(codes, " "); got != want || v4.status != 429 {
		s.fatalf("one request from each of the phone's %d IPv6 addresses with default_daily_requests 2: %s, then over IPv4 %d; want %s, then 429", phoneV6s, got, v4.status, want)
	}
	if code := jsonField(refused.body, "code"); code != "daily_request_quota" {
		s.fatalf("the refusal: %s", refused.body)
	}
	s.prove("default_daily_requests 2, the phone from %d IPv6 addresses of %s/64 and then IPv4: 200 200, then 429 %s from every other address and over IPv4 (one device: its MAC)", phoneV6s, lanV6Prefix, jsonField(refused.body, "code"))

	st := s.status()
	total := uint64(phoneV6s + 1) // every request counts, refused ones too
	for _, a := range []string{addrs[0], addrs[phoneV6s-1], phoneAddr} {
		d := device(st, a)
		if d.MAC != phoneMAC || d.Client != "phone" || d.Today == nil || d.Today.Requests != total || d.Quota == nil || d.Quota.Requests != 2 {
			s.fatalf("status of %s: mac %q client %q today %+v quota %+v; want the phone's %d requests against 2", a, d.MAC, d.Client, d.Today, d.Quota, total)
		}
	}
	s.prove("status: each of the phone's addresses (%s …, %s) shows the phone's day, %d requests of 2", addrs[0], phoneAddr, total)

	r := runIn(h.router, 10*time.Second, nil, h.airelayBin, "history", "--json", "--days", "1", "--device", addrs[7], "--config", h.path(runConf))
	var hist historyDoc
	if !r.ok() || json.Unmarshal([]byte(r.out), &hist) != nil {
		s.fatalf("airelay history: %s", r)
	}
	if len(hist.Rows) != 1 || hist.Rows[0].Addr != phoneAddr || hist.Rows[0].Provider != "openai" || hist.Rows[0].Day != "2027-01-04" {
		s.fatalf("history of the phone's address %s: %+v; want one row, openai, shown as %s", addrs[7], hist.Rows, phoneAddr)
	}
	s.prove("airelay history --device %s: one row for the phone, shown as %s", addrs[7], phoneAddr)
}
