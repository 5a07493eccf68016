// Package usage owns what each device used per local day: the history kept for history_days
// (per day, device and provider), today's totals that daily quotas are checked against, and the
// file the history survives restarts in.
//
//	b := usage.New(reg, loc, keep)  // once, at start; b.Load(path) restores the file
//	b.Sample()                      // each minute and at local midnight
//	used, ok := b.Today(addr)       // per gateway request / relay connection when a quota applies
//
// A device is its ID (id.go): its MAC where known, else its IPv4 address or its IPv6 /64, so
// the many addresses an IPv6 device takes share one quota and one history row. The stats
// registry counts per address; this package reads those counters off the hot path: a sample
// takes the difference of every address's counters since the last one and adds it to its
// device's day. Today(addr) adds what the device's addresses moved since that sample, so a
// quota sees the request that just ended, not a minute-old figure.
//
// What it holds is bounded: addresses the registry retires (to make room for new ones) are
// counted to the end and then forgotten, and today's devices are at most maxIDs. A device that
// cannot be counted (the registry or the ID table full of devices in use) is reported as such
// by Today, and the caller refuses rather than let it past its quota.
//
// It decides nothing (the caller compares with the quota) and never holds a key or a config.
package usage

import (
	"math"
	"net/netip"
	"sort"
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

// since is v − last, each counter; a counter that went backwards counts from 0.
func since(v, last Counts) Counts {
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
	ID       ID
	Provider string
}

// row is one row's counts and the address it is shown with.
type row struct {
	Counts
	addr netip.Addr
}

// maxIDs bounds the devices tracked today: a device needs an ID of its own (a MAC, an IPv4
// address, an IPv6 /64), so only a LAN of spoofed MACs or a routed IPv6 prefix reaches it.
// (A variable for tests.)
var maxIDs = 4 * stats.MaxDevices

// retireHold is how long a device the registry retired must have been unseen, with nothing
// open and nothing new counted, before it is released: whoever still held it when it was
// retired has had time to count what it had. (A variable for tests.)
var retireHold = 2 * time.Minute

// tally is today's use of one device (ID).
type tally struct {
	used    Counts                      // as far as folded from its addresses' counters
	addr    netip.Addr                  // the address it is shown with: its latest IPv4, else its latest
	members map[*stats.Device]*devState // its addresses' counters, in the registry or retired
}

// devState is what the book knows of one address's counters (a stats.Device).
type devState struct {
	id      ID
	mac     string            // the device's MAC when id was worked out
	tracked bool              // counted for id; false: the ID table was full
	total   Counts            // its Total at the last fold
	prov    map[string]Counts // per provider, at the last sample
}

// Book is the usage record. It is safe for concurrent use.
type Book struct {
	reg *stats.Registry
	now func() time.Time

	mu      sync.Mutex
	loc     *time.Location
	keep    int                         // days kept
	days    map[string]map[Key]*row     // "2006-01-02" → rows
	today   string                      // the day samples go to
	ids     map[ID]*tally               // today's use per device
	devs    map[*stats.Device]*devState // every address's counters seen, by the registry's pointer
	sampled int64                       // when the last sample ran (unix ns, real time: stats' clock)
	dirty   bool                        // changed since the last save
}

// New returns an empty book over reg's counters, in time zone loc, keeping keep days. It
// becomes reg's collector of retired devices.
func New(reg *stats.Registry, loc *time.Location, keep int) *Book {
	reg.CollectRetired()
	b := &Book{reg: reg, now: time.Now, loc: loc, keep: max(keep, 1),
		days: map[string]map[Key]*row{}, ids: map[ID]*tally{}, devs: map[*stats.Device]*devState{}}
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
		b.newDay(day)
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

// newDay starts day: quotas start again. Called with b.mu held.
func (b *Book) newDay(day string) {
	b.today = day
	for id, t := range b.ids {
		t.used = Counts{}
		if len(t.members) == 0 {
			delete(b.ids, id)
		}
	}
	b.prune()
}

// Sample moves what the counters counted since the last sample into the current day. When the
// local day changed, what came since the last sample still counts for the old day (samples run
// at midnight, so that is at most the last moments of it), and today's totals start from zero.
// Retired addresses that are done are released here.
func (b *Book) Sample() {
	devs := b.reg.Devices()
	retired := b.reg.Retired()
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sampled = now.UnixNano()
	b.reg.TakeNews() // all of them are below
	for _, d := range devs {
		b.sample(d)
	}
	var done map[*stats.Device]struct{}
	for _, d := range retired {
		moved := b.sample(d)
		if !moved && d.Total.Active.Load() == 0 && now.Sub(d.LastSeen()) >= retireHold {
			if done == nil {
				done = map[*stats.Device]struct{}{}
			}
			done[d] = struct{}{}
		}
	}
	if done != nil { // an address leaves the registry only this way
		for d := range done {
			b.forget(d, b.devs[d])
		}
		b.reg.Release(done)
	}
	if day := b.day(b.now()); day != b.today {
		b.newDay(day)
	}
}

// sample takes what d counted since the last sample into today's rows and its device's tally;
// moved says whether there was anything. Called with b.mu held.
func (b *Book) sample(d *stats.Device) (moved bool) {
	if !d.Addr.IsValid() { // "other": addresses past a full registry, which nobody can be told of
		return false
	}
	st := b.state(d)
	moved = b.fold(d, st)
	d.EachProvider(func(id string, v stats.Values) {
		c := countsOf(v)
		delta := since(c, st.prov[id])
		if delta == (Counts{}) {
			return
		}
		st.prov[id] = c
		moved = true
		if !st.tracked {
			return
		}
		r := b.row(b.today, Key{st.id, id})
		r.add(delta)
		r.addr = shown(r.addr, d.Addr)
		b.dirty = true
	})
	return moved
}

// state returns what the book knows of d, made on first sight, with the ID its MAC says now.
// Called with b.mu held.
func (b *Book) state(d *stats.Device) *devState {
	st := b.devs[d]
	mac := d.MAC()
	switch {
	case st == nil:
		st = &devState{prov: map[string]Counts{}, mac: mac}
		b.devs[d] = st
		b.attach(d, st, idOf(d.Addr, mac))
	case mac != st.mac: // a MAC learned (or another device on this address now)
		b.detach(d, st)
		st.mac = mac
		b.attach(d, st, idOf(d.Addr, mac))
	case !st.tracked:
		b.attach(d, st, st.id) // room again?
	}
	return st
}

// attach counts d for id, when the ID table has room for it.
func (b *Book) attach(d *stats.Device, st *devState, id ID) {
	st.id = id
	t := b.ids[id]
	if t == nil {
		if len(b.ids) >= maxIDs {
			for id, t := range b.ids { // devices with nothing today and no address left
				if len(t.members) == 0 && t.used == (Counts{}) {
					delete(b.ids, id)
				}
			}
		}
		if len(b.ids) >= maxIDs {
			st.tracked = false
			return
		}
		t = &tally{members: map[*stats.Device]*devState{}}
		b.ids[id] = t
	}
	t.members[d] = st
	t.addr = shown(t.addr, d.Addr)
	st.tracked = true
}

func (b *Book) detach(d *stats.Device, st *devState) {
	if !st.tracked {
		return
	}
	st.tracked = false
	if t := b.ids[st.id]; t != nil {
		delete(t.members, d)
		if len(t.members) == 0 && t.used == (Counts{}) {
			delete(b.ids, st.id)
		}
	}
}

// forget drops d, which the registry no longer holds.
func (b *Book) forget(d *stats.Device, st *devState) {
	b.fold(d, st)
	b.detach(d, st)
	delete(b.devs, d)
}

// fold adds what d's total moved since the last fold to its device's tally. Called with b.mu
// held.
func (b *Book) fold(d *stats.Device, st *devState) bool {
	v := countsOf(d.Total.Values())
	delta := since(v, st.total)
	if delta == (Counts{}) {
		return false
	}
	st.total = v
	if st.tracked {
		if t := b.ids[st.id]; t != nil {
			t.used.add(delta)
		}
	}
	return true
}

// shown is the address a device is shown with after it was seen at a: its latest IPv4
// address, else its latest address.
func shown(cur, a netip.Addr) netip.Addr {
	if !cur.IsValid() || a.Is4() || !cur.Is4() {
		return a
	}
	return cur
}

func countsOf(v stats.Values) Counts {
	return Counts{TokensIn: v.TokensIn, TokensOut: v.TokensOut, Requests: v.Requests,
		BytesUp: v.BytesUp, BytesDown: v.BytesDown, Denied: v.Denied}
}

func (b *Book) row(day string, k Key) *row {
	rows := b.days[day]
	if rows == nil {
		rows = map[Key]*row{}
		b.days[day] = rows
	}
	r := rows[k]
	if r == nil {
		r = new(row)
		rows[k] = r
	}
	return r
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

// Today is what the device at addr (all its addresses: see ID) used since local midnight, up
// to this moment. ok is false when the device cannot be counted: its address is past a full
// registry, or today's table of devices is full. A caller with a quota to check refuses it.
func (b *Book) Today(addr netip.Addr) (used Counts, ok bool) {
	addr = addr.Unmap()
	d := b.reg.Lookup(addr)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.takeNews()
	if d == nil {
		if b.reg.Full() {
			return Counts{}, false // counted under "other" (or never counted at all)
		}
		if t := b.ids[idOfAddr(addr)]; t != nil {
			b.foldTally(t, nil)
			return t.used, true
		}
		return Counts{}, true
	}
	st := b.state(d)
	if !st.tracked {
		return Counts{}, false
	}
	t := b.ids[st.id]
	b.fold(d, st)
	b.foldTally(t, d)
	return t.used, true
}

// takeNews attaches the addresses the registry made or retired since the last look, so a
// device's tally knows all of its addresses. Called with b.mu held.
func (b *Book) takeNews() {
	ds, all := b.reg.TakeNews()
	if all {
		ds = append(b.reg.Devices(), b.reg.Retired()...)
	}
	for _, d := range ds {
		if d.Addr.IsValid() {
			b.state(d)
		}
	}
}

// foldTally folds the addresses of t that may have counted something since the last sample
// (one open now, or seen since), but skip, which is folded already.
func (b *Book) foldTally(t *tally, skip *stats.Device) {
	for d, st := range t.members {
		if d != skip && (d.Total.Active.Load() > 0 || d.LastSeen().UnixNano() >= b.sampled) {
			b.fold(d, st)
		}
	}
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
// address, provider and MAC. A row is a device (see ID), shown with its address (its latest
// IPv4, else its latest) and its MAC when that is what identifies it. device, when valid, keeps
// only the rows of the device at that address (and those shown with it). It samples first.
func (b *Book) Rows(days int, device netip.Addr) []Row {
	b.Sample()
	var want ID
	if device.IsValid() {
		device = device.Unmap()
		want = idOfAddr(device)
		if d := b.reg.Lookup(device); d != nil {
			want = idOf(device, d.MAC())
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, _ := time.ParseInLocation(time.DateOnly, b.today, b.loc)
	oldest := t.AddDate(0, 0, 1-max(days, 1)).Format(time.DateOnly)
	var rows []Row
	for day, ks := range b.days {
		if day < oldest {
			continue
		}
		for k, r := range ks {
			if device.IsValid() && k.ID != want && r.addr != device {
				continue
			}
			rows = append(rows, k.row(day, r))
		}
	}
	// sort.Slice, not slices.SortFunc: the generic sort is compiled again for each struct
	// shape (12 KB of mipsle code for Row), sort's code is shared and already linked.
	sort.Slice(rows, func(i, j int) bool {
		x, y := &rows[i], &rows[j]
		switch {
		case x.Day != y.Day:
			return x.Day < y.Day
		case x.Addr != y.Addr:
			return x.Addr < y.Addr
		case x.Provider != y.Provider:
			return x.Provider < y.Provider
		}
		// Two devices shown at one address (counted by it, then by its MAC; or an address
		// that passed to another device): by MAC, so the order is the same at every call.
		return x.MAC < y.MAC
	})
	return rows
}

// row is the Row of k on day.
func (k Key) row(day string, r *row) Row {
	out := Row{Day: day, Addr: r.addr.String(), Provider: k.Provider, Counts: r.Counts}
	if k.ID.HasMAC() {
		out.MAC = k.ID.MAC().String()
	}
	return out
}

// Span is the first and last day Rows(days) covers.
func (b *Book) Span(days int) (from, to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, _ := time.ParseInLocation(time.DateOnly, b.today, b.loc)
	return t.AddDate(0, 0, 1-max(days, 1)).Format(time.DateOnly), b.today
}

// NextMidnight is the next local midnight after t, where a sample must fall.
func NextMidnight(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
}
