package config

import (
	"fmt"
	"os"
	"strings"
)

// KeysPath is where OpenWrt keeps the providers' API keys, apart from /etc/config/airelay so
// that LuCI (whose ACL grants the airelay config only) never reads them back. The init script
// hands them to the daemon through its private runtime copy (openwrt.RuntimeConfig).
const KeysPath = "/etc/config/airelay_keys"

// MaxKeyLen bounds one API key; real ones are under 200 bytes.
const MaxKeyLen = 4096

// LoadKeys reads a keys file: UCI sections of type key named after a provider section, each
// with one api_key option,
//
//	config key 'openai'
//		option api_key 'sk-…'
//
// and returns the keys by provider name. A missing file is no keys. Errors name the file, line
// and section, never the key.
func LoadKeys(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseKeys(path, data)
}

// ParseKeys is LoadKeys on text already read; name is what errors call it.
func ParseKeys(name string, data []byte) (map[string]string, error) {
	keys := map[string]string{}
	sec := ""
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
		}
		if strings.IndexByte(raw, 0) >= 0 {
			return nil, bad("NUL byte in the line")
		}
		toks, err := splitLine(raw)
		if err != nil {
			return nil, bad("%v", err) // the message names the quote, not the value
		}
		switch {
		case len(toks) == 0:
		case toks[0] == "package" && len(toks) == 2:
		case toks[0] == "config":
			if len(toks) != 3 || toks[1] != "key" || !ValidName(toks[2]) {
				return nil, bad("want: config key 'PROVIDER' (the provider's section name in /etc/config/airelay)")
			}
			sec = toks[2]
			if _, dup := keys[sec]; dup {
				return nil, bad("section '%s' appears twice", sec)
			}
			keys[sec] = ""
		case toks[0] == "option" && len(toks) == 3 && toks[1] == "api_key":
			if sec == "" {
				return nil, bad("option 'api_key' comes before any 'config key' line")
			}
			v := toks[2]
			switch {
			case len(v) > MaxKeyLen:
				return nil, bad("section '%s' option 'api_key': longer than %d bytes", sec, MaxKeyLen)
			case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
				return nil, bad("section '%s' option 'api_key': control characters in the key", sec)
			}
			keys[sec] = v
		default:
			return nil, bad("want 'config key' sections with 'option api_key' only")
		}
	}
	for p, k := range keys {
		if k == "" {
			delete(keys, p) // a section with no key (cleared) is no key
		}
	}
	return keys, nil
}
