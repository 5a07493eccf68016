package openwrt

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"

	"github.com/airelay/airelay/src/internal/config"
)

// RuntimeConfig returns the UCI text src with the router's LAN addresses and LAN device put
// into the main section where lan_ipv4, lan_ipv6 or listen_device is missing or empty. A value
// the user wrote is kept. An invalid (zero) address leaves that option as it was. keys (from
// /etc/config/airelay_keys, by provider section name) become each provider's api_key, in place
// of one the file may still hold; keys for no provider section are returned as unused.
// Everything else is copied byte for byte.
//
// This is how the init script hands the router's addresses to the daemon: it writes the result
// to /var/run/airelay/airelay and runs `airelay run --config` on that copy. The copy is
// rewritten on every reload, so a new LAN address (interface trigger) or a uci commit reaches
// the daemon through one SIGHUP, without a restart.
func RuntimeConfig(src []byte, lan4, lan6 netip.Addr, device string, keys map[string]string) (out []byte, unused []string) {
	src = withKeys(src, keys, &unused)
	want := map[string]string{}
	if device != "" && config.CheckDevice(device) == nil {
		want["listen_device"] = device
	}
	if lan4.Is4() {
		want["lan_ipv4"] = lan4.String()
	}
	if lan6.Is6() && !lan6.Is4In6() {
		want["lan_ipv6"] = lan6.WithZone("").String()
	}
	if len(want) == 0 {
		return append([]byte(nil), src...), unused
	}
	lines := strings.SplitAfter(string(src), "\n")
	var buf bytes.Buffer
	header := -1 // index in lines of the main section's "config" line
	inMain := false
	drop := map[int]bool{}
	for i, l := range lines {
		toks := uciTokens(l)
		if len(toks) == 0 {
			continue
		}
		if toks[0] == "config" {
			inMain = len(toks) >= 2 && toks[1] == "airelay" && (len(toks) < 3 || toks[2] == "main")
			if inMain && header < 0 {
				header = i
			}
			continue
		}
		if !inMain || toks[0] != "option" || len(toks) < 2 {
			continue
		}
		if _, ok := want[toks[1]]; ok {
			if len(toks) >= 3 && toks[2] != "" {
				delete(want, toks[1]) // set by the user: theirs wins
			} else {
				drop[i] = true // "option lan_ipv4 ''": replaced below
			}
		}
	}
	add := func() {
		for _, k := range []string{"lan_ipv4", "lan_ipv6", "listen_device"} {
			if v, ok := want[k]; ok {
				buf.WriteString("\toption " + k + " '" + v + "'\n")
			}
		}
	}
	for i, l := range lines {
		if drop[i] && len(want) > 0 {
			continue
		}
		buf.WriteString(l)
		if i == header {
			if !strings.HasSuffix(l, "\n") {
				buf.WriteString("\n")
			}
			add()
		}
	}
	if header < 0 && len(want) > 0 {
		if buf.Len() > 0 && !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
			buf.WriteString("\n")
		}
		buf.WriteString("\nconfig airelay 'main'\n")
		add()
	}
	return buf.Bytes(), unused
}

// withKeys puts keys[name] as the api_key of each provider section name, dropping the api_key
// lines it had, and appends to *unused the names no provider section has (sorted).
func withKeys(src []byte, keys map[string]string, unused *[]string) []byte {
	if len(keys) == 0 {
		return src
	}
	found := map[string]bool{}
	var out bytes.Buffer
	prov := "" // provider section being copied, when it has a key
	for _, l := range strings.SplitAfter(string(src), "\n") {
		toks := uciTokens(l)
		if len(toks) > 0 && toks[0] == "config" {
			prov = ""
			if len(toks) >= 3 && toks[1] == "provider" {
				if _, ok := keys[toks[2]]; ok {
					prov = toks[2]
				}
			}
			out.WriteString(l)
			if prov != "" {
				if !strings.HasSuffix(l, "\n") {
					out.WriteString("\n")
				}
				out.WriteString("\toption api_key " + uciQuote(keys[prov]) + "\n")
				found[prov] = true
			}
			continue
		}
		if prov != "" && len(toks) >= 2 && toks[0] == "option" && toks[1] == "api_key" {
			continue
		}
		out.WriteString(l)
	}
	for name := range keys {
		if !found[name] {
			*unused = append(*unused, name)
		}
	}
	slices.Sort(*unused)
	return out.Bytes()
}

// uciQuote writes v as uci does: in single quotes, a quote as '\”.
func uciQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// uciTokens splits one UCI line into words, honouring '…' and "…" quoting and # comments. It is
// only as good as RuntimeConfig needs: the daemon's loader validates the result.
func uciTokens(line string) []string {
	var toks []string
	var cur strings.Builder
	in := false
	var q byte
	flush := func() {
		if in {
			toks = append(toks, cur.String())
			cur.Reset()
			in = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			q, in = c, true
		case c == '#' && !in:
			flush()
			return toks
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}
