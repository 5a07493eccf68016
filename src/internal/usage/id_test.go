package usage

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/stats"
)

func TestIDOf(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 1, 0}
	for _, c := range []struct {
		addr string
		mac  net.HardwareAddr
		want string
	}{
		{"192.168.1.50", nil, "192.168.1.50/32"},
		{"::ffff:192.168.1.50", nil, "192.168.1.50/32"},
		{"192.168.1.50", mac, "02:00:00:00:01:00"},
		{"fd00:1::1234:5678:9abc:def0", nil, "fd00:1::/64"},
		{"fe80::1%br-lan", nil, "fe80::/64"},
		{"fd00:1::1", mac, "02:00:00:00:01:00"},
		{"fd00:1::1", net.HardwareAddr{0, 0, 0, 0, 0, 0}, "fd00:1::/64"},       // no MAC
		{"fd00:1::1", net.HardwareAddr{1, 2, 3, 4, 5, 6, 7, 8}, "fd00:1::/64"}, // not Ethernet
	} {
		if got := IDOf(netip.MustParseAddr(c.addr), c.mac).String(); got != c.want {
			t.Errorf("IDOf(%s, %v) = %s, want %s", c.addr, c.mac, got, c.want)
		}
	}
	if idOf(netip.MustParseAddr("10.0.0.1"), "02:00:00:00:01:00") != IDOf(netip.MustParseAddr("fd00::9"), mac) {
		t.Error("the MAC as stats keeps it is another ID than the MAC itself")
	}
	if n := testing.AllocsPerRun(100, func() { IDOf(netip.MustParseAddr("fd00:1::1"), nil) }); n != 0 {
		t.Errorf("IDOf allocates %v times", n)
	}
}

// request counts one gateway request of the device at a (its MAC m, when known), as the
// gateway does before its quota check.
func request(reg *stats.Registry, a netip.Addr, m net.HardwareAddr) {
	d := reg.Device(a)
	d.SetMAC(m)
	d.Total.Requests.Add(1)
	sc := reg.Begin(d, "openai")
	sc.DeviceProvider.Requests.Add(1)
	sc.End()
}

// TestManyAddressesOneDevice (issue 23.1): the addresses of one device share its day: those of
// a known MAC (IPv4 and any number of IPv6), and without a MAC those of one IPv6 /64; another
// /64 or another IPv4 address is another device.
func TestManyAddressesOneDevice(t *testing.T) {
	b, reg, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	phone := net.HardwareAddr{2, 0, 0, 0, 1, 0}
	v4 := netip.MustParseAddr("192.168.1.100")
	request(reg, v4, phone)
	for i := range 300 {
		request(reg, netip.MustParseAddr(fmt.Sprintf("fd00:1::%x:%x", i, i*7)), phone)
	}
	if got := today(t, b, netip.MustParseAddr("fd00:1::5:23")); got.Requests != 301 {
		t.Errorf("today of one of the phone's IPv6 addresses: %d requests, want the phone's 301", got.Requests)
	}
	if got := today(t, b, v4); got.Requests != 301 {
		t.Errorf("today of the phone's IPv4 address: %d requests, want 301", got.Requests)
	}
	b.Sample()
	if got := today(t, b, v4); got.Requests != 301 {
		t.Errorf("after a sample: %d requests, want 301", got.Requests)
	}
	rows := b.Rows(1, netip.MustParseAddr("fd00:1::1:7"))
	if len(rows) != 1 || rows[0].Addr != "192.168.1.100" || rows[0].MAC != "02:00:00:00:01:00" || rows[0].Requests != 301 {
		t.Errorf("the phone's history: %+v, want one row shown as 192.168.1.100 with 301 requests", rows)
	}

	// no MAC: one /64 is one device
	for i := range 50 {
		request(reg, netip.MustParseAddr(fmt.Sprintf("2001:db8:5:6::%x", 0x1000+i)), nil)
	}
	request(reg, netip.MustParseAddr("2001:db8:5:7::1"), nil)
	request(reg, netip.MustParseAddr("192.168.1.101"), nil)
	if got := today(t, b, netip.MustParseAddr("2001:db8:5:6::ffff")); got.Requests != 50 {
		t.Errorf("a new address of a /64 with 50 requests today: %d, want 50", got.Requests)
	}
	for addr, want := range map[string]uint64{"2001:db8:5:7::1": 1, "192.168.1.101": 1, "192.168.1.102": 0} {
		if got := today(t, b, netip.MustParseAddr(addr)); got.Requests != want {
			t.Errorf("%s: %d requests, want %d", addr, got.Requests, want)
		}
	}
	if n := len(b.Rows(1, netip.Addr{})); n != 4 {
		t.Errorf("%d rows today, want 4 (phone, one /64, another /64, one IPv4)", n)
	}
}

// TestPastFullRegistry (issue 23.1): once the registry holds MaxDevices addresses, a new one is
// still counted (idle addresses are retired to make room, and what they counted stays with
// their device), the history never gets an unreadable row, and a device that cannot be counted
// at all is reported as such, never as unused.
func TestPastFullRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	b, reg, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }
	for i := range stats.MaxDevices {
		request(reg, addr(i), nil)
	}
	b.Sample()
	time.Sleep(stats.RetireIdle + 10*time.Millisecond) // the addresses are idle long enough to retire
	late := netip.MustParseAddr("10.2.0.1")
	request(reg, late, nil)
	if got, ok := b.Today(late); !ok || got.Requests != 1 {
		t.Fatalf("a new address past %d: today %+v, countable %v; want 1 request", stats.MaxDevices, got, ok)
	}
	if got := today(t, b, addr(0)); got.Requests != 1 {
		t.Errorf("a retired address: %d requests today, want its 1", got.Requests)
	}
	request(reg, addr(0), nil) // back: a new entry, the same device
	if got := today(t, b, addr(0)); got.Requests != 2 {
		t.Errorf("a retired address back: %d requests today, want 2", got.Requests)
	}

	// every address busy (a connection open each): nothing can be retired
	reg2 := stats.New()
	b2 := New(reg2, time.UTC, 31)
	b2.now, b2.today = b.now, b.today
	for i := range stats.MaxDevices {
		d := reg2.Device(addr(i))
		sc := reg2.Begin(d, "openai")
		sc.AddBytes(1, 1)
		defer sc.End()
	}
	time.Sleep(stats.RetireIdle + 10*time.Millisecond)
	request(reg2, late, nil)
	if got, ok := b2.Today(late); ok {
		t.Errorf("an address counted under \"other\": today %+v, countable; want not countable", got)
	}
	if err := b2.Save(path); err != nil {
		t.Fatal(err)
	}
	b3, _, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC))
	if aside, err := b3.Load(path); err != nil || aside != "" {
		t.Fatalf("the history with \"other\" counted reads back as %q, %v", aside, err)
	}
}

// TestIDTableFull: with maxIDs devices that used something today (here restored from the
// history, their addresses gone), a new device is not countable; the next day it is.
func TestIDTableFull(t *testing.T) {
	defer func(n int) { maxIDs = n }(maxIDs)
	maxIDs = 10
	path := filepath.Join(t.TempDir(), "history.json")
	doc := `{"version":1,"rows":[`
	for i := range 10 {
		if i > 0 {
			doc += ","
		}
		doc += fmt.Sprintf(`{"day":"2026-12-01","addr":"10.0.0.%d","provider":"openai","requests":1}`, i)
	}
	os.WriteFile(path, []byte(doc+"]}"), 0o600)
	b, reg, c := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	if _, err := b.Load(path); err != nil {
		t.Fatal(err)
	}
	next := netip.MustParseAddr("10.0.1.1")
	request(reg, next, nil)
	if got, ok := b.Today(next); ok {
		t.Errorf("the 11th device with maxIDs 10: %+v, countable", got)
	}
	if got := today(t, b, netip.MustParseAddr("10.0.0.3")); got.Requests != 1 {
		t.Errorf("a device restored from the history: %+v", got)
	}
	c.t = c.t.Add(24 * time.Hour)
	b.Sample()
	request(reg, next, nil)
	if got, ok := b.Today(next); !ok || got.Requests != 1 {
		t.Errorf("the next day: %+v, %v", got, ok)
	}
}

// TestRetiredDeviceCountedToTheEnd: what a holder adds to a device after the registry retired
// it (a relay connection still open) reaches its device's day; once done and released, the
// book forgets it.
func TestRetiredDeviceCountedToTheEnd(t *testing.T) {
	defer func(h time.Duration) { retireHold = h }(retireHold)
	retireHold = 0
	b, reg, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	first := netip.MustParseAddr("10.0.0.1")
	d := reg.Device(first)
	var held stats.Conn
	for i := 1; i < stats.MaxDevices; i++ {
		request(reg, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), nil)
	}
	time.Sleep(stats.RetireIdle + 10*time.Millisecond)
	request(reg, netip.MustParseAddr("10.2.0.1"), nil) // retires the oldest, first among them
	if !d.Retired() {
		t.Fatal("the oldest idle device was not retired")
	}
	// the holder (a gateway keep-alive connection that kept the device) serves a request
	d.Touch()
	d.Total.Requests.Add(1)
	held = reg.Begin(d, "openai")
	held.AddBytes(100, 200)
	held.End()
	if got := today(t, b, first); got.Bytes() != 300 || got.Requests != 1 {
		t.Errorf("a retired device's last request: today %+v, want 300 bytes, 1 request", got)
	}
	b.Sample() // counts what came since; the next releases what is done
	b.Sample()
	b.mu.Lock()
	_, kept := b.devs[d]
	b.mu.Unlock()
	if kept || len(reg.Retired()) != 0 {
		t.Errorf("retired devices done and idle are still held (book %v, registry %d)", kept, len(reg.Retired()))
	}
	if rows := b.Rows(1, first); len(rows) != 1 || rows[0].Bytes() != 300 || rows[0].Requests != 0 {
		t.Errorf("its history: %+v", rows)
	}
}
