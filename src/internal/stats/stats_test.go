package stats

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sample() *Status {
	r := New()
	kid := r.Device(netip.MustParseAddr("192.168.1.50"))
	kid.SetMAC(net.HardwareAddr{0xaa, 0xbb, 0xcc, 0, 0, 1})
	c := r.Begin(kid, "openai")
	c.Each(func(k *Counters) { k.Conns.Add(1); k.Requests.Add(2); k.AddStatus(200); k.AddStatus(503) })
	c.AddBytes(1000, 50000)
	c.AddTokens(12, 345)
	c.Each(func(k *Counters) { k.TokensEstimated.Add(1); k.WriteTimeouts.Add(1) })
	c.End()
	other := r.Device(netip.MustParseAddr("::ffff:192.168.1.60")) // mapped: same as 192.168.1.60
	d := r.Begin(other, "anthropic")
	d.Each(func(k *Counters) { k.Denied.Add(1) })
	// left open: Active stays 1
	ps, ds := r.Snapshot([]ProviderInfo{{"openai", true}, {"anthropic", true}, {"off", false}},
		func(a netip.Addr, mac string) (string, string) {
			if mac == "aa:bb:cc:00:00:01" {
				return "kids", `Kids "tablet"`
			}
			return "", ""
		})
	for i := range ds {
		ds[i].LastSeen = time.Time{} // not part of the golden output
	}
	return &Status{Version: "test", UptimeSeconds: 42, Config: ConfigStatus{Generation: 3, Source: "/etc/config/airelay"},
		Listeners: map[string]string{"tls": ":8443"}, Providers: ps, Devices: ds}
}

func TestSnapshot(t *testing.T) {
	st := sample()
	if len(st.Devices) != 2 || st.Devices[1].Addr != "192.168.1.60" {
		t.Fatalf("devices: %+v", st.Devices)
	}
	kid := st.Devices[0]
	if kid.Client != "kids" || kid.MAC != "aa:bb:cc:00:00:01" || kid.TokensOut != 345 || kid.BytesDown != 50000 || kid.Active != 0 {
		t.Fatalf("kid: %+v", kid)
	}
	if v := kid.Providers["openai"]; v.Status[2] != 1 || v.Status[5] != 1 || v.Requests != 2 {
		t.Fatalf("kid/openai: %+v", v)
	}
	if st.Providers[1].Active != 1 || st.Providers[1].Denied != 1 || st.Providers[2].Enabled {
		t.Fatalf("providers: %+v", st.Providers)
	}
}

func TestMetricsGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMetrics(&b, sample()); err != nil {
		t.Fatal(err)
	}
	// Every sample line is name{labels} value, names prefixed airelay_.
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.HasPrefix(l, "airelay_") || strings.Count(l, " ") < 1 {
			t.Fatalf("bad sample line %q", l)
		}
	}
	path := "testdata/metrics.golden"
	if *update {
		_ = os.WriteFile(path, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("metrics differ from %s (go test -update rewrites):\n%s", path, b.String())
	}
}

func TestDeviceCap(t *testing.T) {
	r := New()
	base := netip.MustParseAddr("fd00::")
	for i := 0; i < MaxDevices+10; i++ {
		a := base.As16()
		a[14], a[15] = byte(i>>8), byte(i)
		r.Device(netip.AddrFrom16(a))
	}
	_, ds := r.Snapshot(nil, nil)
	others := 0
	for _, d := range ds {
		if d.Addr == "other" {
			others++
		}
	}
	if len(ds) != MaxDevices+1 || others != 1 {
		t.Fatalf("%d devices (%d 'other') in the snapshot, want %d + 1 'other'", len(ds), others, MaxDevices)
	}
}

func BenchmarkBeginEnd(b *testing.B) {
	r := New()
	a := netip.MustParseAddr("192.168.1.5")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c := r.Begin(r.Device(a), "openai")
		c.AddBytes(10, 20)
		c.End()
	}
}

func TestParseRedirect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RedirectStatus
	}{
		{"active\n", RedirectStatus{Active: true}},
		{"active\nLAN TCP 443 on br-lan → :8443\n", RedirectStatus{Active: true, Reason: "LAN TCP 443 on br-lan → :8443"}},
		{"inactive\nfw4 refused the rules:\n  Error: set is empty\n", RedirectStatus{Reason: "fw4 refused the rules: Error: set is empty"}},
		{"", RedirectStatus{Reason: `unreadable redirect state: ""`}},
		{"maybe\n", RedirectStatus{Reason: `unreadable redirect state: "maybe"`}},
		{"inactive\nnot redirected on guest\nnet lan active\nnet guest inactive not in the live chain\n", RedirectStatus{Reason: "not redirected on guest"}},
	} {
		if got := ParseRedirect([]byte(tc.in)); *got != tc.want {
			t.Errorf("ParseRedirect(%q) = %+v, want %+v", tc.in, *got, tc.want)
		}
	}
	nets := ParseRedirectNetworks([]byte("inactive\nwhy\nnet lan active\nnet guest inactive not in the live chain\nnet\n"))
	if len(nets) != 2 || !nets["lan"].Active || nets["guest"].Active || nets["guest"].Reason != "not in the live chain" {
		t.Errorf("per network: %+v", nets)
	}
	var b strings.Builder
	st := &Status{Version: "v", Redirect: &RedirectStatus{Reason: "x"}}
	if err := WriteMetrics(&b, st); err != nil || !strings.Contains(b.String(), "\nairelay_tls_redirect_active 0\n") {
		t.Errorf("metrics with an inactive redirect: %v\n%s", err, b.String())
	}
}

// TestRetire (issue 23.1): a full table makes room for a new device by retiring those idle
// longest (never one with a connection open or seen within RetireIdle); only when none can go
// is a new device counted under "other". A collector gets the retired devices until it
// releases them, and hears of every device made or retired.
func TestRetire(t *testing.T) {
	r := New()
	r.CollectRetired()
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	busy := r.Begin(r.Device(addr(0)), "openai") // the oldest, but open
	defer busy.End()
	for i := 1; i < MaxDevices; i++ {
		r.Device(addr(i))
	}
	if news, all := r.TakeNews(); len(news) != MaxDevices || all {
		t.Fatalf("news of %d devices (all %v), want %d", len(news), all, MaxDevices)
	}
	if d := r.Device(netip.MustParseAddr("10.9.0.1")); d.Addr.IsValid() {
		t.Fatal("a device was retired although every one was seen within RetireIdle")
	}
	time.Sleep(RetireIdle + 10*time.Millisecond)
	r.Device(addr(7)) // seen again: not among the oldest now
	d := r.Device(netip.MustParseAddr("10.9.0.2"))
	if !d.Addr.IsValid() || r.Full() {
		t.Fatalf("no room made for a new device: %v, full %v", d.Addr, r.Full())
	}
	retired := r.Retired()
	if len(retired) != retireBatch {
		t.Fatalf("%d retired, want %d", len(retired), retireBatch)
	}
	gone := map[*Device]struct{}{}
	for _, d := range retired {
		if d.Addr == addr(0) || d.Addr == addr(7) || !d.Retired() || r.Lookup(d.Addr) != nil {
			t.Errorf("retired %v (retired flag %v)", d.Addr, d.Retired())
		}
		gone[d] = struct{}{}
	}
	if news, _ := r.TakeNews(); len(news) != retireBatch+1 {
		t.Errorf("news of %d devices, want the %d retired and the new one", len(news), retireBatch)
	}
	r.Release(gone)
	if n := len(r.Retired()); n != 0 {
		t.Errorf("%d retired after release", n)
	}
}

// A schedule with no next change (always or never open) has no "next" in /status; one with a
// next change has it in RFC 3339, which `airelay status` and LuCI read back.
func TestScheduleStatusJSON(t *testing.T) {
	b, err := json.Marshal(ScheduleStatus{Open: true, Windows: "Mon 00:00-24:00"})
	if err != nil || string(b) != `{"open":true,"windows":"Mon 00:00-24:00"}` {
		t.Errorf("no next change: %s %v", b, err)
	}
	next := time.Date(2026, 12, 8, 15, 0, 0, 0, time.FixedZone("CET", 3600))
	b, err = json.Marshal(ScheduleStatus{Windows: "Mon-Fri 15:00-20:00", Next: next})
	if err != nil || string(b) != `{"open":false,"windows":"Mon-Fri 15:00-20:00","next":"2026-12-08T15:00:00+01:00"}` {
		t.Errorf("with a next change: %s %v", b, err)
	}
	var back ScheduleStatus
	if err := json.Unmarshal(b, &back); err != nil || !back.Next.Equal(next) || back.Windows != "Mon-Fri 15:00-20:00" {
		t.Errorf("read back: %+v %v", back, err)
	}
}
