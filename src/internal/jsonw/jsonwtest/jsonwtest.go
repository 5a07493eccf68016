// Package jsonwtest holds the types of airelay that write and read themselves with package
// jsonw to what encoding/json does with the same struct: random values of every field, the
// bytes written compared, the values read compared. Tests only: it imports encoding/json and
// reflect, which the daemon must not.
package jsonwtest

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/jsonw"
)

// Strings are the strings Fill picks from (besides random ones): everything encoding/json
// escapes, and what looks like other JSON.
var Strings = []string{
	"", "a", "openai", "192.168.1.50", "aa:bb:cc:00:00:01", `Kids "tablet"`, `back\slash`, "<script>&</script>",
	"\x00\x01\b\f\n\r\t\x1f\x7f", "é€😀", "\u2028\u2029", "\xff\xfe", "a\xc3", "\xed\xa0\x80", "\ufffd",
	`{"a":1}`, "null", "2024-05-06",
}

// Fill sets every field *v reaches to random values: strings from Strings or random bytes,
// numbers including their extremes, nil and empty slices and maps, nil pointers, times with
// nanoseconds and zones (and the zero time).
func Fill(r *rand.Rand, v any) {
	fill(r, reflect.ValueOf(v).Elem(), 0)
}

var timeType = reflect.TypeOf(time.Time{})

func fill(r *rand.Rand, v reflect.Value, depth int) {
	if v.Type() == timeType {
		var t time.Time
		switch r.Intn(4) {
		case 0: // zero
		case 1:
			t = time.Unix(r.Int63n(1<<34), 0).UTC()
		case 2:
			t = time.Unix(r.Int63n(1<<34), r.Int63n(1e9)).UTC()
		default:
			t = time.Unix(r.Int63n(1<<34), r.Int63n(1e9)).In(time.FixedZone("", (r.Intn(48)-24)*1800))
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(randString(r))
	case reflect.Bool:
		v.SetBool(r.Intn(2) == 1)
	case reflect.Int, reflect.Int64:
		n := [...]int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt32, r.Int63(), -r.Int63()}[r.Intn(8)]
		if v.Kind() == reflect.Int && (n > math.MaxInt32 || n < math.MinInt32) {
			n = int64(int32(n)) // the router's int has 32 bits
		}
		v.SetInt(n)
	case reflect.Uint64:
		v.SetUint([...]uint64{0, 1, math.MaxUint64, 1 << 50, r.Uint64(), uint64(r.Intn(1000))}[r.Intn(6)])
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(r, v.Index(i), depth+1)
		}
	case reflect.Slice:
		switch n := r.Intn(5); {
		case n == 0 || depth > 4:
			v.SetZero()
		case n == 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			s := reflect.MakeSlice(v.Type(), n-1, n-1)
			for i := 0; i < n-1; i++ {
				fill(r, s.Index(i), depth+1)
			}
			v.Set(s)
		}
	case reflect.Map:
		switch n := r.Intn(5); {
		case n == 0 || depth > 4:
			v.SetZero()
		case n == 1:
			v.Set(reflect.MakeMap(v.Type()))
		default:
			m := reflect.MakeMap(v.Type())
			for i := 0; i < n+2; i++ {
				k := reflect.New(v.Type().Key()).Elem()
				fill(r, k, depth+1)
				e := reflect.New(v.Type().Elem()).Elem()
				fill(r, e, depth+1)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		}
	case reflect.Pointer:
		if r.Intn(3) == 0 || depth > 4 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i), depth+1)
			}
		}
	default:
		panic("jsonwtest: cannot fill a " + v.Type().String())
	}
}

func randString(r *rand.Rand) string {
	if r.Intn(3) > 0 {
		return Strings[r.Intn(len(Strings))]
	}
	b := make([]byte, r.Intn(12))
	for i := range b {
		b[i] = byte(r.Intn(256))
	}
	return string(b)
}

// CheckEncode fails t unless v writes what encoding/json writes for std (v itself, or the
// struct v stands for), compact and indented.
func CheckEncode(t testing.TB, v jsonw.Value, std any) {
	t.Helper()
	want, werr := json.Marshal(std)
	got, gerr := jsonw.Marshal(v)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("Marshal differs from encoding/json's:\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
	}
	want, werr = json.MarshalIndent(std, "", "  ")
	got, gerr = jsonw.MarshalIndent(v)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("MarshalIndent differs from encoding/json's:\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
	}
}

// CheckDecode fails t unless data reads into a T as encoding/json reads it: both refuse it,
// or both read the same value. It returns that value (nil when refused).
func CheckDecode[T any, P interface {
	*T
	jsonw.Decodable
}](t testing.TB, data []byte) *T {
	t.Helper()
	want, got := new(T), new(T)
	werr := json.Unmarshal(data, want)
	gerr := jsonw.Unmarshal(data, P(got))
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: jsonw: %v; encoding/json: %v", data, gerr, werr)
	}
	if werr != nil {
		return nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: jsonw read\n%#v\nencoding/json\n%#v", data, got, want)
	}
	return got
}

// CheckRandomEncode writes n random Ts (Fill) with encoding/json and with jsonw and compares
// the bytes.
func CheckRandomEncode[T any, P interface {
	*T
	jsonw.Value
}](t *testing.T, seed int64, n int) {
	t.Helper()
	randoms(seed, n, func(v *T) { CheckEncode(t, P(v), v) })
}

// randoms calls check with n random Ts (Fill) made from seed.
func randoms[T any](seed int64, n int, check func(v *T)) {
	r := rand.New(rand.NewSource(seed))
	for i := 0; i < n; i++ {
		v := new(T)
		Fill(r, v)
		check(v)
	}
}

// CheckRandom writes n random Ts (Fill) with encoding/json and with jsonw, compares the bytes,
// and reads what encoding/json wrote back with jsonw and encoding/json, comparing the values.
func CheckRandom[T any, P interface {
	*T
	jsonw.Decodable
	jsonw.Value
}](t *testing.T, seed int64, n int) {
	t.Helper()
	randoms(seed, n, func(v *T) {
		CheckEncode(t, P(v), v)
		b, err := json.Marshal(v)
		if err != nil {
			return // a time encoding/json cannot write either: CheckEncode saw both refuse
		}
		CheckDecode[T, P](t, b)
		b, _ = json.MarshalIndent(v, "", "  ")
		CheckDecode[T, P](t, b)
	})
}
