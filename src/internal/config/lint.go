package config

import (
	"fmt"
	"strconv"
	"strings"
)

// lint checks the file's shape line by line before go-uci reads it, because go-uci drops a file
// with an unknown keyword without a word and reports quoting errors without a line number. It
// returns errors (the file cannot be read as meant) and warnings (read, probably not meant).
//
// go-uci reads values more narrowly than uci(1) writes them: it rejects an empty value
// (option x ”), which means "off" for options whose default is not empty, and it keeps the
// backslashes of `'it'\”s'`, which is how uci writes a value with a quote in it. So lint
// hands go-uci a canonical text: every line rewritten as `KEYWORD NAME 'VALUE'`, and a value
// go-uci cannot carry as written replaced by a placeholder (NUL and its index in subst) that
// the loader swaps back. go-uci still reads the structure: sections, names, lists and order.
func lint(name string, data []byte) (errs []error, warns []string, subst []string, cleaned []byte) {
	var sec *Section   // schema of the current section; nil when unknown or before the first
	var secName string // for messages
	seen := map[string]int{}
	unnamed := map[string]int{}
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		line := i + 1
		if strings.IndexByte(raw, 0) >= 0 {
			errs = append(errs, fmt.Errorf("%s:%d: NUL byte in the line", name, line))
			continue
		}
		toks, err := splitLine(raw)
		lines[i] = ""
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %v", name, line, err))
			continue
		}
		if len(toks) == 0 {
			continue
		}
		switch toks[0] {
		case "package":
			if len(toks) != 2 {
				errs = append(errs, fmt.Errorf("%s:%d: 'package' takes one name", name, line))
			}
			// dropped: go-uci reads only a quoted name, and `uci export` writes it bare
		case "config":
			if len(toks) < 2 || len(toks) > 3 {
				errs = append(errs, fmt.Errorf("%s:%d: want: config TYPE ['NAME']", name, line))
				sec = nil
				continue
			}
			sec = lookupSection(toks[1])
			secName = fmt.Sprintf("@%s[%d]", toks[1], unnamed[toks[1]])
			unnamed[toks[1]]++
			if !ValidName(toks[1]) {
				errs = append(errs, fmt.Errorf("%s:%d: section type %q: use letters, digits and '_' only", name, line, toks[1]))
			}
			lines[i] = "config " + toks[1]
			if len(toks) == 3 {
				secName = toks[2]
				if !ValidName(toks[2]) {
					errs = append(errs, fmt.Errorf("%s:%d: section name %q: use letters, digits and '_' only", name, line, toks[2]))
				}
				lines[i] += " '" + toks[2] + "'"
			}
			if sec == nil {
				warns = append(warns, fmt.Sprintf("%s:%d: section type %q is unknown and ignored", name, line, toks[1]))
			}
			clear(seen)
		case "option", "list":
			if len(toks) != 3 {
				errs = append(errs, fmt.Errorf("%s:%d: want: %s NAME 'VALUE'", name, line, toks[0]))
				continue
			}
			if secName == "" {
				errs = append(errs, fmt.Errorf("%s:%d: %s %q comes before any 'config' line", name, line, toks[0], toks[1]))
				continue
			}
			if !ValidName(toks[1]) {
				errs = append(errs, fmt.Errorf("%s:%d: %s name %q: use letters, digits and '_' only", name, line, toks[0], toks[1]))
				continue
			}
			v := toks[2]
			if v == "" || strings.ContainsAny(v, "'\\") {
				v = placeholder(len(subst))
				subst = append(subst, toks[2])
			}
			lines[i] = toks[0] + " " + toks[1] + " '" + v + "'"
			if sec == nil {
				continue
			}
			o := sec.option(toks[1])
			if o == nil {
				warns = append(warns, fmt.Sprintf("%s:%d: section '%s': option %q is unknown and ignored", name, line, secName, toks[1]))
				continue
			}
			if toks[0] == "list" && !o.List {
				errs = append(errs, fmt.Errorf("%s:%d: section '%s': %q takes one value: write 'option', not 'list'", name, line, secName, toks[1]))
			}
			if toks[0] == "option" {
				if seen[toks[1]] > 0 {
					warns = append(warns, fmt.Sprintf("%s:%d: section '%s': option %q is set again; the last value wins", name, line, secName, toks[1]))
				}
				seen[toks[1]]++
			}
		default:
			errs = append(errs, fmt.Errorf("%s:%d: unknown keyword %q (want config, option, list or package)", name, line, toks[0]))
		}
	}
	return errs, warns, subst, []byte(strings.Join(lines, "\n"))
}

// placeholder stands for subst[i] in the text go-uci reads. A NUL cannot come from the file
// (lint rejects it), so a value that starts with one is always a placeholder.
func placeholder(i int) string { return "\x00" + strconv.Itoa(i) }

// unplace returns the value a placeholder stands for, or v itself.
func unplace(v string, subst []string) string {
	if len(v) < 2 || v[0] != 0 {
		return v
	}
	i, err := strconv.Atoi(v[1:])
	if err != nil || i < 0 || i >= len(subst) {
		return v
	}
	return subst[i]
}

// SplitLine splits one UCI line into its words the way uci(1) reads them (quotes, '\” and
// escapes undone, a # comment dropped). Callers outside the loader use it to edit UCI text
// without losing what it means.
func SplitLine(s string) ([]string, error) { return splitLine(s) }

// splitLine splits a UCI line into words: bare, 'single' or "double" quoted (with \ escapes in
// double quotes and bare words), up to a # that starts a comment.
func splitLine(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			return toks, nil
		default:
			var b strings.Builder
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' {
				switch q := s[i]; q {
				case '\'':
					j := strings.IndexByte(s[i+1:], '\'')
					if j < 0 {
						return nil, fmt.Errorf("unterminated ' quote")
					}
					b.WriteString(s[i+1 : i+1+j])
					i += j + 2
				case '"':
					i++
					for {
						if i >= len(s) {
							return nil, fmt.Errorf("unterminated \" quote")
						}
						if s[i] == '\\' && i+1 < len(s) {
							b.WriteByte(s[i+1])
							i += 2
							continue
						}
						if s[i] == '"' {
							i++
							break
						}
						b.WriteByte(s[i])
						i++
					}
				case '\\':
					if i+1 < len(s) {
						b.WriteByte(s[i+1])
						i += 2
					} else {
						i++
					}
				default:
					b.WriteByte(q)
					i++
				}
			}
			toks = append(toks, b.String())
		}
	}
	return toks, nil
}

// ValidName reports whether s is a UCI name: one or more letters, digits or '_'. Section and
// option names are, and so are the firewall zone names that stand in nft defines.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
