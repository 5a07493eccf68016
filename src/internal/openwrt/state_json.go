package openwrt

import "github.com/airelay/airelay/src/internal/jsonw"

// The state file as JSON, in the form encoding/json gave it (state_json_test.go holds it to it).

// EncodeJSON writes st.
func (st *State) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("state").String(st.State)
	if st.Message != "" {
		w.Key("message").String(st.Message)
	}
	if st.Errors != "" {
		w.Key("errors").String(st.Errors)
	}
	if st.Refused {
		w.Key("refused").Bool(true)
	}
	w.EndObject()
}

var stateFields = jsonw.Fields{"state", "message", "errors", "refused"}

// DecodeJSON reads st.
func (st *State) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch stateFields.Name(name) {
		case "state":
			return d.String(&st.State)
		case "message":
			return d.String(&st.Message)
		case "errors":
			return d.String(&st.Errors)
		case "refused":
			return d.Bool(&st.Refused)
		}
		return d.Skip()
	})
}
