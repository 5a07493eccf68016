package jsonw

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tree is a JSON value as encoding/json decodes it into an any with UseNumber: map[string]any,
// []any, string, json.Number, bool, nil. Its EncodeJSON and DecodeJSON are what the tests hold
// against encoding/json, over every shape JSON has.
type tree struct{ v any }

func (t tree) EncodeJSON(w *Writer) { encodeAny(w, t.v) }

func encodeAny(w *Writer, v any) {
	switch v := v.(type) {
	case nil:
		w.Null()
	case bool:
		w.Bool(v)
	case string:
		w.String(v)
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			w.Int(i)
		} else if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			w.Uint(u)
		} else {
			panic("not an integer: " + v) // normalize leaves none
		}
	case []any:
		Slice(w, v, func(e *any, w *Writer) { encodeAny(w, *e) })
	case map[string]any:
		Map(w, v, func(e *any, w *Writer) { encodeAny(w, *e) })
	default:
		panic("unexpected type")
	}
}

// normalize turns numbers that are not integers into strings (the Writer writes no floats).
func normalize(v any) any {
	switch v := v.(type) {
	case json.Number:
		// integers as strconv writes them stay numbers ("-0" does not)
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil && strconv.FormatInt(i, 10) == string(v) {
			return v
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil && strconv.FormatUint(u, 10) == string(v) {
			return v
		}
		return string(v)
	case []any:
		for i := range v {
			v[i] = normalize(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = normalize(v[k])
		}
	}
	return v
}

// depth is how deep v nests.
func depth(v any) int {
	n := 0
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			n = max(n, depth(e))
		}
	case map[string]any:
		for _, e := range v {
			n = max(n, depth(e))
		}
	default:
		return 0
	}
	return n + 1
}

func (t *tree) DecodeJSON(d *Decoder) error {
	switch d.peek() {
	case '{':
		m := map[string]any{}
		err := d.Object(func(name []byte) error {
			k := string(name)
			var e tree
			if err := e.DecodeJSON(d); err != nil {
				return err
			}
			m[k] = e.v
			return nil
		})
		t.v = m
		return err
	case '[':
		a := []any{}
		err := d.Array(func(int) error {
			var e tree
			err := e.DecodeJSON(d)
			a = append(a, e.v)
			return err
		})
		t.v = a
		return err
	case '"':
		var s string
		err := d.String(&s)
		t.v = s
		return err
	case 't', 'f':
		var b bool
		err := d.Bool(&b)
		t.v = b
		return err
	case 'n':
		if !d.Null() {
			return d.syntax("in literal null")
		}
		t.v = nil
		return nil
	}
	raw, err := d.Raw()
	t.v = json.Number(raw)
	return err
}

func stdDecode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if !json.Valid(data) { // Decoder reads one value of a stream; Unmarshal wants one only
		return nil, errors.New("not valid")
	}
	return v, nil
}

// skipper reads any value with Skip.
type skipper struct{}

func (skipper) DecodeJSON(d *Decoder) error { return d.Skip() }

var docs = []string{
	`null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `12345678901234567890`, `-9223372036854775808`,
	`1.5`, `1e3`, `1E+3`, `-1.25e-7`, `""`, `"a"`, `{}`, `[]`, ` [ ] `, "\t{\n}\r\n",
	`{"a":1,"b":[1,2,{"c":null}],"d":{"e":"f"},"g":[],"h":{}}`,
	`[[[[[]]]],[{}],{"":""}]`,
	`"\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00"`,
	`"\ud83d"`, `"\ud83dx"`, `"\ude00"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`,
	"\"\xff\xfe\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", `"é€😀"`, "\"\u2028\u2029\"",
	`{"a":1,"a":2}`, `{"A":1,"a":2}`,
	// not JSON
	``, ` `, `{`, `}`, `[`, `]`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a" 1}`,
	`[1 2]`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `Infinity`, `tru`, `nul`,
	`nulll`, `truex`, `"abc`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01\"", "\"\t\"", `'a'`,
	`1 2`, `{} {}`, `[] x`, `"\'"`, "\x00", `[1,2]]`, `{"a":1}}`, `{"a":[}`, `[{]`, `[-]`,
	`["a",]`, `{,}`, `[,]`, `{"a":1 "b":2}`,
	strings.Repeat(`[{"a":`, 4999) + `[]` + strings.Repeat(`}]`, 4999), strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
}

// TestSkipMatchesValid: Skip accepts exactly what json.Valid accepts.
func TestSkipMatchesValid(t *testing.T) {
	for _, doc := range docs {
		err := Unmarshal([]byte(doc), skipper{})
		if (err == nil) != json.Valid([]byte(doc)) {
			t.Errorf("%q: Skip: %v; json.Valid: %v", doc, err, json.Valid([]byte(doc)))
		}
	}
}

// TestDecodeMatchesStd: every document reads to what encoding/json reads, and is refused when
// encoding/json refuses it.
func TestDecodeMatchesStd(t *testing.T) {
	for _, doc := range docs {
		checkDecode(t, []byte(doc))
	}
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	want, werr := stdDecode(data)
	var got tree
	gerr := Unmarshal(data, &got)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%q: jsonw: %v; encoding/json: %v", data, gerr, werr)
	}
	if gerr == nil && !reflect.DeepEqual(got.v, want) {
		t.Fatalf("%q: jsonw read %#v; encoding/json %#v", data, got.v, want)
	}
}

// TestEncodeMatchesStd: the Writer writes every shape as json.Marshal and json.MarshalIndent
// do.
func TestEncodeMatchesStd(t *testing.T) {
	for _, doc := range docs {
		checkEncode(t, []byte(doc))
	}
	// nil and empty slices and maps, which JSON text alone cannot tell apart
	for _, v := range []any{
		[]any(nil), []any{}, map[string]any(nil), map[string]any{},
		map[string]any{"z": []any(nil), "a": map[string]any(nil), "m": []any{}, "<&>": "<&>"},
		[]any{[]any{}, map[string]any{}, []any{[]any{}}},
	} {
		checkEncodeValue(t, v)
	}
}

func checkEncode(t *testing.T, data []byte) {
	t.Helper()
	v, err := stdDecode(data)
	if err != nil {
		return
	}
	checkEncodeValue(t, normalize(v))
}

func checkEncodeValue(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(tree{v})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%#v: Marshal\n got %s (%v)\nwant %s", v, got, err, want)
	}
	if depth(v) > 100 {
		return // indented, the document grows with the square of its depth: seconds at 10000
	}
	want, _ = json.MarshalIndent(v, "", "  ")
	got, err = MarshalIndent(tree{v})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%#v: MarshalIndent\n got %s (%v)\nwant %s", v, got, err, want)
	}
}

// strs are strings with everything encoding/json escapes.
var strs = []string{
	"", "plain", `"quoted" \back\slash/`, "<script>&amp;</script>", "\b\f\n\r\t\v\x00\x01\x1f\x7f",
	"é€😀", "\u2028\u2029\u202a", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"\ufffd", "key 'single'", strings.Repeat("ab<", 100),
}

func TestAppendStringMatchesStd(t *testing.T) {
	for _, s := range strs {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestNumbers(t *testing.T) {
	w := Writer{}
	w.BeginArray()
	for _, i := range []int64{0, -1, math.MinInt64, math.MaxInt64} {
		w.Int(i)
	}
	w.Uint(math.MaxUint64)
	w.Bool(true)
	w.EndArray()
	want, _ := json.Marshal([]any{int64(0), int64(-1), int64(math.MinInt64), int64(math.MaxInt64), uint64(math.MaxUint64), true})
	if !bytes.Equal(w.b, want) {
		t.Errorf("got %s, want %s", w.b, want)
	}
}

// timed is a struct with a time, for Time against encoding/json.
type timed struct {
	T time.Time `json:"t"`
}

func (v *timed) EncodeJSON(w *Writer) {
	w.BeginObject()
	w.Key("t").Time(v.T)
	w.EndObject()
}

func (v *timed) DecodeJSON(d *Decoder) error {
	return d.Object(func(name []byte) error {
		if (Fields{"t"}).Name(name) == "t" {
			return d.Time(&v.T)
		}
		return d.Skip()
	})
}

func TestTime(t *testing.T) {
	for _, tm := range []time.Time{
		{}, time.Unix(1700000000, 123456789).UTC(), time.Unix(1700000000, 0).In(time.FixedZone("x", 5*3600+1800)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)),
	} {
		v := timed{tm}
		want, werr := json.Marshal(&v)
		got, gerr := Marshal(&v)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Errorf("%v: got %s (%v), want %s (%v)", tm, got, gerr, want, werr)
		}
	}
	for _, doc := range []string{
		`{"t":"2024-05-06T07:08:09.5Z"}`, `{"t":"2024-05-06T07:08:09+02:00"}`, `{"t":null}`, `{"T":"2024-05-06T07:08:09Z"}`,
		`{"t":"2024-05-06"}`, `{"t":5}`, `{"t":{}}`, `{"t":"\u0032024-05-06T07:08:09Z"}`, `{"t":"2024-13-06T07:08:09Z"}`,
	} {
		var want, got timed
		werr := json.Unmarshal([]byte(doc), &want)
		gerr := Unmarshal([]byte(doc), &got)
		if (werr == nil) != (gerr == nil) || !want.T.Equal(got.T) {
			t.Errorf("%s: got %v (%v), want %v (%v)", doc, got.T, gerr, want.T, werr)
		}
	}
}

// TestErrorsSayWhere: an error names the member and the byte.
func TestErrorsSayWhere(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"t":"yesterday"}`, `t: parsing time`},
		{`{"t":[1,2}`, `t: invalid character '}' after an array element (at byte 9)`},
		{`{"t":"2024-05-06T07:08:09Z"} x`, `invalid character 'x' after the document (at byte 29)`},
		{`{"t":"2024-05-06T07:08:09Z"`, `unexpected end of the document after a member's value (at byte 27)`},
		{`[]`, `want an object, found an array (at byte 0)`},
	} {
		var v timed
		err := Unmarshal([]byte(c.doc), &v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %s", c.doc, err, c.want)
		}
	}
	var v tree
	err := Unmarshal([]byte(`{"a":[1,{"b":x}]}`), &v)
	if want := `a[1].b: invalid character 'x' looking for a value (at byte 13)`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestDepthLimit(t *testing.T) {
	for _, n := range []int{maxDepth, maxDepth + 1} {
		doc := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		err := Unmarshal(doc, skipper{})
		if (err == nil) != json.Valid(doc) {
			t.Errorf("depth %d: Skip: %v; json.Valid: %v", n, err, json.Valid(doc))
		}
	}
}

func TestFields(t *testing.T) {
	f := Fields{"tokens_in", "bytes", "k"}
	for _, c := range []struct{ in, want string }{
		{"tokens_in", "tokens_in"}, {"TOKENS_IN", "tokens_in"}, {"Bytes", "bytes"}, {"\u212a", "k"}, // Kelvin sign folds to k
		{"tokensin", ""}, {"", ""},
	} {
		if got := f.Name([]byte(c.in)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzDecode: any bytes are read as encoding/json reads them (or refused when it refuses),
// Skip agrees with json.Valid, and what reads writes back as encoding/json writes it.
func FuzzDecode(f *testing.F) {
	for _, doc := range docs {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := Unmarshal(data, skipper{}); (err == nil) != json.Valid(data) {
			t.Fatalf("%q: Skip: %v; json.Valid: %v", data, err, json.Valid(data))
		}
		checkDecode(t, data)
		checkEncode(t, data)
	})
}

// FuzzString: any string is written as encoding/json writes it, and reads back as
// encoding/json reads that.
func FuzzString(f *testing.F) {
	for _, s := range strs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		got := AppendString(nil, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		checkDecode(t, got)
	})
}
