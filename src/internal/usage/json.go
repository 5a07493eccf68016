package usage

import "github.com/airelay/airelay/src/internal/jsonw"

// The history file and the rows of /history as JSON, written and read with jsonw in the form
// encoding/json gave them (json_test.go holds them to it): files saved by older versions read
// the same.

// EncodeJSON writes r.
func (r *Row) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("day").String(r.Day)
	w.Key("addr").String(r.Addr)
	if r.MAC != "" {
		w.Key("mac").String(r.MAC)
	}
	if r.Name != "" {
		w.Key("name").String(r.Name)
	}
	w.Key("provider").String(r.Provider)
	c := &r.Counts
	w.Key("tokens_in").Uint(c.TokensIn)
	w.Key("tokens_out").Uint(c.TokensOut)
	w.Key("requests").Uint(c.Requests)
	w.Key("bytes_up").Uint(c.BytesUp)
	w.Key("bytes_down").Uint(c.BytesDown)
	w.Key("denied").Uint(c.Denied)
	w.EndObject()
}

var rowFields = jsonw.Fields{"day", "addr", "mac", "name", "provider",
	"tokens_in", "tokens_out", "requests", "bytes_up", "bytes_down", "denied"}

// DecodeJSON reads r.
func (r *Row) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch rowFields.Name(name) {
		case "day":
			return d.String(&r.Day)
		case "addr":
			return d.String(&r.Addr)
		case "mac":
			return d.String(&r.MAC)
		case "name":
			return d.String(&r.Name)
		case "provider":
			return d.String(&r.Provider)
		case "tokens_in":
			return d.Uint(&r.TokensIn)
		case "tokens_out":
			return d.Uint(&r.TokensOut)
		case "requests":
			return d.Uint(&r.Requests)
		case "bytes_up":
			return d.Uint(&r.BytesUp)
		case "bytes_down":
			return d.Uint(&r.BytesDown)
		case "denied":
			return d.Uint(&r.Denied)
		}
		return d.Skip()
	})
}

// EncodeRows writes rows (null when nil).
func EncodeRows(w *jsonw.Writer, rows []Row) {
	jsonw.Slice(w, rows, (*Row).EncodeJSON)
}

// DecodeRows reads an array of rows into *rows (null: nil).
func DecodeRows(d *jsonw.Decoder, rows *[]Row) error {
	return jsonw.DecodeSlice(d, rows, (*Row).DecodeJSON)
}

// EncodeJSON writes the history file.
func (f *fileDoc) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("version").Int(int64(f.Version))
	w.Key("saved").Time(f.Saved)
	w.Key("rows")
	EncodeRows(w, f.Rows)
	w.EndObject()
}

var fileFields = jsonw.Fields{"version", "saved", "rows"}

// DecodeJSON reads the history file.
func (f *fileDoc) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch fileFields.Name(name) {
		case "version":
			return d.Int(&f.Version)
		case "saved":
			return d.Time(&f.Saved)
		case "rows":
			return DecodeRows(d, &f.Rows)
		}
		return d.Skip()
	})
}
