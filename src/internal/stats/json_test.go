package stats

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/jsonw"
	"github.com/airelay/airelay/src/internal/jsonw/jsonwtest"
)

// statusCases are /status documents with every field set, left out, nil and empty.
func statusCases() []*Status {
	nasty := "<b>&\"quoted\"\\ \u2028\u2029 \x00\x1f\x7f \xff é😀"
	next := time.Date(2026, 12, 8, 15, 0, 0, 5, time.FixedZone("CET", 3600))
	full := sample()
	full.Disabled = true
	full.Config = ConfigStatus{Generation: math.MaxUint64, Source: nasty, LoadedAt: next, LastError: nasty, State: "last_valid", Message: nasty}
	full.Listeners = map[string]string{"tls": ":443", "gateway": ":8080", "dns": "127.0.0.1:53", nasty: nasty, "": ""}
	full.Redirect = &RedirectStatus{Active: true, Reason: nasty}
	full.Networks = []NetworkStatus{{Name: "lan", Device: "br-lan", Zone: "lan", IPv4: "192.168.1.1", IPv6: "fd00::1", Served: true},
		{Name: "guest", Reason: nasty, Mode: "passthrough"}, {}}
	d := &full.Devices[0]
	d.Network, d.NameSource, d.LastSeen = "lan", "client", time.Unix(1700000000, 123456789).UTC()
	d.Today = &Today{Tokens: math.MaxUint64, Requests: 1, Bytes: 0}
	d.Quota = &Quota{Tokens: math.MinInt64, Requests: math.MaxInt64, Bytes: -1}
	d.Schedule = &ScheduleStatus{Open: true, Windows: "Mon 00:00-24:00"} // no next: left out
	full.Devices[1].Schedule = &ScheduleStatus{Windows: "Mon-Fri 15:00-20:00", Next: next}
	full.Devices[1].Today = &Today{}
	full.Devices[1].Quota = &Quota{}
	full.Devices[1].Providers = nil
	full.Devices = append(full.Devices, DeviceStatus{Addr: "other", Providers: map[string]Values{}, Values: Values{Active: -5, Status: [6]uint64{math.MaxUint64}}})
	full.Providers[0].Values.Status = [6]uint64{1, 2, 3, 4, 5, 6}
	return []*Status{
		{}, // nil maps and slices: null; nil pointers and empty networks: left out
		{Listeners: map[string]string{}, Providers: []ProviderStatus{}, Devices: []DeviceStatus{}, Networks: []NetworkStatus{}, Redirect: &RedirectStatus{}},
		sample(),
		full,
	}
}

// TestStatusJSONMatchesStd: /status is written byte for byte as encoding/json wrote it, and
// read back as encoding/json reads it.
func TestStatusJSONMatchesStd(t *testing.T) {
	for _, st := range statusCases() {
		jsonwtest.CheckEncode(t, st, st)
		b, _ := json.MarshalIndent(st, "", "  ")
		jsonwtest.CheckDecode[Status](t, b)
	}
	jsonwtest.CheckRandom[Status](t, 1, 300)
	jsonwtest.CheckRandom[DeviceStatus](t, 2, 300)
}

// TestScheduleStatusMatchesOmitempty: ScheduleStatus (which encoding/json's users get through
// MarshalJSON, so the random Status above compares it with itself) is written as the struct
// with a *time.Time "next,omitempty" it replaces.
func TestScheduleStatusMatchesOmitempty(t *testing.T) {
	type plain struct {
		Open    bool       `json:"open"`
		Windows string     `json:"windows"`
		Next    *time.Time `json:"next,omitempty"`
	}
	next := time.Date(2026, 12, 8, 15, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, s := range []ScheduleStatus{{}, {Open: true, Windows: "Mon 00:00-24:00"}, {Windows: "<&>", Next: next}, {Next: time.Unix(0, 1)}} {
		p := plain{Open: s.Open, Windows: s.Windows}
		if !s.Next.IsZero() {
			p.Next = &s.Next
		}
		jsonwtest.CheckEncode(t, &s, p)
		b, _ := json.Marshal(p)
		jsonwtest.CheckDecode[ScheduleStatus](t, b)
	}
}

// TestStatusReadErrors: what encoding/json refuses is refused, and the error says where.
func TestStatusReadErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"devices":[{"addr":"a"},{"connections":-1}]}`, "devices[1].connections: want an unsigned integer, found -1"},
		{`{"devices":[{"status":[1,2.5]}]}`, "devices[0].status[1]: want an unsigned integer, found 2.5"},
		{`{"config":{"loaded_at":"now"}}`, "config.loaded_at: parsing time"},
		{`{"providers":{}}`, "providers: want an array, found an object"},
		{`{"uptime_seconds":9223372036854775808}`, "uptime_seconds: want an integer"},
		{`{"listeners":{"tls":1}}`, "listeners.tls: want a string, found a number"},
		{`{"redirect":{"active":"yes"}}`, "redirect.active: want true or false, found a string"},
		{`{"version":"1"`, "unexpected end of the document"},
	} {
		if jsonwtest.CheckDecode[Status](t, []byte(c.doc)) != nil {
			t.Fatalf("%s: read", c.doc)
		}
		var st Status
		err := jsonw.Unmarshal([]byte(c.doc), &st)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s", c.doc, err, c.want)
		}
	}
}

// FuzzStatusJSON: any bytes read as a Status as encoding/json reads them (or are refused as
// it refuses them), and what reads is written back as encoding/json writes it.
func FuzzStatusJSON(f *testing.F) {
	for _, st := range statusCases() {
		b, _ := json.Marshal(st)
		f.Add(b)
	}
	f.Add([]byte(`{"devices":[{"status":[1,2,3,4,5,6,7]},{"status":null}],"Version":"x","VERSION":"y"}`))
	f.Add([]byte(`{"devices":[{"today":{"tokens":1}},{"today":null}],"devices":[{"today":{"bytes":2}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if st := jsonwtest.CheckDecode[Status](t, data); st != nil {
			jsonwtest.CheckEncode(t, st, st)
		}
	})
}
