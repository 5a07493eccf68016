package usage

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/stats"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newBook(t *testing.T, loc *time.Location, start time.Time) (*Book, *stats.Registry, *clock) {
	t.Helper()
	reg := stats.New()
	c := &clock{start}
	b := New(reg, loc, 31)
	b.now = c.now
	b.today = b.day(c.t)
	return b, reg, c
}

var kid = netip.MustParseAddr("192.168.1.50")

// use makes the device use a provider: one request, tokens and bytes.
func use(reg *stats.Registry, addr netip.Addr, provider string, in, out, bytes uint64) {
	d := reg.Device(addr)
	sc := reg.Begin(d, provider)
	sc.Each(func(k *stats.Counters) { k.Requests.Add(1) })
	sc.AddTokens(in, out)
	sc.AddBytes(bytes, bytes)
	sc.End()
}

// TestDays: use is counted in the local day it happened in, today's totals include what came
// after the last sample, and local midnight starts a new day (quota reset) in the router's
// zone, not UTC's.
func TestDays(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Berlin")
	if loc == nil {
		loc = time.FixedZone("CET", 3600)
	}
	b, reg, c := newBook(t, loc, time.Date(2026, 12, 1, 23, 30, 0, 0, loc))
	use(reg, kid, "openai", 100, 50, 1000)
	if got := today(t, b, kid); got.Tokens() != 150 || got.Requests != 1 || got.Bytes() != 2000 {
		t.Fatalf("today before any sample: %+v", got)
	}
	b.Sample()
	use(reg, kid, "anthropic", 10, 5, 100)
	if got := today(t, b, kid); got.Tokens() != 165 || got.Requests != 2 {
		t.Fatalf("today after a sample and more use: %+v", got)
	}
	// 23:59:59 → 00:00:00 local (22:59 UTC: still 1 December in UTC)
	c.t = time.Date(2026, 12, 2, 0, 0, 0, 0, loc)
	b.Sample()
	if got := today(t, b, kid); got != (Counts{}) {
		t.Fatalf("after local midnight, today = %+v, want nothing", got)
	}
	use(reg, kid, "openai", 1, 1, 10)
	if got := today(t, b, kid); got.Tokens() != 2 || got.Requests != 1 {
		t.Fatalf("first use of the new day: %+v", got)
	}
	rows := b.Rows(2, netip.Addr{})
	want := []string{
		"2026-12-01 192.168.1.50 anthropic 10 5 1",
		"2026-12-01 192.168.1.50 openai 100 50 1",
		"2026-12-02 192.168.1.50 openai 1 1 1",
	}
	if len(rows) != len(want) {
		t.Fatalf("rows: %+v", rows)
	}
	for i, r := range rows {
		if got := fmt.Sprintf("%s %s %s %d %d %d", r.Day, r.Addr, r.Provider, r.TokensIn, r.TokensOut, r.Requests); got != want[i] {
			t.Errorf("row %d: %s, want %s", i, got, want[i])
		}
	}
	if rows := b.Rows(1, netip.Addr{}); len(rows) != 1 || rows[0].Day != "2026-12-02" {
		t.Errorf("Rows(1) = %+v", rows)
	}
	if rows := b.Rows(2, netip.MustParseAddr("192.168.1.99")); len(rows) != 0 {
		t.Errorf("rows of another device: %+v", rows)
	}
}

// TestKeepDays: days older than history_days go at the next day's first sample.
func TestKeepDays(t *testing.T) {
	b, reg, c := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	b.keep = 3
	for day := 0; day < 5; day++ {
		c.t = time.Date(2026, 12, 1+day, 12, 0, 0, 0, time.UTC)
		b.Sample()
		use(reg, kid, "openai", 1, 0, 0)
	}
	b.Sample()
	var days []string
	for _, r := range b.Rows(366, netip.Addr{}) {
		days = append(days, r.Day)
	}
	if strings.Join(days, ",") != "2026-12-03,2026-12-04,2026-12-05" {
		t.Errorf("kept days %v", days)
	}
}

// TestSaveLoad: the history round-trips through its file, today's totals included (quotas
// survive a restart), and a second save without news writes nothing.
func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b, reg, _ := newBook(t, time.UTC, start)
	reg.Device(kid).SetMAC([]byte{2, 0, 0, 0, 0, 0x50})
	use(reg, kid, "openai", 100, 50, 1000)
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(path)
	time.Sleep(10 * time.Millisecond)
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(path); !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("a save with nothing new rewrote the file (flash wear)")
	}

	b2, reg2, _ := newBook(t, time.UTC, start.Add(time.Hour))
	if aside, err := b2.Load(path); err != nil || aside != "" {
		t.Fatalf("Load: %v %q", err, aside)
	}
	// the device comes back (the relay and gateway look its MAC up before a quota check)
	reg2.Device(kid).SetMAC([]byte{2, 0, 0, 0, 0, 0x50})
	if got := today(t, b2, kid); got.Tokens() != 150 || got.Requests != 1 {
		t.Errorf("today after a restart: %+v", got)
	}
	rows := b2.Rows(31, netip.Addr{})
	if len(rows) != 1 || rows[0].MAC != "02:00:00:00:00:50" || rows[0].BytesDown != 1000 {
		t.Errorf("rows after a restart: %+v", rows)
	}
	// the next day, yesterday's history is kept but today's quota starts fresh
	b3, _, _ := newBook(t, time.UTC, start.Add(24*time.Hour))
	b3.Load(path)
	if got := today(t, b3, kid); got != (Counts{}) {
		t.Errorf("today the day after: %+v", got)
	}
}

// TestCorruptFile: a truncated or foreign file is set aside with a message that says so, and
// the book starts empty; never a crash.
func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"truncated": `{"version":1,"saved":"2026-12-01T00:00:00Z","rows":[{"day":"2026-12-01","addr":"192.168`,
		"version":   `{"version":9,"rows":[]}`,
		"bad row":   `{"version":1,"rows":[{"day":"yesterday","addr":"192.168.1.50","provider":"openai"}]}`,
		"bad addr":  `{"version":1,"rows":[{"day":"2026-12-01","addr":"kid","provider":"openai"}]}`,
		"binary":    "\x00\x01\x02",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(path, []byte(content), 0o600)
		b, _, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
		aside, err := b.Load(path)
		if err == nil || aside == "" || !strings.Contains(err.Error(), "set aside as "+aside) {
			t.Errorf("%s: Load = %q, %v", name, aside, err)
			continue
		}
		if _, err := os.Stat(aside); err != nil {
			t.Errorf("%s: the set-aside file is gone: %v", name, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: the corrupt file is still in place", name)
		}
		if rows := b.Rows(31, netip.Addr{}); len(rows) != 0 {
			t.Errorf("%s: rows from a corrupt file: %+v", name, rows)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"rows":[{"day":"2026-12-01","addr":"192.168.1.50","provider":"openai","tokens_in":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc fileDoc
		rows, err := parseFile(data, &doc)
		if err != nil {
			return
		}
		for _, r := range rows {
			netip.MustParseAddr(r.Addr) // Load relies on it
			c := r.Counts
			if max(c.TokensIn, c.TokensOut, c.Requests, c.BytesUp, c.BytesDown, c.Denied) > maxCount {
				t.Fatalf("a row with a counter past %d read: %+v", uint64(maxCount), r)
			}
		}
		// and Load takes whatever parseFile took
		path := filepath.Join(t.TempDir(), "h.json")
		os.WriteFile(path, data, 0o600)
		b := New(stats.New(), time.UTC, 31)
		if aside, err := b.Load(path); err != nil || aside != "" {
			t.Fatalf("parseFile took it, Load did not: %q %v", aside, err)
		}
	})
}

// TestStaleTempFilesRemoved (issue 23.8): a save killed between writing its temporary file and
// renaming it leaves a full-size .history-<digits> file; the next start removes it, and nothing
// else in the directory.
func TestStaleTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.json")
	b, reg, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	use(reg, kid, "openai", 1, 1, 1)
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".history-2847561093")
	if err := os.WriteFile(stale, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	keep := []string{path, filepath.Join(dir, ".history-notes"), filepath.Join(dir, "other.json")}
	for _, k := range keep[1:] {
		os.WriteFile(k, []byte("x"), 0o600)
	}
	b2, _, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC))
	if aside, err := b2.Load(path); err != nil || aside != "" {
		t.Fatalf("Load: %q %v", aside, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file is still there (%v)", err)
	}
	for _, k := range keep {
		if _, err := os.Stat(k); err != nil {
			t.Errorf("%s was removed: %v", k, err)
		}
	}
	if got := today(t, b2, kid); got.Requests != 1 {
		t.Errorf("today after the load: %+v", got)
	}
}

// TestAbsurdCounters (issue 23.8): a history row with a counter near 2^64 is corrupt (set
// aside), and counters saturate rather than wrap, so neither can lift a quota.
func TestAbsurdCounters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	os.WriteFile(path, []byte(`{"version":1,"rows":[{"day":"2026-12-01","addr":"192.168.1.50","provider":"openai","requests":18446744073709551615}]}`), 0o600)
	b, _, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	if aside, err := b.Load(path); err == nil || aside == "" || !strings.Contains(err.Error(), "row 0") {
		t.Fatalf("a row with requests 2^64-1 was read: %q %v", aside, err)
	}

	c := Counts{Requests: math.MaxUint64 - 1, TokensIn: math.MaxUint64, TokensOut: 5, BytesUp: 1 << 63, BytesDown: 1 << 63}
	c.add(Counts{Requests: 3, TokensIn: 1})
	if c.Requests != math.MaxUint64 || c.TokensIn != math.MaxUint64 {
		t.Errorf("add wrapped: %+v", c)
	}
	if c.Tokens() != math.MaxUint64 || c.Bytes() != math.MaxUint64 {
		t.Errorf("tokens %d, bytes %d: wrapped", c.Tokens(), c.Bytes())
	}
}

// today is b.Today for a device that must be countable.
func today(t *testing.T, b *Book, a netip.Addr) Counts {
	t.Helper()
	c, ok := b.Today(a)
	if !ok {
		t.Fatalf("Today(%v): not countable", a)
	}
	return c
}

// TestRowsOrderTies: rows of one day, address and provider (a device first counted by its
// address, then by its MAC; an address that passed from one device to another during the day)
// come out in one order every time, without a MAC first, then by MAC: /history, `airelay
// history` and LuCI's table must not reorder them from one call to the next.
func TestRowsOrderTies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	doc := `{"version":1,"saved":"2026-12-01T11:00:00Z","rows":[` +
		`{"day":"2026-12-01","addr":"192.168.1.50","mac":"02:00:00:00:00:51","provider":"openai","requests":3},` +
		`{"day":"2026-12-01","addr":"192.168.1.50","provider":"openai","requests":1},` +
		`{"day":"2026-12-01","addr":"192.168.1.50","mac":"02:00:00:00:00:50","provider":"openai","requests":2}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	if aside, err := b.Load(path); err != nil || aside != "" {
		t.Fatalf("Load: %q %v", aside, err)
	}
	for i := 0; i < 30; i++ { // the rows come from a map: a tie left to it changes order
		rows := b.Rows(31, netip.Addr{})
		var got []uint64
		for _, r := range rows {
			got = append(got, r.Requests)
		}
		if len(rows) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
			t.Fatalf("call %d: rows in the order of requests %v, want [1 2 3] (no MAC, ...:50, ...:51): %+v", i, got, rows)
		}
	}
}
