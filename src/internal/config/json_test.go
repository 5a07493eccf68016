package config

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/airelay/airelay/src/internal/jsonw/jsonwtest"
)

// stdIndented is what json.Encoder with SetIndent("", "  ") wrote, as print-config --json and
// schema --json did.
func stdIndented(t *testing.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEffectiveJSONMatchesStd: print-config --json is byte for byte what encoding/json wrote,
// for the full test config, the embedded default, and random sections (nil and empty option
// maps and lists, keys to sort, characters to escape).
func TestEffectiveJSONMatchesStd(t *testing.T) {
	data, err := os.ReadFile("testdata/full.uci")
	if err != nil {
		t.Fatal(err)
	}
	full, err := LoadBytes("testdata/full.uci", data)
	if err != nil {
		t.Fatal(err)
	}
	def, err := LoadBytes("default", embedded)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Effective{full.Effective(), def.Effective(), {}, {Sections: []EffectiveSection{}},
		{Sections: []EffectiveSection{{Type: "client", Name: "<kid>", Options: map[string][]string{"z": nil, "a": {}, "m": {"x", "\u2028&"}}}, {}}}} {
		var got bytes.Buffer
		if err := e.WriteJSON(&got); err != nil {
			t.Fatal(err)
		}
		if want := stdIndented(t, e); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("print-config --json:\n%s\nencoding/json:\n%s", got.Bytes(), want)
		}
		jsonwtest.CheckEncode(t, e, e)
	}
	jsonwtest.CheckRandomEncode[Effective](t, 1, 300)
	jsonwtest.CheckRandomEncode[Section](t, 2, 300)
}

// TestSchemaJSONMatchesStd: schema --json is byte for byte what encoding/json wrote.
func TestSchemaJSONMatchesStd(t *testing.T) {
	var got bytes.Buffer
	if err := WriteSchemaJSON(&got); err != nil {
		t.Fatal(err)
	}
	want := stdIndented(t, struct {
		Sections []Section `json:"sections"`
	}{Schema})
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("schema --json:\n%s\nencoding/json:\n%s", got.Bytes(), want)
	}
	for _, s := range []schemaDoc{nil, {}, {{Options: []Option{{}, {Values: []string{}, Min: -1, Max: 1 << 62}}}, {}}} {
		jsonwtest.CheckEncode(t, s, struct {
			Sections []Section `json:"sections"`
		}{s})
	}
}
