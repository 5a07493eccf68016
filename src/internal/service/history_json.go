package service

import (
	"github.com/airelay/airelay/src/internal/jsonw"
	"github.com/airelay/airelay/src/internal/usage"
)

// The /history document as JSON, in the form encoding/json gave it (history_json_test.go
// holds it to it): written by the daemon, read by `airelay history`.

// EncodeJSON writes h.
func (h *History) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("days").Int(int64(h.Days))
	w.Key("from").String(h.From)
	w.Key("to").String(h.To)
	w.Key("rows")
	usage.EncodeRows(w, h.Rows)
	w.EndObject()
}

var historyFields = jsonw.Fields{"days", "from", "to", "rows"}

// DecodeJSON reads h.
func (h *History) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch historyFields.Name(name) {
		case "days":
			return d.Int(&h.Days)
		case "from":
			return d.String(&h.From)
		case "to":
			return d.String(&h.To)
		case "rows":
			return usage.DecodeRows(d, &h.Rows)
		}
		return d.Skip()
	})
}
