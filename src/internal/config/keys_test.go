package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      string // part of the error; "" for none
	}{
		{"empty", "", map[string]string{}, ""},
		{"two", "config key 'openai'\n\toption api_key 'sk-1'\n\nconfig key anthropic\n\toption api_key \"sk-ant-2\"\n",
			map[string]string{"openai": "sk-1", "anthropic": "sk-ant-2"}, ""},
		{"uci's quote escape", "package airelay_keys\nconfig key 'x'\n\toption api_key 'a'\\''b'\n", map[string]string{"x": "a'b"}, ""},
		{"cleared section", "config key 'x'\nconfig key 'y'\n\toption api_key ''\n", map[string]string{}, ""},
		{"other section type", "config provider 'x'\n", nil, "keys:1: want: config key"},
		{"other option", "config key 'x'\n\toption host 'a'\n", nil, "keys:2: want 'config key' sections with 'option api_key' only"},
		{"option first", "\toption api_key 'SECRET'\n", nil, "keys:1: option 'api_key' comes before"},
		{"twice", "config key 'x'\nconfig key 'x'\n", nil, "keys:2: section 'x' appears twice"},
		{"bad name", "config key 'a-b'\n", nil, "keys:1: want: config key"},
		{"unterminated", "config key 'x'\n\toption api_key 'SECRET\n", nil, "keys:2: unterminated ' quote"},
		{"control", "config key 'x'\n\toption api_key \"SECRET\\\x01\"\n", nil, "keys:2: section 'x' option 'api_key': control characters"},
		{"long", "config key 'x'\n\toption api_key '" + strings.Repeat("S", MaxKeyLen+1) + "'\n", nil, "longer than 4096 bytes"},
	} {
		got, err := ParseKeys("keys", []byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("%s: the error shows the key: %v", tc.name, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestLoadKeysMissing(t *testing.T) {
	keys, err := LoadKeys(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(keys) != 0 {
		t.Errorf("missing file: %v %v", keys, err)
	}
	p := filepath.Join(t.TempDir(), "k")
	os.WriteFile(p, []byte("config key 'openai'\n\toption api_key 'sk'\n"), 0o600)
	if keys, err := LoadKeys(p); err != nil || keys["openai"] != "sk" {
		t.Errorf("LoadKeys: %v %v", keys, err)
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("config key 'openai'\n\toption api_key 'sk-1'\n"))
	f.Add([]byte("config key 'x'\n\toption api_key 'a'\\''b'\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeys("f", b)
		if err != nil {
			return
		}
		for p, k := range keys {
			if !ValidName(p) || k == "" || len(k) > MaxKeyLen || strings.ContainsAny(k, "\n\r\x00") {
				t.Fatalf("accepted %q = %q", p, k)
			}
		}
	})
}
