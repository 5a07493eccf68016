package config

import (
	"errors"
	"os"
	"slices"
	"strings"
)

// LoadFailClosed reads a config that may not pass and returns the table it means when read
// strictly, for a router that has no valid config to serve instead (a fresh install edited
// wrongly): the names stay intercepted and the devices the broken parts concern are refused,
// told where the problem is, rather than let through. err lists every problem (nil: the file
// passed, and t is what Load returns). extra, when set, adds problems Load does not know of
// (a listener the daemon's user may not bind), as *Error naming section and option; they are
// treated alike.
//
// The rule, for each problem:
//   - a single-valued option with a bad value takes its default (a listener its default
//     address); a list keeps its good values;
//   - a client section with any problem denies all its devices; one in its mac, ip or network
//     also denies every device no section matches (the ones it was meant for cannot be told
//     apart from the others);
//   - a provider section with any problem stays intercepted, and every device is refused on it;
//   - a problem in main, in a line that cannot be read, or in a section of an unknown type
//     makes default_access deny;
//   - when no enabled provider can be read at all, the built-in config's providers are
//     intercepted instead, and every device is refused.
//
// Only a file that cannot be read (err is then an I/O error) returns a nil table.
func LoadFailClosed(path string, extra func(*Table) []error) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return FailClosed(path, data, extra)
}

// FailClosed is LoadFailClosed on text already read; name is what errors call it.
func FailClosed(name string, data []byte, extra func(*Table) []error) (*Table, error) {
	drop := map[optionKey]bool{}
	seen := map[string]bool{}
	var all []*Error
	var t *Table
	// Each pass drops the options the last one found bad; a default can bring up a new
	// problem (two listeners on one address), so it goes on until no new option is dropped.
	for pass := 0; pass < 16; pass++ {
		var errs []*Error
		t, errs = build(name, data, drop)
		if t != nil && extra != nil {
			for _, e := range extra(t) {
				var ce *Error
				if !errors.As(e, &ce) {
					ce = &Error{File: name, Msg: e.Error(), anywhere: true}
				}
				errs = append(errs, ce)
			}
		}
		grew := false
		for _, e := range errs {
			if k := e.Error(); !seen[k] {
				seen[k] = true
				all = append(all, e)
			}
			if k := (optionKey{e.Section, e.Option}); e.Option != "" && !drop[k] {
				drop[k], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	if len(all) == 0 {
		return t, nil
	}
	if t == nil || !anyEnabled(t) {
		// The structure itself did not read, or no provider did: serve the built-in
		// providers' names, every device refused, rather than intercept nothing.
		if t, _ = LoadEmbedded(); t == nil {
			t = &Table{}
		}
		t.Source = name
		for _, e := range all {
			e.anywhere = true
		}
	}
	harden(t, all)
	return t, joinErrors(all)
}

func anyEnabled(t *Table) bool {
	for _, p := range t.Providers {
		if p.Enabled {
			return true
		}
	}
	return false
}

// harden applies LoadFailClosed's rule to t for the problems errs.
func harden(t *Table, errs []*Error) {
	var anywhere, lines []string
	clients := map[string]*Client{}
	for _, c := range t.Clients {
		clients[c.ID] = c
	}
	for _, e := range errs {
		why := e.local()
		lines = append(lines, e.Error())
		c, p := clients[e.Section], t.Provider(e.Section)
		switch {
		case e.anywhere || e.Section == "":
			anywhere = addWhy(anywhere, why)
		case c != nil:
			c.Access = Deny
			c.Invalid = joinWhy(c.Invalid, why)
			if mayMatch(e.Option) {
				anywhere = addWhy(anywhere, why)
			}
		case p != nil:
			p.Invalid = joinWhy(p.Invalid, why)
		default: // main, another 'airelay' section, a section left unread (a provider without a name)
			anywhere = addWhy(anywhere, why)
		}
	}
	if len(anywhere) > 0 {
		t.Main.DefaultAccess = Deny
		t.Main.Invalid = strings.Join(anywhere, ", ")
	}
	t.FailClosed = strings.Join(lines, "\n")
}

// mayMatch reports whether a problem with option of a client section may have cost it a
// device it was meant for: one in mac, ip or network, a line that could not be read (""), or
// a name no client option is near (`list macs`), which may have been one of them.
func mayMatch(option string) bool {
	switch option {
	case "mac", "ip", "network", "":
		return true
	}
	s := lookupSection("client")
	if s.option(option) != nil {
		return false
	}
	known := make([]string, len(s.Options))
	for i, o := range s.Options {
		known[i] = o.Name
	}
	switch nearest(option, known) {
	case "", "mac", "ip", "network":
		return true
	}
	return false
}

// joinWhy adds the place b to the list a, once.
func joinWhy(a, b string) string {
	if a == "" {
		return b
	}
	return strings.Join(addWhy(strings.Split(a, ", "), b), ", ")
}

func addWhy(list []string, why string) []string {
	if slices.Contains(list, why) {
		return list
	}
	return append(list, why)
}

// local is what a device is told of the problem: where it is (section and option), never the
// value or what is wrong with it. The value is anything a mistake put there (a key, a proxy
// password: redacted, but only as well as it can be recognised), a problem that concerns
// every device is told to each (and to any web page that reaches the gateway), and what is
// wrong is for whoever looks after the router, whose log and status have it whole. No file
// or line either: the copy of the config the daemon reads numbers its lines differently from
// the user's file.
func (e *Error) local() string {
	switch {
	case e.Section != "" && e.Option != "":
		return "section '" + e.Section + "' option '" + e.Option + "'"
	case e.Section != "":
		return "section '" + e.Section + "'"
	case e.Line > 0:
		return "a line outside any section"
	}
	return "the file as a whole"
}
