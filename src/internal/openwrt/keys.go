package openwrt

import (
	"bytes"
	"slices"
	"strings"

	"github.com/airelay/airelay/src/internal/config"
)

// MoveKeys takes every provider's option api_key out of the UCI text cfg and returns the text
// without those lines, and keys with the moved ones added (a key already in keys wins: the keys
// file is the newer place). Every other byte of cfg is kept. moved lists the providers whose
// key went to the keys file, dropped those whose line went because the keys file already had
// a key, both sorted. A line that does not parse is kept as it is; the loader reports it.
func MoveKeys(cfg []byte, keys map[string]string) (out []byte, merged map[string]string, moved, dropped []string) {
	merged = make(map[string]string, len(keys))
	for p, k := range keys {
		merged[p] = k
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
			if _, ok := keys[prov]; ok {
				if !slices.Contains(dropped, prov) {
					dropped = append(dropped, prov)
				}
			} else {
				if toks[2] != "" {
					merged[prov] = toks[2]
				}
				if !slices.Contains(moved, prov) {
					moved = append(moved, prov)
				}
			}
			continue
		}
		b.WriteString(l)
	}
	slices.Sort(moved)
	slices.Sort(dropped)
	return b.Bytes(), merged, moved, dropped
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
