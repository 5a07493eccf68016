package config

import (
	"sort"
	"strconv"
	"strings"
)

// redacted is v as an error shows it, and the parts of v it hid. Errors reach the console,
// syslog, /status and LuCI, and a value is whatever a mistake put in an option: Google's docs
// write the key into the URL (…/v1beta?key=AIza…), which gets pasted whole into upstream; a
// key lands in the wrong option or on a line of its own; a proxy URL holds a password. So,
// whatever the option, what may be a credential is replaced by REDACTED: a URL's user info,
// its query and fragment, and every word that looks like an API key (looksLikeKey). The rest
// stays, so that the user still sees which value is meant. key: a word looked like a key.
func redacted(v string) (shown string, hidden []string, key bool) {
	rest, tail := v, ""
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		hidden = append(hidden, rest[i+1:])
		rest, tail = rest[:i], rest[i:i+1]+"REDACTED"
	}
	var b strings.Builder
	if i := strings.Index(rest, "://"); i >= 0 {
		b.WriteString(rest[:i+3])
		rest = rest[i+3:]
	}
	// The last '@', not the first after the host: a password may hold '/' or '@', and a
	// value that is no URL ('key@host') may hold one anywhere.
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		hidden = append(hidden, rest[:i])
		b.WriteString("REDACTED")
		rest = rest[i:]
	}
	keys := writeKeysRedacted(&b, rest)
	b.WriteString(tail)
	return b.String(), append(hidden, keys...), len(keys) > 0
}

// writeKeysRedacted writes s to b with every word that looks like a key replaced by REDACTED,
// and returns those words.
func writeKeysRedacted(b *strings.Builder, s string) (keys []string) {
	for s != "" {
		n := 0
		for n < len(s) && isWordByte(s[n]) {
			n++
		}
		switch {
		case n == 0:
			b.WriteByte(s[0])
			n = 1
		case looksLikeKey(s[:n]):
			keys = append(keys, s[:n])
			b.WriteString("REDACTED")
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return keys
}

// scrub removes from msg what redacted hid of the value msg is about: a message built from a
// value (a schedule's "unknown day '…'", a host:port's "'…' is neither an IP address nor a
// host name") may quote a part of it. Short parts are left: "user" or "a" would also cut the
// message's own words, and a part that short is no key (a proxy password is never quoted).
func scrub(msg string, hidden []string) string {
	sort.Slice(hidden, func(i, j int) bool { return len(hidden[i]) > len(hidden[j]) })
	for _, h := range hidden {
		if len(h) >= 8 {
			msg = strings.ReplaceAll(msg, h, "REDACTED")
		}
	}
	return msg
}

// keysRedacted is s with every word that looks like a key replaced by REDACTED, for a message
// that is not ours to word (go-uci's quotes the token it stopped at).
func keysRedacted(s string) string {
	var b strings.Builder
	writeKeysRedacted(&b, s)
	return b.String()
}

// isWordByte: the bytes API keys are written with (sk-proj-…, sk-ant-api03-…, AIzaSy…,
// xai-…, gsk_…, hex); any other byte ends a word.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// keyPrefixes start the keys of well-known providers; such a word is a key from 12 bytes on.
var keyPrefixes = [...]string{"sk-", "AIza", "xai-", "gsk_", "pplx-", "hf_", "r8_", "nvapi-", "csk-", "fw_"}

// looksLikeKey says whether a word may be an API key: it starts as a well-known provider's
// keys do, or it is as long and mixed as a random token (20 bytes or more, letters and
// digits). A word of a value that is no key is rarely both (names, days, hosts' labels); when
// one is, the error hides it and still names the option.
func looksLikeKey(w string) bool {
	if len(w) >= 12 {
		for _, p := range keyPrefixes {
			if strings.HasPrefix(w, p) {
				return true
			}
		}
	}
	if len(w) < 20 {
		return false
	}
	letter, digit := false, false
	for i := 0; i < len(w); i++ {
		c := w[i]
		letter = letter || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		digit = digit || '0' <= c && c <= '9'
	}
	return letter && digit
}

// quoted is a word of a line that lint could not place (a keyword, a section or option name)
// as its message quotes it: redacted, then quoted. A key pasted on a line of its own is read
// as an unknown keyword.
func quoted(w string) string {
	s, _, _ := redacted(w)
	return strconv.Quote(s)
}
