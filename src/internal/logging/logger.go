package logging

import (
	"encoding"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// The daemon's own logger, in place of log/slog: slog (and encoding/json, which it imports)
// cost about 100 KB of a gzipped mipsle binary, for four levels and key=value lines that a few
// hundred lines do as well. The lines are byte for byte what slog's text handler writes
// (logger_test.go compares them), so logread filters, the tests and people's scripts see no
// change.

// Level is a log level, with slog's numbers (so "INFO+2" and friends keep their meaning).
type Level int

// The four levels airelay logs at.
const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

// ParseLevel reads the config's log_level (debug, info, warn, error; any case).
func ParseLevel(s string) (Level, bool) {
	switch {
	case strings.EqualFold(s, "debug"):
		return LevelDebug, true
	case strings.EqualFold(s, "info"):
		return LevelInfo, true
	case strings.EqualFold(s, "warn"):
		return LevelWarn, true
	case strings.EqualFold(s, "error"):
		return LevelError, true
	}
	return LevelInfo, false
}

// String is slog's name of the level: DEBUG, INFO, WARN, ERROR, or the nearest below with an
// offset ("WARN+2", "DEBUG-4").
func (l Level) String() string {
	name := func(base string, off Level) string {
		switch {
		case off > 0:
			return base + "+" + strconv.Itoa(int(off))
		case off < 0:
			return base + strconv.Itoa(int(off))
		}
		return base
	}
	switch {
	case l < LevelInfo:
		return name("DEBUG", l-LevelDebug)
	case l < LevelWarn:
		return name("INFO", l-LevelInfo)
	case l < LevelError:
		return name("WARN", l-LevelWarn)
	}
	return name("ERROR", l-LevelError)
}

// LevelVar is a level that a reload changes while the servers log.
type LevelVar struct{ v atomic.Int64 }

// NewLevel is a LevelVar set to l.
func NewLevel(l Level) *LevelVar {
	v := new(LevelVar)
	v.Set(l)
	return v
}

// Level is the level in force.
func (v *LevelVar) Level() Level { return Level(v.v.Load()) }

// Set changes it.
func (v *LevelVar) Set(l Level) { v.v.Store(int64(l)) }

// Logger writes one key=value line a record. A nil *Logger logs nothing.
type Logger struct {
	level  *LevelVar
	stamp  bool         // lines begin with time= and level= (stderr); syslog and journal keep both themselves
	w      [4]io.Writer // by severity: debug, info, warning, error
	closer io.Closer

	mu  *sync.Mutex // one Write at a time, as slog's handler does; shared with With's loggers
	pre []byte      // With's attributes, formatted: " k=v …"
}

// Text is a logger of slog text lines (time, level, msg, attributes) on w, one Write a line.
func Text(w io.Writer, level *LevelVar) *Logger {
	return &Logger{level: orInfo(level), stamp: true, w: [4]io.Writer{w, w, w, w}, closer: nopCloser{}, mu: new(sync.Mutex)}
}

func orInfo(level *LevelVar) *LevelVar {
	if level == nil {
		level = new(LevelVar)
	}
	return level
}

// Close ends the syslog socket, if there is one.
func (l *Logger) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

// With is a logger whose lines carry args (key, value pairs) after the message, as slog's
// Logger.With; it writes where l writes.
func (l *Logger) With(args ...any) *Logger {
	if l == nil {
		return nil
	}
	c := *l
	c.pre = appendAttrs(append([]byte(nil), l.pre...), args)
	return &c
}

// Enabled tells whether a record at lv would be written: callers check it before building
// arguments that cost allocations.
func (l *Logger) Enabled(lv Level) bool { return l != nil && lv >= l.level.Level() }

// Debug, Info, Warn and Error log msg with key, value pairs, as slog's methods of those names do.
func (l *Logger) Debug(msg string, args ...any) { l.log(LevelDebug, msg, args) }
func (l *Logger) Info(msg string, args ...any)  { l.log(LevelInfo, msg, args) }
func (l *Logger) Warn(msg string, args ...any)  { l.log(LevelWarn, msg, args) }
func (l *Logger) Error(msg string, args ...any) { l.log(LevelError, msg, args) }

func (l *Logger) log(lv Level, msg string, args []any) {
	if !l.Enabled(lv) {
		return
	}
	now := time.Now()
	// Formatted outside the lock, as slog does: a value's String or MarshalText that logs
	// itself must not deadlock.
	bp := bufs.Get().(*[]byte)
	b := l.format((*bp)[:0], now, lv, msg, args)
	l.mu.Lock()
	_, _ = l.w[index(lv)].Write(b)
	l.mu.Unlock()
	if cap(b) <= 4096 { // a huge line's buffer is not kept for the daemon's life
		*bp = b
		bufs.Put(bp)
	}
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// format appends the line to b.
func (l *Logger) format(b []byte, now time.Time, lv Level, msg string, args []any) []byte {
	if l.stamp {
		b = append(b, "time="...)
		b = appendMillis(b, now)
		b = append(b, " level="...)
		b = append(b, lv.String()...)
		b = append(b, ' ')
	}
	b = append(b, "msg="...)
	b = appendString(b, msg)
	b = append(b, l.pre...)
	return append(appendAttrs(b, args), '\n')
}

// appendAttrs writes key, value pairs as " k=v".
func appendAttrs(b []byte, args []any) []byte {
	for len(args) > 0 {
		key, ok := args[0].(string)
		switch {
		case ok && len(args) > 1:
			b = append(b, ' ')
			b = appendString(b, key)
			b = append(b, '=')
			b = appendValue(b, args[1])
			args = args[2:]
		default: // a value without a key: slog's !BADKEY
			b = append(b, " !BADKEY="...)
			b = appendValue(b, args[0])
			args = args[1:]
		}
	}
	return b
}

// index is the writer of lv's severity.
func index(lv Level) int {
	switch severity(lv) {
	case sevErr:
		return 3
	case sevWarning:
		return 2
	case sevInfo:
		return 1
	}
	return 0
}

// appendMillis is slog's time: RFC 3339 with exactly three decimals.
func appendMillis(b []byte, t time.Time) []byte {
	return t.Round(0).Truncate(time.Millisecond).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
}

// appendValue writes v as slog's text handler does: numbers, booleans and durations as they
// are, text marshalers by their text, byte slices quoted, anything else by fmt's %+v.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uintptr:
		return strconv.AppendUint(b, uint64(v), 10)
	case float32:
		return strconv.AppendFloat(b, float64(v), 'g', -1, 64)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case time.Duration:
		return append(b, v.String()...)
	case time.Time:
		return appendMillis(b, v)
	case encoding.TextMarshaler:
		return appendText(b, v)
	case []byte:
		return strconv.AppendQuote(b, string(v))
	}
	return appendString(b, fmt.Sprintf("%+v", v))
}

// appendText writes v's text. A MarshalText that panics (a nil pointer to a type with value
// methods, a *netip.Addr for one) writes what slog writes, "<nil>" or "!PANIC: …", instead of
// taking the daemon down for a log line; the lock the caller holds is released by its defer
// either way.
func appendText(b []byte, v encoding.TextMarshaler) (out []byte) {
	n := len(b)
	defer func() {
		if r := recover(); r != nil {
			if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
				out = appendString(b[:n], "<nil>")
				return
			}
			out = appendString(b[:n], fmt.Sprintf("!PANIC: %v", r))
		}
	}()
	text, err := v.MarshalText()
	if err != nil {
		return appendString(b, "!ERROR:"+err.Error())
	}
	return appendString(b, string(text))
}

// appendString quotes s when a reader could not tell where it ends: empty, or holding a space,
// '=', '"', a control character or invalid UTF-8 (slog's rule).
func appendString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' || c == '=' || c == '"' || c < 0x20 {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
