package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // canonical form, or "error: …" with part of the message
	}{
		{"Mon-Fri 15:00-20:00", "Mon,Tue,Wed,Thu,Fri 15:00-20:00"},
		{"Sat,Sun 09:00-21:00", "Sat,Sun 09:00-21:00"},
		{"sat,SUNDAY 9:00-21:00", "Sat,Sun 09:00-21:00"},
		{"Fri-Mon 22:00-02:00", "Mon,Fri,Sat,Sun 22:00-02:00"},
		{"daily 07:00-24:00", "daily 07:00-24:00"},
		{"15:00-20:00", "daily 15:00-20:00"},
		{"Mon 00:00-24:00", "Mon 00:00-24:00"},
		{"Mon-Sun 00:00-00:30", "daily 00:00-00:30"},
		{"Mon-Fry 15:00-20:00", "error: unknown day 'Fry'"},
		{"Mon,,Tue 15:00-20:00", "error: missing day name"},
		{"Mon 15:00", "error: time range '15:00': want HH:MM-HH:MM"},
		{"Mon 15:00-25:00", "error: time '25:00': out of range"},
		{"Mon 24:00-02:00", "error: time '24:00': out of range"},
		{"Mon 15:60-16:00", "error: time '15:60': out of range"},
		{"Mon 1500-1600", "error: time '1500': want HH:MM"},
		{"Mon 15:0-16:00", "error: time '15:0': want HH:MM"},
		{"Mon +1:00-16:00", "error: time '+1:00': want HH:MM"},
		{"Mon 10:00-10:00", "error: time range '10:00-10:00' is empty"},
		{"Mon Tue 10:00-11:00", "error: want DAYS HH:MM-HH:MM"},
		{"", "error: want DAYS HH:MM-HH:MM"},
	} {
		w, err := ParseWindow(tc.in)
		if strings.HasPrefix(tc.want, "error: ") {
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "error: ")) {
				t.Errorf("ParseWindow(%q) = %v, %v; want %s", tc.in, w, err, tc.want)
			}
			continue
		}
		if err != nil || w.String() != tc.want {
			t.Errorf("ParseWindow(%q) = %q, %v; want %q", tc.in, w.String(), err, tc.want)
		}
	}
}

// at builds a wall-clock time in loc: 2026-03-02 is a Monday.
func at(loc *time.Location, day, hh, mm int) time.Time {
	return time.Date(2026, 3, 1+day, hh, mm, 0, 0, loc)
}

func TestOpen(t *testing.T) {
	s, err := Parse([]string{"Mon-Fri 15:00-20:00", "Sat,Sun 09:00-21:00", "Fri 22:00-02:00"})
	if err != nil {
		t.Fatal(err)
	}
	const sun, mon, fri, sat = 0, 1, 5, 6
	for _, tc := range []struct {
		day, hh, mm int
		open        bool
	}{
		{mon, 14, 59, false}, {mon, 15, 0, true}, {mon, 19, 59, true}, {mon, 20, 0, false},
		{sat, 8, 59, false}, {sat, 9, 0, true}, {sun, 20, 59, true}, {sun, 21, 0, false},
		{fri, 21, 59, false}, {fri, 22, 0, true}, {fri, 23, 59, true},
		{sat, 0, 0, true}, {sat, 1, 59, true}, {sat, 2, 0, false}, // past midnight into Saturday
		{sun, 1, 0, false}, // only Friday's window runs past midnight
	} {
		if got := s.Open(at(time.UTC, tc.day, tc.hh, tc.mm)); got != tc.open {
			t.Errorf("day %d %02d:%02d: open = %v, want %v", tc.day, tc.hh, tc.mm, got, tc.open)
		}
	}
	if !Schedule(nil).Open(time.Now()) {
		t.Error("an empty schedule is closed")
	}
	// Sunday 22:00-02:00 wraps into Monday (day 0 → day 1)
	w, _ := Parse([]string{"Sun 22:00-02:00"})
	if !w.Open(at(time.UTC, mon, 1, 0)) || w.Open(at(time.UTC, sun, 1, 0)) {
		t.Error("Sunday's window past midnight")
	}
}

// TestDST: windows follow the wall clock across both changes (Europe/Berlin rules, 2026:
// forward on 29 March 02:00→03:00, back on 25 October 03:00→02:00), from OpenWrt's /etc/TZ form.
func TestDST(t *testing.T) {
	loc, err := FromPOSIX("CET-1CEST,M3.5.0,M10.5.0/3")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Parse([]string{"daily 01:30-02:30", "daily 08:00-09:00"})
	// spring forward: 01:59 CET is followed by 03:00 CEST; 02:xx does not exist
	before := time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC).In(loc) // 01:59 CET
	after := before.Add(time.Minute)                                // 03:00 CEST
	if !s.Open(before) || after.Hour() != 3 || s.Open(after) {
		t.Errorf("spring forward: %v open %v, %v open %v", before, s.Open(before), after, s.Open(after))
	}
	if n := s.Next(before); !n.Equal(after) {
		t.Errorf("Next after 01:59 on the spring-forward day = %v, want %v", n, after)
	}
	// the morning window is still 08:00 local, now UTC+2
	if m := time.Date(2026, 3, 29, 6, 0, 0, 0, time.UTC).In(loc); !s.Open(m) || m.Hour() != 8 {
		t.Errorf("08:00 CEST: %v open %v", m, s.Open(m))
	}
	// fall back: 02:00-02:59 happens twice, open both times
	first := time.Date(2026, 10, 25, 0, 15, 0, 0, time.UTC).In(loc)  // 02:15 CEST
	second := time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC).In(loc) // 02:15 CET
	if first.Hour() != 2 || second.Hour() != 2 || !s.Open(first) || !s.Open(second) {
		t.Errorf("fall back: %v open %v, %v open %v", first, s.Open(first), second, s.Open(second))
	}
	if m := time.Date(2026, 10, 25, 7, 0, 0, 0, time.UTC).In(loc); !s.Open(m) || m.Hour() != 8 {
		t.Errorf("08:00 CET: %v open %v", m, s.Open(m))
	}
}

func TestNext(t *testing.T) {
	s, _ := Parse([]string{"Mon-Fri 15:00-20:00"})
	n := s.Next(at(time.UTC, 5, 20, 30)) // Friday evening: next opening Monday 15:00
	if want := at(time.UTC, 8, 15, 0); !n.Equal(want) {
		t.Errorf("Next = %v, want %v", n, want)
	}
	if n := s.Next(at(time.UTC, 1, 16, 0)); !n.Equal(at(time.UTC, 1, 20, 0)) {
		t.Errorf("Next while open = %v", n)
	}
	always, _ := Parse([]string{"daily 00:00-24:00"})
	if n := always.Next(at(time.UTC, 1, 16, 0)); !n.IsZero() {
		t.Errorf("Next of an always-open schedule = %v", n)
	}
}

func TestFromPOSIX(t *testing.T) {
	for _, tc := range []struct {
		tz      string
		jan     int // UTC offset in hours on 15 Jan
		jul     int
		wantErr bool
	}{
		{"UTC0", 0, 0, false},
		{"CET-1CEST,M3.5.0,M10.5.0/3", 1, 2, false},
		{"EST5EDT,M3.2.0,M11.1.0", -5, -4, false},
		{"<+0530>-5:30", 0, 0, false}, // checked below: 5.5 h
		{"AEST-10AEDT,M10.1.0,M4.1.0/3", 11, 10, false},
		{"", 0, 0, true},
		{"not a zone", 0, 0, true},
		{"CET-1CEST,M3.5.0,M10.5.0/3\nx", 0, 0, true},
	} {
		loc, err := FromPOSIX(tc.tz)
		if tc.wantErr {
			if err == nil {
				t.Errorf("FromPOSIX(%q): no error", tc.tz)
			}
			continue
		}
		if err != nil {
			t.Errorf("FromPOSIX(%q): %v", tc.tz, err)
			continue
		}
		_, jan := time.Date(2026, 1, 15, 12, 0, 0, 0, loc).Zone()
		_, jul := time.Date(2026, 7, 15, 12, 0, 0, 0, loc).Zone()
		if tc.tz == "<+0530>-5:30" {
			if jan != 19800 || jul != 19800 {
				t.Errorf("%q: offsets %d %d", tc.tz, jan, jul)
			}
			continue
		}
		if jan != tc.jan*3600 || jul != tc.jul*3600 {
			t.Errorf("FromPOSIX(%q): offsets %d, %d; want %d h, %d h", tc.tz, jan, jul, tc.jan, tc.jul)
		}
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"Mon-Fri 15:00-20:00", "Sat,Sun 09:00-21:00", "Fri-Mon 22:00-02:00", "daily 00:00-24:00", "15:00-20:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s)
		if err != nil {
			return
		}
		// End 0 is a valid end: 22:00-00:00 runs to midnight past the start (issue 23.8)
		if w.Days == 0 || w.Days > 0x7f || w.Start < 0 || w.Start >= 1440 || w.End < 0 || w.End > 1440 || w.Start == w.End {
			t.Fatalf("%q parsed to %+v", s, w)
		}
		// open from its start on each of its days, until a minute before its end
		sun := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) // a Sunday
		for d := 0; d < 7; d++ {
			if w.Days&(1<<d) == 0 {
				continue
			}
			start := sun.AddDate(0, 0, d).Add(time.Duration(w.Start) * time.Minute)
			length := w.End - w.Start
			if length <= 0 {
				length += 1440
			}
			last := start.Add(time.Duration(length-1) * time.Minute)
			if s := (Schedule{w}); !s.Open(start) || !s.Open(last) {
				t.Fatalf("%q: closed at %v or %v", w, start, last)
			}
		}
		// the canonical form reads back the same
		w2, err := ParseWindow(w.String())
		if err != nil || w2 != w {
			t.Fatalf("%q → %q → %+v, %v", s, w.String(), w2, err)
		}
	})
}

func FuzzFromPOSIX(f *testing.F) {
	f.Add("CET-1CEST,M3.5.0,M10.5.0/3")
	f.Add("EST5EDT,M3.2.0,M11.1.0")
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := FromPOSIX(s)
		if err != nil {
			return
		}
		_ = time.Date(2026, 3, 29, 2, 30, 0, 0, loc).String()
	})
}

// bruteNext steps minute by minute: slow, obviously right.
func bruteNext(s Schedule, t time.Time) time.Time {
	now := s.Open(t)
	c := t.Truncate(time.Minute)
	for i := 0; i < 8*24*60; i++ {
		c = c.Add(time.Minute)
		if s.Open(c) != now {
			return c
		}
	}
	return time.Time{}
}

// TestNextMatchesBrute: Next tries only window edges and clock changes; it must agree with
// stepping every minute, across DST changes and midnight windows.
func TestNextMatchesBrute(t *testing.T) {
	cet, _ := FromPOSIX("CET-1CEST,M3.5.0,M10.5.0/3")
	scheds := [][]string{
		{"Mon-Fri 15:00-20:00", "Sat,Sun 09:00-21:00"},
		{"daily 01:30-02:30", "daily 08:00-09:00"},
		{"Fri 22:00-02:00"},
		{"Sun 23:00-01:00", "Mon 00:30-00:45"},
		{"daily 02:00-03:00"},
	}
	starts := []time.Time{
		time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC),
		time.Date(2026, 10, 24, 23, 59, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC),
		time.Date(2026, 12, 4, 19, 59, 30, 0, time.UTC), time.Date(2026, 12, 6, 23, 15, 0, 0, time.UTC),
	}
	for _, lines := range scheds {
		s, err := Parse(lines)
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range []*time.Location{time.UTC, cet} {
			for _, st := range starts {
				for step := 0; step < 48; step++ {
					at := st.Add(time.Duration(step) * 37 * time.Minute).In(loc)
					if got, want := s.Next(at), bruteNext(s, at); !got.Equal(want) {
						t.Fatalf("%v in %v from %v: Next = %v, stepping finds %v", lines, loc, at, got, want)
					}
				}
			}
		}
	}
}
