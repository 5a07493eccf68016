package schedule

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"time"
)

// Local returns the router's time zone. Go finds it through TZ or /etc/localtime; OpenWrt
// usually has neither (no zoneinfo package) and keeps the zone as a POSIX TZ string in /etc/TZ
// (written by /etc/init.d/system from system.@system[0].timezone), which its libc reads. So
// when TZ is unset and /etc/localtime is missing, /etc/TZ decides; failing that, UTC.
func Local() *time.Location {
	_, env := os.LookupEnv("TZ")
	if env {
		return time.Local
	}
	if _, err := os.Stat("/etc/localtime"); err == nil {
		return time.Local
	}
	b, err := os.ReadFile("/etc/TZ")
	if err != nil {
		return time.Local
	}
	loc, err := FromPOSIX(strings.TrimSpace(string(b)))
	if err != nil {
		return time.Local
	}
	return loc
}

// FromPOSIX makes a Location from a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". Go
// reads such strings as the footer of a TZif file, so the string is wrapped in a TZif (version
// 2) file with no transitions, and Go's own rules apply DST.
func FromPOSIX(tz string) (*time.Location, error) {
	if tz == "" || strings.ContainsAny(tz, "\n\x00") || len(tz) > 128 {
		return nil, fmt.Errorf("TZ %q: not a POSIX TZ string", tz)
	}
	const unknown = "?" // zone name when Go cannot use the string
	var b bytes.Buffer
	block := func() {
		b.WriteString("TZif2")
		b.Write(make([]byte, 15))
		// isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
		for _, n := range []uint32{0, 0, 0, 0, 1, uint32(len(unknown) + 1)} {
			b.Write(binary.BigEndian.AppendUint32(nil, n))
		}
		b.Write([]byte{0, 0, 0, 0, 0, 0}) // one ttinfo: utoff 0, isdst 0, desigidx 0
		b.WriteString(unknown + "\x00")
	}
	block() // version 1 data block
	block() // version 2 data block: with no transition times, the same bytes
	b.WriteString("\n" + tz + "\n")
	loc, err := time.LoadLocationFromTZData(tz, b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("TZ %q: %v", tz, err)
	}
	// Go falls back to the file's one zone when it cannot read the string.
	for _, t := range []time.Time{time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)} {
		if name, _ := t.In(loc).Zone(); name == unknown {
			return nil, fmt.Errorf("TZ %q: not a POSIX TZ string Go can read", tz)
		}
	}
	return loc, nil
}
