// Package jsonw writes and reads the few JSON documents airelay has (/status, /history, the
// usage history file, the config state file, print-config and schema), without reflection: each
// type has its own small EncodeJSON and DecodeJSON methods built on a Writer and a Decoder.
//
//	b, err := jsonw.MarshalIndent(&st)   // what json.MarshalIndent(st, "", "  ") gives
//	err = jsonw.Unmarshal(b, &st)        // what json.Unmarshal(b, &st) accepts, and the same value
//
// Why not encoding/json: its reflection keeps much of package reflect alive in the binary (about
// 170 KiB of a mipsle airelay with the encoder and decoder), for a handful of documents of
// known shape, none of them on a request's path.
//
// The Writer's output is byte for byte what encoding/json produces for the same struct (strings
// escaped the same way, HTML characters, U+2028/U+2029 and invalid UTF-8 included; map keys
// sorted; nil slices and maps as null; omitempty left to the caller). The Decoder is strict like
// encoding/json: it accepts the same syntax, skips unknown fields, matches keys exactly or else
// case-insensitively, refuses numbers that do not fit and values of another type, and says where
// it failed. The tests of each type compare both with encoding/json.
//
// Size over speed: none of this is on a request's path, so the small methods every member
// calls are kept out of line (go:noinline) and the helpers take method expressions
// ((*T).EncodeJSON), not closures; inlined, they doubled the package's code in the binary.
// It must not grow a general (reflecting) encoder: a new document gets its own methods and its
// own equivalence test.
package jsonw

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Value is a type that writes itself as one JSON value.
type Value interface {
	EncodeJSON(w *Writer)
}

// Marshal is v as compact JSON, as json.Marshal gives it.
func Marshal(v Value) ([]byte, error) {
	w := Writer{}
	v.EncodeJSON(&w)
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// MarshalIndent is v as json.MarshalIndent(v, "", "  ") gives it.
func MarshalIndent(v Value) ([]byte, error) {
	w := Writer{indent: true}
	v.EncodeJSON(&w)
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// Writer appends JSON to a buffer: Begin/End of objects and arrays, Key before each member of
// an object, and a value method per kind. It puts the commas, and in the indented form the
// newlines and two spaces per level, where encoding/json puts them.
type Writer struct {
	b      []byte
	indent bool // the form of json.MarshalIndent(v, "", "  ")
	depth  int
	more   bool // the open object or array has a member already
	key    bool // a key was written: its value comes next
	err    error
}

// Fail records err (the first one only): Marshal returns it instead of the document.
func (w *Writer) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// pre starts a value: the comma and line break before it, unless it follows its key.
//
//go:noinline
func (w *Writer) pre() {
	if w.key {
		w.key = false
		return
	}
	if w.more {
		w.b = append(w.b, ',')
	}
	w.more = true
	if w.indent && w.depth > 0 {
		w.newline()
	}
}

func (w *Writer) newline() {
	w.b = append(w.b, '\n')
	for range w.depth {
		w.b = append(w.b, ' ', ' ')
	}
}

//go:noinline
func (w *Writer) begin(c byte) {
	w.pre()
	w.b = append(w.b, c)
	w.depth++
	w.more = false
}

//go:noinline
func (w *Writer) end(c byte) {
	w.depth--
	if w.more && w.indent {
		w.newline()
	}
	w.b = append(w.b, c)
	w.more = true
}

// BeginObject writes '{'; EndObject the matching '}'.
func (w *Writer) BeginObject() { w.begin('{') }
func (w *Writer) EndObject()   { w.end('}') }

// BeginArray writes '['; EndArray the matching ']'.
func (w *Writer) BeginArray() { w.begin('[') }
func (w *Writer) EndArray()   { w.end(']') }

// Key writes a member's name; its value is written next. It returns w, so that
// w.Key("id").String(id) reads as one member.
//
//go:noinline
func (w *Writer) Key(k string) *Writer {
	w.pre()
	w.b = AppendString(w.b, k)
	w.b = append(w.b, ':')
	if w.indent {
		w.b = append(w.b, ' ')
	}
	w.key = true
	return w
}

// String writes s as a JSON string (see AppendString).
//
//go:noinline
func (w *Writer) String(s string) {
	w.pre()
	w.b = AppendString(w.b, s)
}

// Uint writes u.
//
//go:noinline
func (w *Writer) Uint(u uint64) {
	w.pre()
	w.b = strconv.AppendUint(w.b, u, 10)
}

// Int writes i.
//
//go:noinline
func (w *Writer) Int(i int64) {
	w.pre()
	w.b = strconv.AppendInt(w.b, i, 10)
}

// Bool writes true or false.
//
//go:noinline
func (w *Writer) Bool(v bool) {
	w.pre()
	w.b = strconv.AppendBool(w.b, v)
}

// Null writes null.
//
//go:noinline
func (w *Writer) Null() {
	w.pre()
	w.b = append(w.b, "null"...)
}

// Time writes t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds, quoted); a time
// that has no RFC 3339 form (year past 9999) fails the document, as in encoding/json.
func (w *Writer) Time(t time.Time) {
	w.pre()
	b, err := t.MarshalJSON()
	if err != nil {
		w.Fail(err)
		b = []byte("null")
	}
	w.b = append(w.b, b...)
}

// Strings writes a []string: null when nil.
func (w *Writer) Strings(s []string) {
	if s == nil {
		w.Null()
		return
	}
	w.BeginArray()
	for _, v := range s {
		w.String(v)
	}
	w.EndArray()
}

// Slice writes s with enc for each element (a method expression: (*T).EncodeJSON): null when
// nil, as encoding/json does.
func Slice[T any](w *Writer, s []T, enc func(v *T, w *Writer)) {
	if s == nil {
		w.Null()
		return
	}
	w.BeginArray()
	for i := range s {
		enc(&s[i], w)
	}
	w.EndArray()
}

// Map writes m with its keys in order, enc for each value (as for Slice): null when nil, as
// encoding/json does.
func Map[V any](w *Writer, m map[string]V, enc func(v *V, w *Writer)) {
	if m == nil {
		w.Null()
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.BeginObject()
	for _, k := range keys {
		w.Key(k)
		v := m[k]
		enc(&v, w)
	}
	w.EndObject()
}

const hex = "0123456789abcdef"

// safe marks the ASCII bytes written as they are: printable, not '"' or '\\', and not '<', '>'
// or '&' (escaped so that a document pasted into HTML cannot open a tag).
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// AppendString appends s quoted as encoding/json quotes a string by default: \" \\ \b \f \n
// \r \t, other control bytes and <, >, & as \u00XX, U+2028 and U+2029 as \u2028 and \u2029,
// each byte of invalid UTF-8 as \ufffd.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
