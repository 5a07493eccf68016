package openwrt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airelay/airelay/src/internal/jsonw/jsonwtest"
)

// TestStateJSONMatchesStd: the state file is written byte for byte as encoding/json wrote it,
// and read as encoding/json reads it.
func TestStateJSONMatchesStd(t *testing.T) {
	for _, st := range []*State{
		{}, {State: StateCurrent}, {State: StateFailClosed, Refused: true},
		{State: StateLastValid, Message: "serving the last valid config from 2026-12-01 <&>", Errors: "/etc/config/airelay: provider 'openai' option 'upstream': \"x\"\n\t\u2028\xff"},
	} {
		jsonwtest.CheckEncode(t, st, st)
		b, _ := json.Marshal(st)
		jsonwtest.CheckDecode[State](t, b)
	}
	jsonwtest.CheckRandom[State](t, 1, 300)
}

// TestStateFileRoundTrip: WriteState writes what encoding/json wrote, ReadState reads it back,
// and a state file that does not read is an error naming the file.
func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config-state")
	st := State{State: StateLastValid, Message: "m <x>", Errors: "e\n", Refused: true}
	if err := WriteState(path, st); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want, _ := json.Marshal(st)
	if string(data) != string(want)+"\n" {
		t.Errorf("state file %q, encoding/json %q", data, want)
	}
	if back, err := ReadState(path); err != nil || back != st {
		t.Errorf("ReadState = %+v, %v", back, err)
	}
	for _, doc := range []string{`{"state":"current","refused":"yes"}`, `{"state":`, `["current"]`} {
		os.WriteFile(path, []byte(doc), 0o600)
		if _, err := ReadState(path); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("%s: ReadState: %v", doc, err)
		}
	}
}

func FuzzStateJSON(f *testing.F) {
	f.Add([]byte(`{"state":"last_valid","message":"m","errors":"e","refused":true}`))
	f.Add([]byte(`{"STATE":"current","Refused":null,"other":[{},[],"",0,-1.5e3,true,false,null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if st := jsonwtest.CheckDecode[State](t, data); st != nil {
			jsonwtest.CheckEncode(t, st, st)
		}
	})
}
