// Package usage owns what each device used per local day: the history kept for history_days
// (per day, device and provider), today's totals that daily quotas are checked against, and the
// file the history survives restarts in.
//
//	b := usage.New(reg, loc)     // once, at start; b.Load(path) restores the file
//	go b.Run(ctx, every)          // samples the counters each minute and at local midnight
//	used := b.Today(addr)         // per gateway request / relay connection when a quota applies
//
// It reads the stats counters off the hot path: a sample takes the difference of every
// device's counters since the last one and adds it to the current day. Today(addr) adds what
// the device's counters moved since that sample, so a quota sees the request that just ended,
// not a minute-old figure. It decides nothing (the caller compares with the quota) and never
// holds a key or a config: devices are addresses with the MAC last seen.
package usage

import (
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/airelay/airelay/src/internal/stats"
)

// Counts is one day's use of a device at a provider (or in all, for today's totals).
type Counts struct {
	TokensIn  uint64 `json:"tokens_in"`
	TokensOut uint64 `json:"tokens_out"`
	Requests  uint64 `json:"requests"`
	BytesUp   uint64 `json:"bytes_up"`
	BytesDown uint64 `json:"bytes_down"`
	Denied    uint64 `json:"denied"`
}

// Tokens is in + out; Bytes is up + down. Both saturate rather than wrap.
func (c Counts) Tokens() uint64 { return sat(c.TokensIn, c.TokensOut) }
func (c Counts) Bytes() uint64  { return sat(c.BytesUp, c.BytesDown) }

// add adds d; each counter saturates at the largest uint64 rather than wrap to a small number,
// which would lift a quota.
func (c *Counts) add(d Counts) {
	c.TokensIn = sat(c.TokensIn, d.TokensIn)
	c.TokensOut = sat(c.TokensOut, d.TokensOut)
	c.Requests = sat(c.Requests, d.Requests)
	c.BytesUp = sat(c.BytesUp, d.BytesUp)
	c.BytesDown = sat(c.BytesDown, d.BytesDown)
	c.Denied = sat(c.Denied, d.Denied)
}

// sat is a + b, or the largest uint64 when that overflows.
func sat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// since is v − last, each counter; a counter that went backwards (a restart) counts from 0.
func since(v, last stats.Values) Counts {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	return Counts{
		TokensIn: d(v.TokensIn, last.TokensIn), TokensOut: d(v.TokensOut, last.TokensOut),
		Requests: d(v.Requests, last.Requests), BytesUp: d(v.BytesUp, last.BytesUp),
		BytesDown: d(v.BytesDown, last.BytesDown), Denied: d(v.Denied, last.Denied),
	}
}

// Key is one row of a day: a device and a provider.
type Key struct {
	Addr     netip.Addr
	Provider string
}

// Book is the usage record. It is safe for concurrent use.
type Book struct {
	reg *stats.Registry
	now func() time.Time

	mu      sync.Mutex
	loc     *time.Location
	keep    int                          // days kept
	days    map[string]map[Key]*Counts   // "2006-01-02" → rows
	macs    map[netip.Addr]string        // last MAC seen per device, for names
	today   string                       // the day samples go to
	total   map[netip.Addr]*Counts       // today's use per device, at the last sample
	last    map[Key]stats.Values         // per device and provider, at the last sample
	lastDev map[netip.Addr]stats.Values  // device totals at the last sample
	devs    map[netip.Addr]*stats.Device // the registry's devices, for Today
	dirty   bool                         // changed since the last save
}

// New returns an empty book over reg's counters, in time zone loc, keeping keep days.
func New(reg *stats.Registry, loc *time.Location, keep int) *Book {
	b := &Book{reg: reg, now: time.Now, loc: loc, keep: max(keep, 1),
		days: map[string]map[Key]*Counts{}, macs: map[netip.Addr]string{}, total: map[netip.Addr]*Counts{},
		last: map[Key]stats.Values{}, lastDev: map[netip.Addr]stats.Values{}, devs: map[netip.Addr]*stats.Device{}}
	b.today = b.day(b.now())
	return b
}

// SetClock replaces the clock (tests, and the daemon's test clock). What was counted until now
// goes to the day of the old clock.
func (b *Book) SetClock(now func() time.Time) {
	b.Sample()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = now
	if day := b.day(now()); day != b.today {
		b.today = day
		clear(b.total) // a new day: quotas start again
		b.prune()
	}
}

// SetZone changes the time zone and the days kept (a config reload).
func (b *Book) SetZone(loc *time.Location, keep int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loc, b.keep = loc, max(keep, 1)
	b.prune()
}

func (b *Book) day(t time.Time) string { return t.In(b.loc).Format(time.DateOnly) }

// Sample moves what the counters counted since the last sample into the current day. When the
// local day changed, what came since the last sample still counts for the old day (samples run
// at midnight, so that is at most the last moments of it), and today's totals start from zero.
func (b *Book) Sample() {
	devs := b.reg.Devices()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range devs {
		a := d.Addr
		b.devs[a] = d
		if mac := d.MAC(); mac != "" {
			b.macs[a] = mac
		}
		tv := d.Total.Values()
		b.totalFor(a).add(since(tv, b.lastDev[a]))
		b.lastDev[a] = tv
		d.EachProvider(func(id string, v stats.Values) {
			k := Key{a, id}
			delta := since(v, b.last[k])
			b.last[k] = v
			if delta == (Counts{}) {
				return
			}
			b.row(b.today, k).add(delta)
			b.dirty = true
		})
	}
	if now := b.day(b.now()); now != b.today {
		b.today = now
		clear(b.total)
		b.prune()
	}
}

func (b *Book) totalFor(a netip.Addr) *Counts {
	c := b.total[a]
	if c == nil {
		c = new(Counts)
		b.total[a] = c
	}
	return c
}

func (b *Book) row(day string, k Key) *Counts {
	rows := b.days[day]
	if rows == nil {
		rows = map[Key]*Counts{}
		b.days[day] = rows
	}
	c := rows[k]
	if c == nil {
		c = new(Counts)
		rows[k] = c
	}
	return c
}

// prune drops days older than keep, counting back from today.
func (b *Book) prune() {
	t, err := time.ParseInLocation(time.DateOnly, b.today, b.loc)
	if err != nil {
		return
	}
	oldest := t.AddDate(0, 0, 1-b.keep).Format(time.DateOnly)
	for d := range b.days {
		if d < oldest {
			delete(b.days, d)
			b.dirty = true
		}
	}
}

// Today is what the device at addr used since local midnight, up to this moment.
func (b *Book) Today(addr netip.Addr) Counts {
	addr = addr.Unmap()
	b.mu.Lock()
	defer b.mu.Unlock()
	var c Counts
	if t := b.total[addr]; t != nil {
		c = *t
	}
	if d := b.devs[addr]; d != nil {
		c.add(since(d.Total.Values(), b.lastDev[addr]))
	} else if d := b.reg.Lookup(addr); d != nil {
		b.devs[addr] = d
		c.add(since(d.Total.Values(), b.lastDev[addr]))
	}
	return c
}

// Row is one line of the history: a day, a device, a provider.
type Row struct {
	Day      string `json:"day"`
	Addr     string `json:"addr"`
	MAC      string `json:"mac,omitempty"`
	Name     string `json:"name,omitempty"`
	Provider string `json:"provider"`
	Counts
}

// Rows returns the history of the last days days (1 is today only), oldest first, then by
// device and provider; device, when valid, keeps only that address. It samples first.
func (b *Book) Rows(days int, device netip.Addr) []Row {
	b.Sample()
	b.mu.Lock()
	defer b.mu.Unlock()
	t, _ := time.ParseInLocation(time.DateOnly, b.today, b.loc)
	oldest := t.AddDate(0, 0, 1-max(days, 1)).Format(time.DateOnly)
	var rows []Row
	for day, ks := range b.days {
		if day < oldest {
			continue
		}
		for k, c := range ks {
			if device.IsValid() && k.Addr != device.Unmap() {
				continue
			}
			rows = append(rows, Row{Day: day, Addr: k.Addr.String(), MAC: b.macs[k.Addr], Provider: k.Provider, Counts: *c})
		}
	}
	slices.SortFunc(rows, func(x, y Row) int {
		switch {
		case x.Day != y.Day:
			return cmpStr(x.Day, y.Day)
		case x.Addr != y.Addr:
			return cmpStr(x.Addr, y.Addr)
		}
		return cmpStr(x.Provider, y.Provider)
	})
	return rows
}

// Span is the first and last day Rows(days) covers.
func (b *Book) Span(days int) (from, to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, _ := time.ParseInLocation(time.DateOnly, b.today, b.loc)
	return t.AddDate(0, 0, 1-max(days, 1)).Format(time.DateOnly), b.today
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// NextMidnight is the next local midnight after t, where a sample must fall.
func NextMidnight(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
}
