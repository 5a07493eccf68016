package config

import (
	"fmt"
	"strconv"
	"strings"
)

// lint checks the file's shape line by line before go-uci reads it, because go-uci drops a file
// with an unknown keyword without a word and reports quoting errors without a line number. It
// returns errors (the file cannot be read as meant: bad lines, and names airelay does not
// know, which would otherwise be ignored without a word: a misspelt `option acess 'deny'` must
// never leave a device allowed) and warnings (read, probably not meant).
//
// go-uci reads values more narrowly than uci(1) writes them: it rejects an empty value
// (option x ”), which means "off" for options whose default is not empty, and it keeps the
// backslashes of `'it'\”s'`, which is how uci writes a value with a quote in it. So lint
// hands go-uci a canonical text: every line rewritten as `KEYWORD NAME 'VALUE'`, and a value
// go-uci cannot carry as written replaced by a placeholder (NUL and its index in subst) that
// the loader swaps back. go-uci still reads the structure: sections, names, lists and order.
// A line lint refuses is left out of that text; a refused 'config' line becomes a section of
// a type no one reads, so the options under it join no other section.
func lint(name string, data []byte) (errs []*Error, warns []string, subst []string, cleaned []byte, where lineIndex) {
	where = lineIndex{}
	var sec *Section   // schema of the current section; nil when unknown or before the first
	var secName string // for messages
	seen := map[string]int{}
	unnamed := map[string]int{}
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		line := i + 1
		bad := func(section, option, format string, args ...any) {
			errs = append(errs, &Error{File: name, Line: line, Section: section, Option: option, Msg: fmt.Sprintf(format, args...)})
		}
		// A line that cannot be read at all may have been anything, a 'config' line among
		// them: it belongs to no section (LoadFailClosed then refuses every device it may
		// have been about), unless it starts as an option of the current one.
		unreadable := func(format string, args ...any) {
			if f := strings.Fields(raw); secName != "" && len(f) > 0 && (f[0] == "option" || f[0] == "list") {
				bad(secName, "", format, args...)
				return
			}
			errs = append(errs, &Error{File: name, Line: line, Msg: fmt.Sprintf(format, args...), anywhere: true})
		}
		if strings.IndexByte(raw, 0) >= 0 {
			lines[i] = ""
			unreadable("NUL byte in the line")
			continue
		}
		toks, err := splitLine(raw)
		lines[i] = ""
		if err != nil {
			unreadable("%v", err)
			continue
		}
		if len(toks) == 0 {
			continue
		}
		switch toks[0] {
		case "package":
			if len(toks) != 2 {
				unreadable("'package' takes one name")
			}
			// dropped: go-uci reads only a quoted name, and `uci export` writes it bare
		case "config":
			clear(seen)
			if len(toks) < 2 || len(toks) > 3 || !ValidName(toks[1]) || len(toks) == 3 && !ValidName(toks[2]) {
				switch {
				case len(toks) < 2 || len(toks) > 3:
					unreadable("want: config TYPE ['NAME']")
				case !ValidName(toks[1]):
					unreadable("section type %s: use letters, digits and '_' only", quoted(toks[1]))
				default:
					unreadable("section name %s: use letters, digits and '_' only", quoted(toks[2]))
				}
				sec, secName = nil, fmt.Sprintf("line %d", line)
				lines[i] = "config " + unreadSection
				continue
			}
			sec = lookupSection(toks[1])
			secName = fmt.Sprintf("@%s[%d]", toks[1], unnamed[toks[1]])
			unnamed[toks[1]]++
			lines[i] = "config " + toks[1]
			if len(toks) == 3 {
				secName = toks[2]
				lines[i] += " '" + toks[2] + "'"
			}
			where.note(secName, "", "", line)
			if sec == nil {
				e := &Error{File: name, Line: line, Section: secName, anywhere: true,
					Msg: fmt.Sprintf("no section type '%s'%s; airelay reads %s sections", toks[1], didYouMean(toks[1], sectionTypes()), quoteList(sectionTypes()))}
				errs = append(errs, e)
			}
		case "option", "list":
			if len(toks) != 3 {
				unreadable("want: %s NAME 'VALUE'", toks[0])
				continue
			}
			if secName == "" {
				unreadable("%s %s comes before any 'config' line", toks[0], quoted(toks[1]))
				continue
			}
			if !ValidName(toks[1]) {
				bad(secName, "", "%s name %s: use letters, digits and '_' only", toks[0], quoted(toks[1]))
				continue
			}
			v := toks[2]
			if v == "" || strings.ContainsAny(v, "'\\") {
				v = placeholder(len(subst))
				subst = append(subst, toks[2])
			}
			lines[i] = toks[0] + " " + toks[1] + " '" + v + "'"
			where.note(secName, toks[1], toks[2], line)
			if sec == nil {
				continue // its section is refused as a whole
			}
			o := sec.option(toks[1])
			if o == nil {
				bad(secName, toks[1], "%s", sec.unknownOption(toks[1]))
				continue
			}
			if toks[0] == "list" && !o.List {
				bad(secName, toks[1], "takes one value: write 'option', not 'list'")
			}
			if toks[0] == "option" {
				if seen[toks[1]] > 0 {
					warns = append(warns, fmt.Sprintf("%s:%d: section '%s': option %q is set again; the last value wins", name, line, secName, toks[1]))
				}
				seen[toks[1]]++
			}
		default:
			unreadable("unknown keyword %s (want config, option, list or package)", quoted(toks[0]))
		}
	}
	return errs, warns, subst, []byte(strings.Join(lines, "\n")), where
}

// lineIndex finds the line a problem the loader reports is on: by section, option and value,
// else the option's last line, else the section's 'config' line.
type lineIndex map[[3]string]int

func (w lineIndex) note(section, option, value string, line int) {
	if option == "" {
		if _, seen := w[[3]string{section}]; seen {
			return // a section written twice (merged): its first line
		}
	}
	w[[3]string{section, option, value}] = line
	w[[3]string{section, option}] = line
}

func (w lineIndex) find(section, option, value string) int {
	for _, k := range [...][3]string{{section, option, value}, {section, option}, {section}} {
		if n := w[k]; n > 0 {
			return n
		}
	}
	return 0
}

// unreadSection is the section type lint gives a 'config' line it refused, so that the lines
// under it stay apart; no schema has it.
const unreadSection = "_unreadable"

// unknownOption says why name is not an option of s, and what may have been meant.
func (s *Section) unknownOption(name string) string {
	known := make([]string, len(s.Options))
	for i, o := range s.Options {
		known[i] = o.Name
	}
	msg := fmt.Sprintf("'%s' sections have no such option", s.Type)
	if hint := didYouMean(name, known); hint != "" {
		return msg + hint
	}
	for i := range Schema {
		if o := Schema[i].option(name); o != nil {
			return msg + fmt.Sprintf(" (it is an option of '%s' sections)", Schema[i].Type)
		}
	}
	return msg
}

// sectionTypes are the section types people write; runtime ones (runtime_network, which the
// init script writes into the runtime copy) are read but never suggested.
func sectionTypes() []string {
	var out []string
	for i := range Schema {
		if !Schema[i].Runtime {
			out = append(out, Schema[i].Type)
		}
	}
	return out
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// didYouMean returns " (did you mean 'x'?)" for the known name nearest to name when it is
// close (a typo: a letter missing, added, changed or two swapped, a third of the name at
// most), else "".
func didYouMean(name string, known []string) string {
	if best := nearest(name, known); best != "" {
		return " (did you mean '" + best + "'?)"
	}
	return ""
}

// nearest is the known name name is a typo of, or "".
func nearest(name string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		d := editDistance(strings.ToLower(name), k)
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" || bestD*3 > max(len(name), len(best)) {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: insertions, deletions,
// substitutions and swaps of two neighbours, each 1.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
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
