package gateway

import (
	"bytes"
	"net/url"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/h1"
)

// Placeholders are the keys a device sends when it has none of its own: SDKs refuse to start
// without one, so people type one of these. Under key_policy 'fill' they count as no key.
// Matching ignores case and surrounding space, and accepts each word with an "sk-" or
// "sk-ant-" in front ("sk-placeholder", "sk-ant-dummy").
var Placeholders = []string{
	"", "x", "xx", "xxx", "-", "none", "null", "nil", "empty", "dummy", "placeholder",
	"key", "apikey", "api-key", "api_key", "your-api-key", "your_api_key", "changeme",
	"test", "airelay",
}

// IsPlaceholder reports whether a key sent by a device stands for "no key".
func IsPlaceholder(k string) bool { return isPlaceholder(k) }

func isPlaceholder[S string | []byte](k S) bool {
	for len(k) > 0 && isSpace(k[0]) {
		k = k[1:]
	}
	for len(k) > 0 && isSpace(k[len(k)-1]) {
		k = k[:len(k)-1]
	}
	if len(k) > 3 && foldEq(k[:3], "sk-") {
		k = k[3:]
		if len(k) > 4 && foldEq(k[:4], "ant-") {
			k = k[4:]
		}
	}
	for _, p := range Placeholders {
		if foldEq(k, p) {
			return true
		}
	}
	return false
}

// foldEq reports whether k equals the lower-case ASCII p, ignoring ASCII case.
func foldEq[S string | []byte](k S, p string) bool {
	if len(k) != len(p) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// isKeyHeader reports whether a field may carry a device's key.
func isKeyHeader(name []byte) bool {
	return h1.EqualFold(name, "authorization") || h1.EqualFold(name, "x-api-key") || h1.EqualFold(name, "x-goog-api-key")
}

// deviceHasKey reports whether the device sent a real key: any auth header or query parameter
// that carries a credential (isKeyParam) and is not a placeholder.
func deviceHasKey(r *h1.Request) bool {
	for _, h := range r.Headers {
		v := h.Value
		switch {
		case h1.EqualFold(h.Name, "authorization"):
			// "Bearer KEY", "Basic …": the credential is what follows the scheme.
			if i := bytes.IndexByte(v, ' '); i >= 0 {
				v = v[i+1:]
			} else if foldEq(v, "bearer") { // "Bearer " with the space trimmed
				v = nil
			}
		case h1.EqualFold(h.Name, "x-api-key"), h1.EqualFold(h.Name, "x-goog-api-key"):
		default:
			continue
		}
		if !isPlaceholder(v) {
			return true
		}
	}
	if v, ok := queryKey(r.Query); ok {
		s := string(v)
		if u, err := url.QueryUnescape(s); err == nil {
			s = u
		}
		if !isPlaceholder(s) {
			return true
		}
	}
	return false
}

// routerKey reports whether p's key goes on a request, as p.KeyPolicy says. When it does, every
// other credential of the device goes (the three headers and the query parameters isKeyParam
// names, in any spelling), so two
// keys never reach a provider. A provider without an api_key passes the device's own.
func routerKey(p *config.Provider, r *h1.Request) bool {
	if !p.APIKey.Set() || p.KeyPolicy == config.KeyPass {
		return false
	}
	return p.KeyPolicy != config.KeyFill || !deviceHasKey(r)
}

// appendKeyHeader appends p's key in the header its auth names.
func appendKeyHeader(b []byte, p *config.Provider) []byte {
	switch p.Auth {
	case config.AuthXAPIKey:
		b = append(b, "X-Api-Key: "...)
	case config.AuthXGoogAPIKey:
		b = append(b, "X-Goog-Api-Key: "...)
	default:
		b = append(b, "Authorization: Bearer "...)
	}
	b = append(b, p.APIKey.Reveal()...)
	return append(b, '\r', '\n')
}

// queryKey returns the raw value of the first query parameter that carries a credential (see
// isKeyParam).
func queryKey(q []byte) ([]byte, bool) {
	for len(q) > 0 {
		kv := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		name, v, _ := bytes.Cut(kv, []byte{'='})
		if isKeyParam(name) {
			return v, true
		}
	}
	return nil, false
}

// appendQueryWithoutKey appends a raw query without the parameters that carry a credential,
// the others in order.
func appendQueryWithoutKey(b, q []byte) []byte {
	first := true
	for len(q) > 0 {
		kv := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		if name, _, _ := bytes.Cut(kv, []byte{'='}); len(kv) == 0 || isKeyParam(name) {
			continue
		}
		if !first {
			b = append(b, '&')
		}
		first = false
		b = append(b, kv...)
	}
	return b
}

// isKeyParam reports whether a raw query parameter name carries a credential: "key" (Gemini's
// API key), "$key" (Google's documented alias of it) or "access_token" (Google's OAuth token
// parameter), compared after percent-decoding and ignoring ASCII case.
//
// Google's front end percent-decodes names before it matches them ("%24key" is "$key" in its
// documentation, so "%6bey" and "ke%79" are "key"): decoding is what the provider does. It
// matches them in their exact case ("prettyPrint", "quotaUser"), so to Google "KEY" is not a
// key but an unknown field of the request. Case is ignored here all the same: no Google API
// parameter differs from these names by case alone, so removing one can break no request that
// would work, while forwarding one would hand the device's own credential to any hop on the
// way that folds case. Under 'replace' (or 'fill' with the router's key on) the device's key
// must not reach the provider in any spelling.
func isKeyParam(name []byte) bool {
	var buf [len("access_token")]byte
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '%' && i+2 < len(name) && hexDigit(name[i+1]) >= 0 && hexDigit(name[i+2]) >= 0 {
			c = byte(hexDigit(name[i+1])<<4 | hexDigit(name[i+2]))
			i += 2
		}
		if n == len(buf) {
			return false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "key", "$key", "access_token":
		return true
	}
	return false
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
