package stats

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"net/http/httptest"
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

func TestHandler(t *testing.T) {
	h := Handler(sample)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	var st Status
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &st) != nil || st.Config.Generation != 3 {
		t.Fatalf("/status: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %v", rec.Code, rec.Header())
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{{"POST", "/status", 405}, {"GET", "/", 404}, {"GET", "/debug/pprof/", 404}} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.code)
		}
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
	for b.Loop() {
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
