package usage

import (
	"encoding/json"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/jsonw/jsonwtest"
)

func fileCases() []*fileDoc {
	row := Row{Day: "2026-12-01", Addr: "192.168.1.50", MAC: "02:00:00:00:00:50", Name: `Kids "tablet" <&>`, Provider: "openai",
		Counts: Counts{TokensIn: 1, TokensOut: math.MaxUint64, Requests: 1 << 50, BytesUp: 0, BytesDown: 12345678901234, Denied: 7}}
	return []*fileDoc{
		{},
		{Version: 1, Rows: []Row{}},
		{Version: 1, Saved: time.Date(2026, 12, 1, 12, 0, 0, 123, time.UTC), Rows: []Row{row, {Day: "2026-12-02", Addr: "fd00::1", Provider: "x\u2028\xff"}, {}}},
		{Version: -1, Saved: time.Unix(1700000000, 0).In(time.FixedZone("", -3*3600))},
	}
}

// TestFileJSONMatchesStd: the history file and the rows are written byte for byte as
// encoding/json wrote them, and read as encoding/json reads them.
func TestFileJSONMatchesStd(t *testing.T) {
	for _, doc := range fileCases() {
		jsonwtest.CheckEncode(t, doc, doc)
		b, _ := json.Marshal(doc)
		jsonwtest.CheckDecode[fileDoc](t, b)
	}
	jsonwtest.CheckRandom[fileDoc](t, 1, 500)
	jsonwtest.CheckRandom[Row](t, 2, 500)
}

// TestOldFileReads: a history file as the versions before jsonw saved it (encoding/json's
// Marshal of fileDoc) loads as it did, and a file saved now reads with encoding/json to what
// was saved: files on routers keep working across an upgrade and a downgrade.
func TestOldFileReads(t *testing.T) {
	dir := t.TempDir()
	// old → new: encoding/json writes, Load reads
	old := fileDoc{Version: 1, Saved: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), Rows: []Row{
		{Day: "2026-12-01", Addr: "192.168.1.50", MAC: "02:00:00:00:00:50", Provider: "openai", Counts: Counts{TokensIn: 100, TokensOut: 50, Requests: 1, BytesUp: 1000, BytesDown: 1000}},
		{Day: "2026-11-30", Addr: "192.168.1.60", Provider: "anthropic<&>", Counts: Counts{Requests: 2, Denied: 1}},
	}}
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "history.json")
	os.WriteFile(path, data, 0o600)
	b, reg, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	if aside, err := b.Load(path); err != nil || aside != "" {
		t.Fatalf("Load of an encoding/json file: %q %v", aside, err)
	}
	reg.Device(kid).SetMAC(net.HardwareAddr{2, 0, 0, 0, 0, 0x50})
	got := b.Rows(31, netip.Addr{})
	want := []Row{old.Rows[1], old.Rows[0]} // oldest first
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows of an encoding/json file:\n got %+v\nwant %+v", got, want)
	}
	if u := today(t, b, kid); u != old.Rows[0].Counts {
		t.Errorf("today from an encoding/json file: %+v", u)
	}

	// new → old: Save writes, encoding/json reads the same rows, and writes the same bytes
	use(reg, kid, "openai", 1, 2, 3)
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	var back fileDoc
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("encoding/json cannot read the saved file: %v\n%s", err, data)
	}
	if again, _ := json.Marshal(&back); string(again) != string(data) {
		t.Errorf("the saved file is not what encoding/json writes:\n got %s\nwant %s", data, again)
	}
	rows := map[string]Row{}
	for _, r := range back.Rows {
		rows[r.Day+" "+r.Provider] = r
	}
	if r := rows["2026-12-01 openai"]; back.Version != 1 || len(back.Rows) != 2 || r.Requests != 2 || r.TokensOut != 52 || r.MAC != "02:00:00:00:00:50" ||
		rows["2026-11-30 anthropic<&>"].Denied != 1 {
		t.Errorf("encoding/json read the saved file as %+v", back)
	}
}

// TestUnreadableFileRefused: a history file that does not read is set aside (never read in
// part, never overwritten) with an error naming the file and where it failed.
func TestUnreadableFileRefused(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"version":1,"rows":[{"day":"2026-12-01","addr":"192.168.1.50","provider":"openai","requests":-1}]}`, "rows[0].requests: want an unsigned integer, found -1"},
		{`{"version":1,"rows":[{"day":"2026-12-01","addr":"192.168.1.50","provider":"openai","requests":1.5}]}`, "rows[0].requests: want an unsigned integer, found 1.5"},
		{`{"version":"1","rows":[]}`, "version: want an integer, found a string"},
		{`{"version":1,"saved":"yesterday"}`, "saved: parsing time"},
		{`{"version":1,"rows":{}}`, "rows: want an array, found an object"},
		{`{"version":1,"rows":[]} {}`, "invalid character '{' after the document"},
		{`{"version":1,"rows":[{"day":"2026-12-01",]}`, "rows[0]: invalid character ']'"},
	} {
		path := filepath.Join(t.TempDir(), "history.json")
		os.WriteFile(path, []byte(c.doc), 0o600)
		b, _, _ := newBook(t, time.UTC, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
		aside, err := b.Load(path)
		if err == nil || aside == "" || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load = %q, %v; want it set aside with %q", c.doc, aside, err, c.want)
			continue
		}
		if kept, _ := os.ReadFile(aside); string(kept) != c.doc {
			t.Errorf("%s: the set-aside file holds %q", c.doc, kept)
		}
		if jsonwtest.CheckDecode[fileDoc](t, []byte(c.doc)) != nil {
			t.Errorf("%s: encoding/json reads it", c.doc)
		}
	}
}

// FuzzFileJSON: any bytes read as a history file as encoding/json reads them (or are refused
// as it refuses them), and what reads is written back as encoding/json writes it.
func FuzzFileJSON(f *testing.F) {
	for _, doc := range fileCases() {
		b, _ := json.Marshal(doc)
		f.Add(b)
	}
	f.Add([]byte(`{"VERSION":1,"rows":[{"day":"a","Day":"b"}],"rows":[{"addr":"x"},{}],"extra":{"a":[1,2,{"b":null}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if doc := jsonwtest.CheckDecode[fileDoc](t, data); doc != nil {
			jsonwtest.CheckEncode(t, doc, doc)
		}
	})
}
