// Package schedule owns the time windows in which a client may use AI, as written in a client
// section (`list schedule 'Mon-Fri 15:00-20:00'`), and the router's local time they are read in.
//
//	s, err := schedule.Parse([]string{"Mon-Fri 15:00-20:00", "Sat,Sun 09:00-21:00"})
//	open := s.Open(time.Now().In(schedule.Local()))
//
// Windows are wall-clock: 15:00-20:00 means from 15:00 to 20:00 as the router's clock shows
// them, on DST days too (a window that spans the skipped hour is an hour shorter that day). A
// window whose end is not after its start runs past midnight into the next day (22:00-02:00 on
// Fri is open from Friday 22:00 to Saturday 02:00). Parsing is done when the config loads; Open
// does no allocation and no parsing.
//
// It must not decide access by itself (callers combine it with the client's rules) nor read the
// clock: callers pass the time, so tests drive it.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is one line of a schedule: the days it starts on and the minutes of the day.
type Window struct {
	Days       uint8 // bit d set: starts on time.Weekday d
	Start, End int   // minutes after midnight; End 1440 is midnight at the end of the day
}

// Schedule is a client's windows; empty means always open.
type Schedule []Window

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Parse reads a client's schedule lines. Errors name the part that is wrong, e.g.
// `unknown day 'Fry'`.
func Parse(lines []string) (Schedule, error) {
	var s Schedule
	for _, l := range lines {
		w, err := ParseWindow(l)
		if err != nil {
			return nil, err
		}
		s = append(s, w)
	}
	return s, nil
}

// ParseWindow reads one line: [DAYS] HH:MM-HH:MM, where DAYS is a comma-separated list of day
// names (Mon … Sun, or Monday … Sunday, any case) and ranges (Mon-Fri; Fri-Mon wraps over the
// weekend), or daily; without DAYS the window is every day.
func ParseWindow(line string) (Window, error) {
	f := strings.Fields(line)
	var days, span string
	switch len(f) {
	case 1:
		days, span = "daily", f[0]
	case 2:
		days, span = f[0], f[1]
	default:
		return Window{}, fmt.Errorf("want DAYS HH:MM-HH:MM, e.g. 'Mon-Fri 15:00-20:00'")
	}
	var w Window
	var err error
	if w.Days, err = parseDays(days); err != nil {
		return Window{}, err
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return Window{}, fmt.Errorf("time range '%s': want HH:MM-HH:MM", span)
	}
	if w.Start, err = parseClock(a, false); err != nil {
		return Window{}, err
	}
	if w.End, err = parseClock(b, true); err != nil {
		return Window{}, err
	}
	if w.Start == w.End {
		return Window{}, fmt.Errorf("time range '%s' is empty (for a whole day write 00:00-24:00)", span)
	}
	return w, nil
}

func parseDays(s string) (uint8, error) {
	if strings.EqualFold(s, "daily") || strings.EqualFold(s, "every") {
		return 0x7f, nil
	}
	var set uint8
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := parseDay(a)
		if err != nil {
			return 0, err
		}
		to := from
		if isRange {
			if to, err = parseDay(b); err != nil {
				return 0, err
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			set |= 1 << d
			if d == to {
				break
			}
		}
	}
	return set, nil
}

func parseDay(s string) (int, error) {
	l := strings.ToLower(s)
	for d, n := range dayNames {
		if l == n || len(l) > 3 && strings.HasPrefix(l, n) && strings.ToLower(time.Weekday(d).String()) == l {
			return d, nil
		}
	}
	if s == "" {
		return 0, fmt.Errorf("missing day name (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
	}
	return 0, fmt.Errorf("unknown day '%s' (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", s)
}

// parseClock reads H:MM or HH:MM; 24:00 only as an end.
func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case !ok || err1 != nil || err2 != nil || len(h) < 1 || len(h) > 2 || len(m) != 2 || h[0] == '+' || h[0] == '-' || m[0] == '+' || m[0] == '-':
		return 0, fmt.Errorf("time '%s': want HH:MM", s)
	case hh == 24 && mm == 0 && end:
		return 1440, nil
	case hh > 23 || mm > 59:
		return 0, fmt.Errorf("time '%s': out of range (00:00 to 23:59, or 24:00 as an end)", s)
	}
	return hh*60 + mm, nil
}

// Open reports whether t (in the router's local time) is inside a window. An empty schedule is
// always open.
func (s Schedule) Open(t time.Time) bool {
	if len(s) == 0 {
		return true
	}
	wd := int(t.Weekday())
	prev := (wd + 6) % 7
	m := t.Hour()*60 + t.Minute()
	for _, w := range s {
		if w.Start < w.End {
			if w.Days&(1<<wd) != 0 && m >= w.Start && m < w.End {
				return true
			}
			continue
		}
		// past midnight: the evening part today, the morning part of yesterday's window
		if w.Days&(1<<wd) != 0 && m >= w.Start || w.Days&(1<<prev) != 0 && m < w.End {
			return true
		}
	}
	return false
}

// Next returns the next time after t at which Open changes, within eight days, in t's
// location; the zero Time when it never does (empty, or open all week). Callers use it to say
// when a closed schedule opens ("closed until Mon 15:00") and when an open one closes. Only the
// windows' own starts and ends can be changes, so only those are tried, by wall clock.
func (s Schedule) Next(t time.Time) time.Time {
	if len(s) == 0 {
		return time.Time{}
	}
	now := s.Open(t)
	var best time.Time
	y, m, d := t.Date()
	for day := 0; day <= 8; day++ {
		for _, w := range s {
			for _, min := range [2]int{w.Start, w.End} {
				c0 := time.Date(y, m, d+day, min/60, min%60, 0, 0, t.Location())
				// when the clock goes back, a wall-clock time happens twice: try both
				for _, shift := range [...]time.Duration{0, -time.Hour, -30 * time.Minute, 30 * time.Minute, time.Hour} {
					c := c0.Add(shift)
					if shift != 0 && (c.Hour() != c0.Hour() || c.Minute() != c0.Minute() || c.Day() != c0.Day()) {
						continue
					}
					if !c.After(t) || !best.IsZero() && !c.Before(best) {
						continue
					}
					if s.Open(c) != now {
						best = c
					}
				}
			}
		}
		if !best.IsZero() {
			break // days only grow: a later day cannot hold an earlier time
		}
	}
	// A clock change between t and best can itself be the change: 01:59 CET is followed by
	// 03:00 CEST, which leaves a window that ended at the skipped 02:30.
	if _, o1 := t.Zone(); !best.IsZero() {
		if _, o2 := best.Zone(); o1 != o2 {
			lo, hi := t, best
			for hi.Sub(lo) > time.Second {
				mid := lo.Add(hi.Sub(lo) / 2)
				if _, o := mid.Zone(); o == o1 {
					lo = mid
				} else {
					hi = mid
				}
			}
			if hi = hi.Truncate(time.Second); s.Open(hi) != now {
				return hi
			}
		}
	}
	return best
}

// String writes the schedule back in its canonical form, one window per line joined by "; ".
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, w := range s {
		parts[i] = w.String()
	}
	return strings.Join(parts, "; ")
}

func (w Window) String() string {
	var days []string
	if w.Days == 0x7f {
		days = []string{"daily"}
	} else {
		for d := 1; d <= 7; d++ { // Monday first
			if w.Days&(1<<(d%7)) != 0 {
				days = append(days, strings.ToUpper(dayNames[d%7][:1])+dayNames[d%7][1:])
			}
		}
	}
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d", strings.Join(days, ","), w.Start/60, w.Start%60, w.End/60, w.End%60)
}
