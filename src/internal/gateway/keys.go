package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/airelay/airelay/src/internal/config"
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
func IsPlaceholder(k string) bool {
	k = strings.TrimSpace(k)
	if len(k) > 3 && strings.EqualFold(k[:3], "sk-") {
		k = k[3:]
		if len(k) > 4 && strings.EqualFold(k[:4], "ant-") {
			k = k[4:]
		}
	}
	for _, p := range Placeholders {
		if strings.EqualFold(k, p) {
			return true
		}
	}
	return false
}

// Canonical names of the headers a key may travel in; the map is indexed directly so that a
// lookup does not canonicalise (allocate).
const (
	hdrAuthorization = "Authorization"
	hdrXAPIKey       = "X-Api-Key"
	hdrXGoogAPIKey   = "X-Goog-Api-Key"
)

// deviceKeys reports whether the device sent a real key: any auth header or Gemini "key" query
// parameter that is not a placeholder.
func deviceHasKey(h http.Header, rawQuery string) bool {
	for _, v := range h[hdrAuthorization] {
		// "Bearer KEY", "Basic …": the credential is what follows the scheme.
		if _, cred, ok := strings.Cut(v, " "); ok {
			v = cred
		} else if strings.EqualFold(v, "Bearer") { // "Bearer " with the space trimmed
			v = ""
		}
		if !IsPlaceholder(v) {
			return true
		}
	}
	for _, name := range [...]string{hdrXAPIKey, hdrXGoogAPIKey} {
		for _, v := range h[name] {
			if !IsPlaceholder(v) {
				return true
			}
		}
	}
	if v, ok := queryKey(rawQuery); ok {
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		if !IsPlaceholder(v) {
			return true
		}
	}
	return false
}

// applyKey puts p's key on an outbound request as p.KeyPolicy says. When it does, every other
// credential of the device goes (the three headers and a "key" query parameter), so two keys
// never reach a provider. A provider without an api_key passes the device's own.
func applyKey(p *config.Provider, h http.Header, u *url.URL) {
	if !p.APIKey.Set() || p.KeyPolicy == config.KeyPass {
		return
	}
	if p.KeyPolicy == config.KeyFill && deviceHasKey(h, u.RawQuery) {
		return
	}
	delete(h, hdrAuthorization)
	delete(h, hdrXAPIKey)
	delete(h, hdrXGoogAPIKey)
	if _, ok := queryKey(u.RawQuery); ok {
		u.RawQuery = dropQueryKey(u.RawQuery)
	}
	key := p.APIKey.Reveal()
	switch p.Auth {
	case config.AuthXAPIKey:
		h[hdrXAPIKey] = []string{key}
	case config.AuthXGoogAPIKey:
		h[hdrXGoogAPIKey] = []string{key}
	default:
		h[hdrAuthorization] = []string{"Bearer " + key}
	}
}

// queryKey returns the raw value of the first "key" parameter of a raw query.
func queryKey(q string) (string, bool) {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if v, ok := strings.CutPrefix(kv, "key="); ok {
			return v, true
		}
		if kv == "key" {
			return "", true
		}
	}
	return "", false
}

// dropQueryKey removes every "key" parameter from a raw query, keeping the others in order.
func dropQueryKey(q string) string {
	var b strings.Builder
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "key" || strings.HasPrefix(kv, "key=") || kv == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv)
	}
	return b.String()
}
