package config

import (
	"io"

	"github.com/airelay/airelay/src/internal/jsonw"
)

// print-config --json and schema --json, written with jsonw in the form encoding/json's
// indenting Encoder gave them (json_test.go holds them to it).

// WriteJSON prints the effective config as JSON.
func (e *Effective) WriteJSON(w io.Writer) error {
	return writeIndented(w, e)
}

// WriteSchemaJSON prints Schema as JSON: {"sections": [...]}, what `airelay schema --json`
// prints and the LuCI views are checked against.
func WriteSchemaJSON(w io.Writer) error {
	return writeIndented(w, schemaDoc(Schema))
}

func writeIndented(w io.Writer, v jsonw.Value) error {
	b, err := jsonw.MarshalIndent(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// EncodeJSON writes e.
func (e *Effective) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("sections")
	jsonw.Slice(w, e.Sections, (*EffectiveSection).EncodeJSON)
	w.EndObject()
}

// EncodeJSON writes s.
func (s *EffectiveSection) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("type").String(s.Type)
	w.Key("name").String(s.Name)
	w.Key("options")
	jsonw.Map(w, s.Options, func(v *[]string, w *jsonw.Writer) { w.Strings(*v) })
	w.EndObject()
}

// schemaDoc is the document of schema --json.
type schemaDoc []Section

// EncodeJSON writes the schema document.
func (s schemaDoc) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("sections")
	jsonw.Slice(w, s, (*Section).EncodeJSON)
	w.EndObject()
}

// EncodeJSON writes s.
func (s *Section) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("type").String(s.Type)
	if s.Name != "" {
		w.Key("name").String(s.Name)
	}
	w.Key("doc").String(s.Doc)
	w.Key("options")
	jsonw.Slice(w, s.Options, (*Option).EncodeJSON)
	if s.Runtime {
		w.Key("runtime").Bool(true)
	}
	w.EndObject()
}

// EncodeJSON writes o.
func (o *Option) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("name").String(o.Name)
	w.Key("type").String(string(o.Type))
	if o.List {
		w.Key("list").Bool(true)
	}
	w.Key("default").String(o.Default)
	if len(o.Values) > 0 {
		w.Key("values").Strings(o.Values)
	}
	if o.Min != 0 {
		w.Key("min").Int(o.Min)
	}
	if o.Max != 0 {
		w.Key("max").Int(o.Max)
	}
	if o.Ref != "" {
		w.Key("ref").String(o.Ref)
	}
	w.Key("doc").String(o.Doc)
	w.EndObject()
}
