package service

import (
	"context"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/airelay/airelay/src/internal/access"
	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/names"
	"github.com/airelay/airelay/src/internal/schedule"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/internal/usage"
)

// ClockEnv names a file holding an RFC 3339 time that the daemon's clock starts from (read at
// start and on every SIGHUP, then running at the real rate). For tests that must move the
// router's clock across a schedule's edge or midnight without waiting; unset in production.
const ClockEnv = "AIRELAY_CLOCK_FILE"

// clock is the daemon's notion of now: the real time, or the test clock's offset from it.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// readClockFile sets the offset from ClockEnv's file, when set.
func (c *clock) readClockFile() error {
	path := os.Getenv(ClockEnv)
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		c.offset.Store(0) // no file (yet): the real clock
		return nil
	}
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	c.offset.Store(int64(time.Until(t)))
	return nil
}

// home is what the home controls need: the test clock, the usage book, the access guard and
// the DHCP names.
type home struct {
	clock    clock
	book     *usage.Book
	guard    *access.Guard
	names    *names.Table
	lastSave time.Time
}

func newHome(reg *stats.Registry, t *config.Table) *home {
	h := &home{names: names.New(names.OpenWrtFiles...)}
	_ = h.clock.readClockFile() // applyHome reports a bad one
	loc := schedule.Local()
	h.book = usage.New(reg, loc, t.Main.HistoryDays)
	h.book.SetClock(h.clock.now)
	h.guard = &access.Guard{Usage: h.book, Clock: h.clock.now}
	h.guard.SetZone(loc)
	return h
}

// applyHome follows a new config: the time zone (the router's may have changed with it), the
// days kept, and a test clock.
func (s *Service) applyHome(t *config.Table) {
	before := s.home.clock.offset.Load()
	if err := s.home.clock.readClockFile(); err != nil {
		s.log.Warn("test clock unreadable; keeping the current one", "env", ClockEnv, "err", err)
	}
	if s.home.clock.offset.Load() != before {
		s.home.book.SetClock(s.home.clock.now) // the day samples go to follows the moved clock
	}
	loc := schedule.Local()
	s.home.guard.SetZone(loc)
	s.home.book.SetZone(loc, t.Main.HistoryDays)
}

// loadHistory restores the usage history at start.
func (s *Service) loadHistory(t *config.Table) {
	if t.Main.HistoryFile == "" {
		return
	}
	if aside, err := s.home.book.Load(t.Main.HistoryFile); err != nil {
		if aside != "" {
			s.log.Warn("usage history unreadable; set aside, starting empty", "err", err)
		} else {
			s.log.Error("usage history not loaded", "err", err)
		}
	}
	s.home.lastSave = time.Now()
}

// runHome samples usage each minute and at local midnight, and writes the history at most
// once per history_interval.
func (s *Service) runHome(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		loc := schedule.Local()
		midnight := time.NewTimer(usage.NextMidnight(s.home.clock.now(), loc).Sub(s.home.clock.now()) + 50*time.Millisecond)
		select {
		case <-ctx.Done():
			midnight.Stop()
			return
		case <-tick.C:
		case <-midnight.C:
		}
		midnight.Stop()
		// the zone as OpenWrt has it now (a time zone change rewrites /etc/TZ), within a minute
		s.home.guard.SetZone(loc)
		s.home.book.SetZone(loc, s.table.Load().Main.HistoryDays)
		s.home.book.Sample()
		t := s.table.Load()
		if t.Main.HistoryFile != "" && time.Since(s.home.lastSave) >= t.Main.HistoryInterval {
			s.saveHistory(t)
		}
	}
}

func (s *Service) saveHistory(t *config.Table) {
	if t.Main.HistoryFile == "" {
		return
	}
	s.home.lastSave = time.Now()
	if err := s.home.book.Save(t.Main.HistoryFile); err != nil {
		s.log.Warn("usage history not written", "err", err)
	}
}

// decorate adds to each device of a status document its name, today's use, its quotas and
// its schedule.
func (s *Service) decorate(t *config.Table, ds []stats.DeviceStatus) {
	now := s.home.clock.now().In(s.home.guard.Zone()) // read from /etc/TZ each minute by runHome
	for i := range ds {
		d := &ds[i]
		a, err := netip.ParseAddr(d.Addr)
		if err != nil {
			continue
		}
		hw, _ := parseMAC(d.MAC)
		c := t.ClientFor(a, hw)
		d.Name, d.NameSource = s.nameOf(c, a, d.MAC)
		if n := t.NetworkOf(a); n != nil {
			d.Network = n.Name
		}
		u, _ := s.home.book.Today(a)
		d.Today = &stats.Today{Tokens: u.Tokens(), Requests: u.Requests, Bytes: u.Bytes()}
		q := t.Main.DefaultQuota
		if c != nil {
			q = c.Quota.Or(q)
		}
		if q != (config.Quota{}) {
			d.Quota = &stats.Quota{Tokens: q.Tokens, Requests: q.Requests, Bytes: q.Bytes}
		}
		if c != nil && len(c.Schedule) > 0 {
			st := &stats.ScheduleStatus{Open: c.Schedule.Open(now), Windows: c.Schedule.String()}
			if n := c.Schedule.Next(now); !n.IsZero() {
				st.Next = n
			}
			d.Schedule = st
		}
	}
}

// nameOf is how a device is named when shown: its client section's name, else the host name
// of its DHCP lease, else nothing; the second value says which ("client", "dhcp").
func (s *Service) nameOf(c *config.Client, a netip.Addr, mac string) (string, string) {
	if c != nil && c.Name != "" {
		return c.Name, "client"
	}
	if n := s.home.names.Lookup(a, mac); n != "" {
		return n, "dhcp"
	}
	return "", ""
}

// historyPage answers GET /history?days=N&device=ADDR: the usage rows, oldest first.
func (s *Service) historyPage(q url.Values) stats.Doc {
	t := s.table.Load()
	days := t.Main.HistoryDays
	if v := q.Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366 {
			return stats.TextDoc(400, "days: want a whole number from 1 to 366")
		}
		days = min(n, t.Main.HistoryDays)
	}
	var dev netip.Addr
	if v := q.Get("device"); v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return stats.TextDoc(400, "device: want an IP address")
		}
		dev = a
	}
	rows := s.home.book.Rows(days, dev)
	for i := range rows {
		a, _ := netip.ParseAddr(rows[i].Addr)
		hw, _ := parseMAC(rows[i].MAC)
		rows[i].Name, _ = s.nameOf(t.ClientFor(a, hw), a, rows[i].MAC)
	}
	if rows == nil {
		rows = []usage.Row{}
	}
	from, to := s.home.book.Span(days)
	return stats.JSONDoc(&History{Days: days, From: from, To: to, Rows: rows})
}

// History is the /history document; `airelay history --json` prints it and LuCI draws it.
type History struct {
	Days int         `json:"days"`
	From string      `json:"from"`
	To   string      `json:"to"`
	Rows []usage.Row `json:"rows"`
}
