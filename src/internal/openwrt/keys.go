package openwrt

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/airelay/airelay/src/internal/config"
)

// Moved is what MoveKeys did with the keys of a config.
type Moved struct {
	Config []byte            // the config without its providers' api_key lines
	Keys   map[string]string // the keys file's keys with the moved ones added
	Moved  []string          // providers whose key went to the keys file
	Same   []string          // providers whose line went because the keys file holds the same key
	// Other holds, by provider, the keys of lines that went without reaching the keys file:
	// it already held another key for that provider (it wins: it is the newer place), or the
	// provider's api_key was set twice. Never drop them: save them (SavedKeys).
	Other map[string][]string
}

// MoveKeys takes every provider's option api_key out of the UCI text cfg and returns the text
// without those lines, and keys with the moved ones added (a key already in keys wins: the
// keys file is the newer place). Every other byte of cfg is kept, and every key of a line
// taken out is either in the result's Keys or in its Other. Lists are sorted. A line that does
// not parse is kept as it is; the loader reports it.
func MoveKeys(cfg []byte, keys map[string]string) Moved {
	m := Moved{Keys: make(map[string]string, len(keys))}
	for p, k := range keys {
		m.Keys[p] = k
	}
	addOther := func(p, k string) {
		if k == "" || slices.Contains(m.Other[p], k) {
			return
		}
		if m.Other == nil {
			m.Other = map[string][]string{}
		}
		m.Other[p] = append(m.Other[p], k)
	}
	var b bytes.Buffer
	prov := ""
	for _, l := range strings.SplitAfter(string(cfg), "\n") {
		toks, err := config.SplitLine(strings.TrimRight(l, "\n"))
		if err == nil && len(toks) > 0 && toks[0] == "config" {
			prov = ""
			if len(toks) == 3 && toks[1] == "provider" && config.ValidName(toks[2]) {
				prov = toks[2]
			}
		}
		if err == nil && prov != "" && len(toks) == 3 && toks[0] == "option" && toks[1] == "api_key" {
			k := toks[2]
			switch old, inFile := keys[prov]; {
			case inFile && old == k:
				if !slices.Contains(m.Same, prov) {
					m.Same = append(m.Same, prov)
				}
			case inFile:
				addOther(prov, k)
			default:
				// set twice in the config: the last line is the one in force and moves
				if prev := m.Keys[prov]; prev != "" && prev != k {
					addOther(prov, prev)
				}
				if k != "" {
					m.Keys[prov] = k
				}
				if !slices.Contains(m.Moved, prov) {
					m.Moved = append(m.Moved, prov)
				}
			}
			continue
		}
		b.WriteString(l)
	}
	for p, ks := range m.Other { // a key that moved after all is not "other"
		m.Other[p] = slices.DeleteFunc(ks, func(k string) bool { return k == m.Keys[p] })
		if len(m.Other[p]) == 0 {
			delete(m.Other, p)
		}
	}
	m.Config = b.Bytes()
	slices.Sort(m.Moved)
	slices.Sort(m.Same)
	return m
}

// SavedKeys renders keys a migration took out of cfgPath without putting them in keysPath
// (Moved.Other) as a block to append to the backup file beside the keys file: a comment
// saying when, from where and how to use one, then the keys in the keys file's own format.
func SavedKeys(other map[string][]string, cfgPath, keysPath string, now time.Time) []byte {
	names := make([]string, 0, len(other))
	for p := range other {
		names = append(names, p)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString("# airelay migrate-keys, " + now.UTC().Format(time.RFC3339) + ": API keys that " + cfgPath + " held besides\n")
	b.WriteString("# the ones kept in " + keysPath + " (which are in force). To use one instead:\n")
	b.WriteString("# uci set airelay_keys.PROVIDER=key; uci set airelay_keys.PROVIDER.api_key='…'; uci commit airelay_keys\n")
	for _, p := range names {
		for _, k := range other[p] {
			b.WriteString("config key '" + p + "'\n\toption api_key " + uciQuote(k) + "\n")
		}
	}
	b.WriteString("\n")
	return b.Bytes()
}

// KeysFile renders keys as the keys file uci would write (sections sorted by provider).
func KeysFile(keys map[string]string) []byte {
	names := make([]string, 0, len(keys))
	for p := range keys {
		names = append(names, p)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for i, p := range names {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("config key '" + p + "'\n\toption api_key " + uciQuote(keys[p]) + "\n")
	}
	return b.Bytes()
}
