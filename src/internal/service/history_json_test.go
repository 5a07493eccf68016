package service

import (
	"encoding/json"
	"testing"

	"github.com/airelay/airelay/src/internal/jsonw/jsonwtest"
	"github.com/airelay/airelay/src/internal/usage"
)

// TestHistoryJSONMatchesStd: /history is written byte for byte as encoding/json wrote it, and
// read as encoding/json reads it.
func TestHistoryJSONMatchesStd(t *testing.T) {
	for _, h := range []*History{
		{}, {Days: 1, From: "2026-12-01", To: "2026-12-01", Rows: []usage.Row{}},
		{Days: 366, From: "2025-12-01", To: "2026-12-01", Rows: []usage.Row{
			{Day: "2026-12-01", Addr: "192.168.1.50", MAC: "02:00:00:00:00:50", Name: `Kids "tablet" <&>`, Provider: "openai",
				Counts: usage.Counts{TokensIn: 1, TokensOut: 1 << 63, Requests: 3, BytesUp: 4, BytesDown: 5, Denied: 6}},
			{Day: "2026-11-30", Addr: "fd00::1", Provider: "anthropic"},
		}},
	} {
		jsonwtest.CheckEncode(t, h, h)
		b, _ := json.MarshalIndent(h, "", "  ")
		jsonwtest.CheckDecode[History](t, b)
	}
	jsonwtest.CheckRandom[History](t, 1, 300)
}

func FuzzHistoryJSON(f *testing.F) {
	f.Add([]byte(`{"days":7,"from":"2026-11-25","to":"2026-12-01","rows":[{"day":"2026-12-01","addr":"192.168.1.50","provider":"openai","requests":1}]}`))
	f.Add([]byte(`{"Days":2147483648,"rows":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if h := jsonwtest.CheckDecode[History](t, data); h != nil {
			jsonwtest.CheckEncode(t, h, h)
		}
	})
}
