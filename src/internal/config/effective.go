package config

import (
	"fmt"
	"io"
	"strings"

	"github.com/airelay/airelay/src/internal/egress"
)

// Effective is the config as airelay understood it: every option of every section, defaults
// filled in, secrets redacted. print-config shows it; it is what a reload actually applied.
type Effective struct {
	Sections []EffectiveSection `json:"sections"`
}

// EffectiveSection is one section of Effective.
type EffectiveSection struct {
	Type    string              `json:"type"`
	Name    string              `json:"name"`
	Options map[string][]string `json:"options"`
}

// record notes the values an option was read with.
func (s sec) record(o *Option, vals []string) {
	t := s.l.t
	var es *EffectiveSection
	for i := range t.effective.Sections {
		if t.effective.Sections[i].Name == s.name && t.effective.Sections[i].Type == s.schema.Type {
			es = &t.effective.Sections[i]
		}
	}
	if es == nil {
		t.effective.Sections = append(t.effective.Sections, EffectiveSection{Type: s.schema.Type, Name: s.name, Options: map[string][]string{}})
		es = &t.effective.Sections[len(t.effective.Sections)-1]
	}
	if o.Type == TSecret {
		red := make([]string, len(vals))
		for i, v := range vals {
			red[i] = Secret{v}.String()
		}
		vals = red
	} else if o.Type == TEgress {
		red := make([]string, len(vals))
		for i, v := range vals {
			red[i] = v
			if spec, err := egress.ParseSpec(v); err == nil {
				red[i] = spec.String()
			} else if strings.Contains(v, "@") {
				red[i] = "REDACTED"
			}
		}
		vals = red
	}
	es.Options[o.Name] = vals
}

// Effective returns the config as understood.
func (t *Table) Effective() *Effective { return &t.effective }

// WriteUCI prints the effective config in UCI syntax, options in schema order.
func (e *Effective) WriteUCI(w io.Writer) error {
	var b strings.Builder
	for i, s := range e.Sections {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(s.Name, "@") {
			fmt.Fprintf(&b, "config %s\n", s.Type)
		} else {
			fmt.Fprintf(&b, "config %s '%s'\n", s.Type, s.Name)
		}
		for _, o := range lookupSection(s.Type).Options {
			vals, ok := s.Options[o.Name]
			if !ok {
				continue
			}
			if !o.List {
				v := ""
				if len(vals) > 0 {
					v = vals[len(vals)-1]
				}
				fmt.Fprintf(&b, "\toption %s %s\n", o.Name, uciQuote(v))
				continue
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "\tlist %s %s\n", o.Name, uciQuote(v))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func uciQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
