package logging

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The logger's lines must be slog's text handler's, byte for byte: people's logread filters
// and scripts were written against them. The tests compare the two (slog stays in the tests;
// only the binary dropped it).

type named string

type stringer struct{}

func (stringer) String() string { return "a stringer" }

type badText struct{}

func (badText) MarshalText() ([]byte, error) { return nil, errors.New("no text") }

var when = time.Date(2026, 12, 4, 23, 30, 1, 987654321, time.FixedZone("X", 3600))

// valueCases are the kinds of values airelay logs, and the odd ones slog formats its own way.
var valueCases = []any{
	"plain", "", "two words", "a=b", `say "hi"`, `back\slash`, "tab\there", "nl\n", "del\x7f",
	"é ünïcode", "nbsp\u00a0x", "zero\u200bwidth", "bad\xffutf8", "\u2028", "emoji 🙂", "emoji🙂",
	0, -1, int8(-8), int16(300), int32(-70000), int64(1) << 62, uint(7), uint8(255), uint16(65535),
	uint32(1) << 31, ^uint64(0), uintptr(42),
	1.5, math.Copysign(0, -1), 1e21, 1e-7, float32(0.1), 3.0,
	true, false,
	1500 * time.Millisecond, time.Duration(0), 90 * time.Minute, -time.Nanosecond,
	when, when.Add(-987654321), time.Time{},
	netip.MustParseAddr("192.168.1.20"), netip.MustParseAddr("fe80::1%br-lan"),
	netip.MustParseAddrPort("[2001:db8::1]:443"), netip.Addr{},
	errors.New("dial tcp 1.2.3.4:443: connect: connection refused"), errors.New("x"),
	[]byte("bytes here"), []byte(nil), []string{"tls :8443", "http :8080"}, []string{},
	named("named string"), stringer{}, badText{}, nil, struct{ A, B int }{1, 2},
	map[string]int{"a": 1}, &struct{ X string }{"p"}, slog.LevelWarn,
}

// slogLine is what slog's text handler writes for the same record, with or without time and
// level (the syslog and journal targets drop both).
func slogLine(stamp bool, lv Level, msg string, args ...any) string {
	var out bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelDebug - 8}
	if !stamp {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		}
	}
	h := slog.NewTextHandler(&out, opts)
	r := slog.NewRecord(when, slog.Level(lv), msg, 0)
	r.Add(args...)
	_ = h.Handle(context.Background(), r)
	return out.String()
}

// ourLine is the same record through Logger.
func ourLine(stamp bool, lv Level, msg string, args ...any) string {
	var out bytes.Buffer
	l := Text(&out, NewLevel(LevelDebug-8))
	l.stamp = stamp
	b := l.format(nil, when, lv, msg, args)
	out.Write(b)
	return out.String()
}

func TestLinesAreSlogs(t *testing.T) {
	for _, stamp := range []bool{true, false} {
		for i, v := range valueCases {
			got, want := ourLine(stamp, LevelInfo, "m", "k", v), slogLine(stamp, LevelInfo, "m", "k", v)
			if got != want {
				t.Errorf("value %d (%T %#v), stamp %v:\n got %q\nwant %q", i, v, v, stamp, got, want)
			}
		}
		for _, msg := range []string{"ready", "", "gateway: device cut: it took no byte", "config: a=b", "x\x00y"} {
			for _, lv := range []Level{LevelDebug - 4, LevelDebug, LevelDebug + 1, LevelInfo, LevelInfo + 2, LevelWarn, LevelWarn - 1, LevelError, LevelError + 3} {
				got, want := ourLine(stamp, lv, msg), slogLine(stamp, lv, msg)
				if got != want {
					t.Errorf("msg %q level %d stamp %v:\n got %q\nwant %q", msg, lv, stamp, got, want)
				}
			}
		}
		// Several pairs, keys that need quoting, a value without a key, a key that is not a string.
		for _, args := range [][]any{
			{"device", "192.168.1.2", "provider", "openai", "status", 502, "took", 3 * time.Millisecond},
			{"a key", 1, "", 2},
			{"dangling"},
			{"k", 1, "dangling"},
			{42, "x"},
			{"k", 1, errors.New("e"), "v"},
		} {
			if got, want := ourLine(stamp, LevelWarn, "m", args...), slogLine(stamp, LevelWarn, "m", args...); got != want {
				t.Errorf("args %#v stamp %v:\n got %q\nwant %q", args, stamp, got, want)
			}
		}
	}
}

// FuzzLinesAreSlogs: any message and string values are written as slog writes them (quoting
// decides whether a reader can split the line again, so it is where a difference would hurt).
func FuzzLinesAreSlogs(f *testing.F) {
	for _, s := range []string{"", "a b", "x=y", "\"", "\\", "\xff", "\u00a0", "\u2028", "ok", "\x7f", "é"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, msg, v string) {
		for _, stamp := range []bool{true, false} {
			if got, want := ourLine(stamp, LevelInfo, msg, v, v, "k", []byte(v)), slogLine(stamp, LevelInfo, msg, v, v, "k", []byte(v)); got != want {
				t.Fatalf("msg %q value %q:\n got %q\nwant %q", msg, v, got, want)
			}
		}
	})
}

func TestLevels(t *testing.T) {
	var out bytes.Buffer
	level := NewLevel(LevelWarn)
	l := Text(&out, level)
	l.Info("not written")
	l.Warn("written")
	level.Set(LevelDebug)
	if !l.Enabled(LevelDebug) {
		t.Error("debug not enabled after Set(LevelDebug)")
	}
	l.Debug("now written")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "level=WARN msg=written") || !strings.HasSuffix(lines[1], "level=DEBUG msg=\"now written\"") {
		t.Errorf("lines: %q", lines)
	}
	var none *Logger
	none.Error("a nil logger logs nothing", "k", 1) // and does not crash
	if none.Enabled(LevelError) || none.Close() != nil {
		t.Error("a nil logger is enabled or fails to close")
	}
	for _, tc := range []struct {
		in   string
		want Level
		ok   bool
	}{
		{"debug", LevelDebug, true}, {"INFO", LevelInfo, true}, {"Warn", LevelWarn, true},
		{"error", LevelError, true}, {"loud", LevelInfo, false}, {"", LevelInfo, false}, {"warning", LevelInfo, false},
	} {
		if got, ok := ParseLevel(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("ParseLevel(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
		var sl slog.Level
		if err := sl.UnmarshalText([]byte(tc.in)); tc.ok && (err != nil || Level(sl) != tc.want) {
			t.Errorf("slog reads %q as %v %v, ParseLevel as %v", tc.in, sl, err, tc.want)
		}
	}
}

// TestOneLineAllocations: a line costs no more allocations than slog's for the same call,
// below the level in force and at it (how many the arguments' boxing takes depends on the
// Go release's escape analysis: none with 1.26, some with 1.23).
func TestOneLineAllocations(t *testing.T) {
	var out, sout bytes.Buffer
	out.Grow(1 << 20)
	sout.Grow(1 << 20)
	l := Text(&out, NewLevel(LevelInfo))
	sl := slog.New(slog.NewTextHandler(&sout, nil))
	dev, prov := "192.168.1.2", "openai"
	for _, tc := range []struct {
		what      string
		ours, std func()
	}{
		{"a debug line with debug off", func() { l.Debug("off", "device", dev) }, func() { sl.Debug("off", "device", dev) }},
		{"an info line", func() { l.Info("gateway: stream cut", "device", dev, "provider", prov) },
			func() { sl.Info("gateway: stream cut", "device", dev, "provider", prov) }},
	} {
		ours, std := testing.AllocsPerRun(100, tc.ours), testing.AllocsPerRun(100, tc.std)
		t.Logf("%s: %v allocations (slog %v)", tc.what, ours, std)
		if ours > std {
			t.Errorf("%s: %v allocations, slog's %v", tc.what, ours, std)
		}
	}
}

type panicText struct{}

func (panicText) MarshalText() ([]byte, error) { panic("marshal broke") }

// TestPanickingValues: a value whose MarshalText panics (a nil pointer to a type with value
// methods, like a nil *netip.Addr; or a marshaler that breaks) is written as slog writes it,
// "<nil>" or "!PANIC: …", and the daemon goes on: slog recovered the panic, and a logger that
// does not takes the whole daemon down for one log line.
func TestPanickingValues(t *testing.T) {
	for _, v := range []any{(*netip.Addr)(nil), (*netip.Prefix)(nil), panicText{}} {
		var out bytes.Buffer
		l := Text(&out, NewLevel(LevelDebug))
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%T: logging it panicked: %v", v, r)
				}
			}()
			l.Info("m", "k", v, "after", 1)
		}()
		want := slogLine(true, LevelInfo, "m", "k", v, "after", 1)
		_, want, _ = strings.Cut(want, " level=") // the time is not when's
		if _, got, _ := strings.Cut(out.String(), " level="); got != want {
			t.Errorf("%T: got %q, want %q", v, got, want)
		}
		l.Info("next") // the lock is free again
		if !strings.HasSuffix(out.String(), "msg=next\n") {
			t.Errorf("%T: no line after it: %q", v, out.String())
		}
	}
}

// selfLogging is a value whose String logs a line itself (a type that reports its own
// trouble): the outer line must still be written, not deadlock on the logger's lock.
type selfLogging struct{ l *Logger }

func (s selfLogging) String() string { s.l.Warn("inner"); return "outer value" }

func TestValueThatLogs(t *testing.T) {
	var out bytes.Buffer
	l := Text(&out, NewLevel(LevelInfo))
	done := make(chan struct{})
	go func() { l.Info("outer", "v", selfLogging{l}); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a value that logs while being formatted deadlocked the logger")
	}
	got := out.String()
	if !strings.Contains(got, "msg=inner") || !strings.Contains(got, `msg=outer v="outer value"`) {
		t.Errorf("lines: %q", got)
	}
}

// TestWithIsSlogs: With's attributes come after the message and before the line's own, nested
// Withs in order, as slog's Logger.With writes them.
func TestWithIsSlogs(t *testing.T) {
	var ours, std bytes.Buffer
	l, err := New("journal", &ours, NewLevel(LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	l.With("role", "tls", "n", 1).With("who", "a b").Info("m", "k", 2)
	noStamp := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}
	slog.New(slog.NewTextHandler(&std, &slog.HandlerOptions{ReplaceAttr: noStamp})).
		With("role", "tls", "n", 1).With("who", "a b").Info("m", "k", 2)
	if want := "<6>" + std.String(); ours.String() != want {
		t.Errorf("got %q, want %q", ours.String(), want)
	}
	var none *Logger
	if none.With("k", 1) != nil {
		t.Error("With of a nil logger is not nil")
	}
}
