package access

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/internal/usage"
)

const site = `config airelay 'main'
	option default_daily_bytes '10K'
config provider 'openai'
	list host 'api.openai.com'
config provider 'anthropic'
	list host 'api.anthropic.com'
config client 'kids'
	option name 'Kids tablet'
	list ip '192.168.1.50'
	list schedule 'Mon-Fri 15:00-20:00'
	option schedule_cut '10m'
	option daily_tokens '1000'
	option daily_requests '3'
config client 'tv'
	list ip '192.168.1.60'
	option access 'deny'
`

func TestCheck(t *testing.T) {
	tb, err := config.LoadBytes("test", []byte(site))
	if err != nil {
		t.Fatal(err)
	}
	reg := stats.New()
	book := usage.New(reg, time.UTC, 31)
	now := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC) // a Wednesday
	g := &Guard{Usage: book, Clock: func() time.Time { return now }}
	book.SetClock(g.Clock)
	g.SetZone(time.UTC)
	kid, tv, phone := netip.MustParseAddr("192.168.1.50"), netip.MustParseAddr("192.168.1.60"), netip.MustParseAddr("192.168.1.70")
	openai := tb.Provider("openai")
	check := func(a netip.Addr, path Path) Decision {
		return g.Check(tb, tb.ClientFor(a, nil), openai, a, path)
	}

	if d := check(kid, Gateway); !d.Allowed || d.CutIn != 4*time.Hour+10*time.Minute {
		t.Fatalf("kid inside the window: %+v", d)
	}
	if d := check(tv, Relay); d.Allowed || d.Reason != Denied || d.Code() != "access_denied" {
		t.Errorf("tv: %+v", d)
	}
	if d := check(phone, Relay); !d.Allowed || d.CutIn != 0 {
		t.Errorf("phone (no client): %+v", d)
	}

	// the schedule closes at 20:00; Friday evening it stays closed until Monday 15:00
	now = time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	d := check(kid, Relay)
	if d.Allowed || d.Reason != ScheduleClosed || !d.Until.Equal(time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)) {
		t.Fatalf("kid after the window: %+v", d)
	}
	if m := d.Message(now); m != "AI access for 'Kids tablet' is closed by its schedule until Mon 15:00 (in 67h0m)" {
		t.Errorf("message %q", m)
	}

	// quotas: requests and tokens on the gateway only, bytes on both paths
	now = time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	dev := reg.Device(kid)
	sc := reg.Begin(dev, "openai")
	sc.Each(func(k *stats.Counters) { k.Requests.Add(1) })
	sc.AddTokens(900, 150)
	sc.End()
	d = check(kid, Gateway)
	if d.Allowed || d.Reason != QuotaTokens || d.Used != 1050 || d.Limit != 1000 || !d.Until.Equal(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("kid past the token quota: %+v", d)
	}
	if m := d.Message(now); m != "the daily token quota of 1,000 for 'Kids tablet' is used up (1,050 today); it resets at midnight (in 8h0m)" {
		t.Errorf("message %q", m)
	}
	if d := check(kid, Relay); !d.Allowed {
		t.Errorf("the relay cannot see tokens, so no token quota there: %+v", d)
	}
	// main's default bytes quota applies to a device without a client section, on the relay too
	pd := reg.Device(phone)
	sp := reg.Begin(pd, "openai")
	sp.AddBytes(6000, 5000)
	sp.End()
	if d := check(phone, Relay); d.Allowed || d.Reason != QuotaBytes || d.Code() != "daily_byte_quota" || d.Limit != 10240 {
		t.Errorf("phone past main's byte quota: %+v", d)
	}
	// a new local day resets the quotas
	now = time.Date(2026, 12, 8, 0, 0, 1, 0, time.UTC)
	book.Sample()
	if d := check(phone, Relay); !d.Allowed {
		t.Errorf("phone the next day: %+v", d)
	}
}

func TestRequestQuotaAndMessage(t *testing.T) {
	tb, _ := config.LoadBytes("test", []byte(site))
	reg := stats.New()
	g := &Guard{Usage: usage.New(reg, time.UTC, 31), Clock: func() time.Time { return time.Date(2026, 12, 2, 19, 30, 0, 0, time.UTC) }}
	g.Usage.SetClock(g.Clock)
	kid := netip.MustParseAddr("192.168.1.50")
	dev := reg.Device(kid)
	for range 4 { // three done today, and the one being decided
		dev.Total.Requests.Add(1)
	}
	d := g.Check(tb, tb.ClientFor(kid, nil), tb.Provider("anthropic"), kid, Gateway)
	if d.Allowed || d.Reason != QuotaRequests || !strings.Contains(d.Message(time.Date(2026, 12, 2, 19, 30, 0, 0, time.UTC)), "daily request quota of 3 for 'Kids tablet' is used up (3 today); it resets at midnight (in 4h30m)") {
		t.Errorf("%+v %q", d, d.Message(time.Date(2026, 12, 2, 19, 30, 0, 0, time.UTC)))
	}
}

// TestNoPolicyDoesNotAllocate: a device with neither schedule nor quota costs what the rules
// cost.
func TestNoPolicyDoesNotAllocate(t *testing.T) {
	tb, _ := config.LoadBytes("test", []byte("config provider 'openai'\n\tlist host 'api.openai.com'\n"))
	g := &Guard{Usage: usage.New(stats.New(), time.UTC, 31)}
	a := netip.MustParseAddr("192.168.1.9")
	p := tb.Provider("openai")
	if n := testing.AllocsPerRun(1000, func() { g.Check(tb, nil, p, a, Gateway) }); n != 0 {
		t.Errorf("Check allocates %v times", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	tb, _ := config.LoadBytes("test", []byte(site))
	reg := stats.New()
	g := &Guard{Usage: usage.New(reg, time.UTC, 31), Clock: func() time.Time { return time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC) }}
	kid := netip.MustParseAddr("192.168.1.50")
	reg.Device(kid)
	c, p := tb.ClientFor(kid, nil), tb.Provider("openai")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		g.Check(tb, c, p, kid, Gateway)
	}
}

// With no valid config, the devices the failing one concerns are refused, told where its
// problem is (config.LoadFailClosed); the others are decided as usual.
func TestCheckFailClosed(t *testing.T) {
	text := strings.Replace(site, "\tlist schedule 'Mon-Fri 15:00-20:00'\n", "\tlist schedule 'Mon-Fry 15:00-20:00'\n", 1)
	tb, err := config.FailClosed("test", []byte(text), nil)
	if err == nil || !strings.Contains(err.Error(), "test:") {
		t.Fatalf("FailClosed: %v", err)
	}
	g := &Guard{}
	g.SetZone(time.UTC)
	kid, phone := netip.MustParseAddr("192.168.1.50"), netip.MustParseAddr("192.168.1.70")
	openai := tb.Provider("openai")
	d := g.Check(tb, tb.ClientFor(kid, nil), openai, kid, Gateway)
	if d.Allowed || d.Reason != ConfigInvalid || d.Code() != "config_invalid" {
		t.Fatalf("kid: %+v", d)
	}
	msg := d.Message(time.Now())
	if !strings.HasPrefix(msg, "AI access for 'Kids tablet' is refused until the router's airelay config is fixed") ||
		!strings.HasSuffix(msg, ": section 'kids' option 'schedule'") {
		t.Errorf("kid's message: %q", msg)
	}
	if d := g.Check(tb, tb.ClientFor(phone, nil), openai, phone, Relay); !d.Allowed {
		t.Errorf("phone (no section, valid main): %+v", d)
	}
}

// Per-network policy, as the README's guest and IoT examples write it: one section per
// network. A guest device may use the relay within its own quota but not the gateway; an IoT
// device is denied; a lan device keeps the defaults; a device on a passthrough network (its
// resolver also serves lan) is let through the relay with no rule, and never gets the
// gateway.
func TestNetworkPolicy(t *testing.T) {
	tb, err := config.LoadBytes("test", []byte(`config airelay 'main'
	option default_access 'deny'
	list network 'lan'
	list network 'guest'
	list network 'iot'
config provider 'openai'
	list host 'api.openai.com'
config runtime_network
	option network 'lan'
	option device 'br-lan'
	list ipv4 '192.168.1.1/24'
	option mode 'served'
config runtime_network
	option network 'guest'
	option device 'br-guest'
	list ipv4 '192.168.2.1/24'
	option mode 'served'
config runtime_network
	option network 'iot'
	option device 'br-iot'
	list ipv4 '192.168.3.1/24'
	option mode 'served'
config runtime_network
	option network 'cams'
	option device 'br-cams'
	list ipv4 '192.168.4.1/24'
	option mode 'passthrough'
config client 'home'
	list network 'lan'
config client 'guest'
	option name 'Guest Wi-Fi'
	list network 'guest'
	option gateway '0'
	option daily_bytes '1K'
config client 'iot'
	list network 'iot'
	option access 'deny'
`))
	if err != nil {
		t.Fatal(err)
	}
	reg := stats.New()
	book := usage.New(reg, time.UTC, 31)
	now := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	g := &Guard{Usage: book, Clock: func() time.Time { return now }}
	book.SetClock(g.Clock)
	g.SetZone(time.UTC)
	openai := tb.Provider("openai")
	check := func(ip string, path Path) Decision {
		a := netip.MustParseAddr(ip)
		return g.Check(tb, tb.ClientFor(a, nil), openai, a, path)
	}
	if d := check("192.168.1.20", Gateway); !d.Allowed {
		t.Errorf("lan device on the gateway: %+v", d)
	}
	if d := check("192.168.2.20", Relay); !d.Allowed || d.Client == nil || d.Client.ID != "guest" {
		t.Errorf("guest on the relay: %+v", d)
	}
	d := check("192.168.2.20", Gateway)
	if d.Allowed || d.Reason != GatewayOff || d.Code() != "gateway_not_allowed" ||
		!strings.Contains(d.Message(now), "not offered to 'Guest Wi-Fi'") {
		t.Errorf("guest on the gateway: %+v %q", d, d.Message(now))
	}
	sp := reg.Begin(reg.Device(netip.MustParseAddr("192.168.2.20")), "openai")
	sp.AddBytes(1024, 1024)
	sp.End()
	if d := check("192.168.2.20", Relay); d.Allowed || d.Reason != QuotaBytes {
		t.Errorf("guest past daily_bytes: %+v", d)
	}
	for _, path := range []Path{Relay, Gateway} {
		if d := check("192.168.3.20", path); d.Allowed || d.Reason != Denied {
			t.Errorf("iot device, path %d: %+v", path, d)
		}
	}
	if d := check("10.1.1.1", Relay); d.Allowed || d.Reason != Denied {
		t.Errorf("a device on no known network gets default_access deny: %+v", d)
	}
	if d := check("192.168.4.20", Relay); !d.Allowed || d.Client != nil {
		t.Errorf("passthrough network on the relay: %+v", d)
	}
	if d := check("192.168.4.20", Gateway); d.Allowed || d.Reason != GatewayOff {
		t.Errorf("passthrough network on the gateway: %+v", d)
	}
}
