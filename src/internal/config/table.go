// Package config reads /etc/config/airelay (UCI) into a validated, immutable Table.
//
// Data flows one way: UCI file → Load (validate, collect every error) → *Table → servers. A Table
// is never modified after Load returns; a reload builds a new one beside it and the service swaps
// an atomic pointer, so the hot paths (DNS answer, SNI route, gateway route, access check) read
// plain maps and slices without locks or parsing. This package must not open sockets or log.
package config

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/airelay/airelay/src/internal/egress"
	"github.com/airelay/airelay/src/internal/schedule"
)

// Access is allow or deny.
type Access uint8

const (
	Allow Access = iota
	Deny
)

func (a Access) String() string {
	if a == Deny {
		return "deny"
	}
	return "allow"
}

// Auth is the header a provider's key travels in.
type Auth uint8

const (
	AuthBearer      Auth = iota // Authorization: Bearer KEY
	AuthXAPIKey                 // x-api-key: KEY (Anthropic)
	AuthXGoogAPIKey             // x-goog-api-key: KEY (Gemini)
)

var authNames = [...]string{"bearer", "x-api-key", "x-goog-api-key"}

func (a Auth) String() string { return authNames[a] }

// KeyPolicy says when the gateway puts the router's key on a request.
type KeyPolicy uint8

const (
	KeyFill    KeyPolicy = iota // only when the device sent none or a placeholder
	KeyReplace                  // always
	KeyPass                     // never
)

var keyPolicyNames = [...]string{"fill", "replace", "pass"}

func (k KeyPolicy) String() string { return keyPolicyNames[k] }

// Secret holds a key. Its String and formatting redact it, so a Secret that reaches a log line or
// a printed struct by mistake shows nothing.
type Secret struct{ v string }

// Reveal returns the key; only the gateway's header injection calls it.
func (s Secret) Reveal() string { return s.v }

// Set reports whether a key is configured.
func (s Secret) Set() bool { return s.v != "" }

func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return "REDACTED"
}

// GoString keeps %#v from printing the key.
func (s Secret) GoString() string { return `config.Secret{"` + s.String() + `"}` }

// MarshalText keeps encoders from printing the key.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Main is the 'main' section.
type Main struct {
	Enabled       bool
	LANv4, LANv6  netip.Addr // zero: no answer of that family
	DNSListen     string
	DNSForward    bool
	DoHCanary     bool // dnsmasq answers use-application-dns.net with NXDOMAIN while airelay runs
	DNSTTL        uint32
	TLSListen     string
	TLSFallback   string
	HTTPListen    string
	StatusListen  string
	ListenDevice  string   // "": any
	Networks      []string // OpenWrt networks served; empty: every LAN-side network
	Resolvers     []string // host:port; empty: discovered at dial time by the resolver package
	DefaultAccess Access
	LogLevel      string // debug|info|warn|error
	MemoryLimit   int64
	MaxConns      int
	// MaxConnsPerDevice caps one device's open connections on the relay, and on the gateway.
	MaxConnsPerDevice int

	HelloTimeout   time.Duration
	ConnectTimeout time.Duration
	IdleTimeout    time.Duration
	WriteTimeout   time.Duration // a device that takes no byte for this long is cut
	DrainTimeout   time.Duration

	MaxHeaderBytes    int64
	MaxBody           int64
	RetryBody         int64
	HeaderTimeout     time.Duration
	FirstByteTimeout  time.Duration
	StreamIdleTimeout time.Duration
	DefaultQuota      Quota         // per device, for devices whose client section sets none
	HistoryDays       int           // days of usage history kept
	HistoryInterval   time.Duration // at most one history write per interval
	HistoryFile       string        // "": memory only
	// Invalid (LoadFailClosed only): where the problems that may concern any device are (in
	// main, in a line or section airelay cannot read, in a client's mac, ip or network), each
	// as "section 'x' option 'y'", comma-separated; DefaultAccess is then Deny and the devices
	// no section matches are told this.
	Invalid string
}

// Provider is one 'provider' section.
type Provider struct {
	ID           string // section name
	Index        int    // position in Table.Providers, stable within one Table
	Enabled      bool
	Hosts        []string // lower case, no trailing dot; "*.x" for subdomains of x
	Upstream     *url.URL // never nil for an enabled provider
	Prefix       string   // "/openai"
	Connect      string   // host:port or empty
	Egress       egress.Spec
	APIKey       Secret
	Auth         Auth
	KeyPolicy    KeyPolicy
	StreamUsage  bool        // ask for usage on streamed chat completions; see the gateway
	Fallback     []*Provider // resolved references, in order
	AllowPrivate bool
	// Invalid (LoadFailClosed only): where this section's problems are (as Main.Invalid); its
	// names are intercepted and every device is refused on it, told this.
	Invalid string
}

// Client is one 'client' section.
type Client struct {
	ID        string
	Name      string
	MACs      []net.HardwareAddr
	Nets      []netip.Prefix
	Networks  []string // OpenWrt networks the section matches; empty: any
	Access    Access
	Providers map[string]bool // empty: all
	// NoGateway: the device may not use the HTTP gateway (the router's API keys); the relay
	// (the device's own key) still works. Option 'gateway' '0'.
	NoGateway bool

	Schedule    schedule.Schedule // empty: always open
	ScheduleCut time.Duration     // 0: open streams finish on their own
	Quota       Quota             // per device; zero fields: main's defaults
	// Invalid (LoadFailClosed only): where this section's problems are (as Main.Invalid);
	// Access is then Deny and its devices are told this.
	Invalid string
}

// Quota is what one device may use per local day; 0 is no limit.
type Quota struct {
	Tokens, Requests, Bytes int64
}

// Or fills q's zero fields from d.
func (q Quota) Or(d Quota) Quota {
	if q.Tokens == 0 {
		q.Tokens = d.Tokens
	}
	if q.Requests == 0 {
		q.Requests = d.Requests
	}
	if q.Bytes == 0 {
		q.Bytes = d.Bytes
	}
	return q
}

// Allows reports whether the client may use p.
func (c *Client) Allows(p *Provider) bool {
	if c.Access == Deny {
		return false
	}
	return len(c.Providers) == 0 || c.Providers[p.ID]
}

// Table is a frozen configuration. All fields are read-only after Load.
type Table struct {
	Source    string   // file path, or "embedded"
	Warnings  []string // things accepted but probably not meant (unknown options…)
	Main      Main
	Providers []*Provider // every section, enabled or not, in file order
	Clients   []*Client
	// FailClosed is set on a table LoadFailClosed built from a config that does not pass: its
	// problems, one per line. The access check then refuses the devices the sections with
	// problems concern, telling them where the problems are (Main.Invalid, Client.Invalid,
	// Provider.Invalid).
	FailClosed string
	// Fallback says why this table serves instead of the config on disk, when it does: set
	// by whoever loaded it (the OpenWrt runtime state) before the table is published.
	Fallback Fallback
	// Networks are the router's LAN-side networks as the init script found them (the runtime
	// copy's runtime_network sections); empty when not on OpenWrt. See networks.go.
	Networks []*Network

	effective Effective

	exact    map[string]*Provider // enabled providers' exact hosts
	wildcard map[string]*Provider // "example.com" for "*.example.com"
	prefix   map[string]*Provider // "/openai"
	byIP     map[netip.Addr][]*Client
	nets     []clientNet // prefixes that are not single addresses, longest first
	byMAC    map[[6]byte][]*Client
	netOnly  []*Client // sections that match by network alone, in file order
}

type clientNet struct {
	p netip.Prefix
	c *Client
}

// HasMACRules reports whether any client is matched by MAC, so callers can skip neighbour lookups.
func (t *Table) HasMACRules() bool { return len(t.byMAC) > 0 }

// MatchHost finds the enabled provider serving name. name may carry a trailing dot and any case;
// the common all-lowercase case does not allocate.
func (t *Table) MatchHost(name string) *Provider {
	name = strings.TrimSuffix(name, ".")
	if hasUpper(name) {
		name = strings.ToLower(name)
	}
	return matchLower(t, name)
}

// MatchHostLower is MatchHost for a name already in lower case and without the final dot, as
// the DNS fast path builds it in a buffer of its own. It does not allocate.
func (t *Table) MatchHostLower(name []byte) *Provider { return matchLower(t, name) }

// matchLower looks a lower-case name without the final dot up: exact, then by each parent
// domain for wildcards.
func matchLower[S string | []byte](t *Table, name S) *Provider {
	if p := t.exact[string(name)]; p != nil {
		return p
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if p := t.wildcard[string(name[i+1:])]; p != nil {
				return p
			}
		}
	}
	return nil
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// Route finds the provider for an HTTP path by its longest configured prefix and returns the
// rest of the path (starting with "/" or empty). It does not allocate.
func (t *Table) Route(path string) (*Provider, string) {
	end := len(path)
	for end > 0 {
		if p := t.prefix[path[:end]]; p != nil {
			return p, path[end:]
		}
		end = strings.LastIndexByte(path[:end], '/')
	}
	return nil, ""
}

// Provider returns the provider with that section name, enabled or not.
func (t *Table) Provider(id string) *Provider {
	for _, p := range t.Providers {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// ClientFor finds the client section matching a device: by exact address, then by the longest
// prefix, then by MAC (mac may be nil when the neighbour table has no entry), then by network
// alone. A section that names networks matches only a device on one of them (the network of
// ip, NetworkOf); several sections may name the same address or MAC for different networks.
// It does not allocate.
func (t *Table) ClientFor(ip netip.Addr, mac net.HardwareAddr) *Client {
	ip = ip.Unmap()
	var n *Network
	if len(t.Networks) > 0 {
		n = t.NetworkOf(ip) // with its zone: a link-local address's network is its zone's
	}
	ip = ip.WithZone("")
	if c := firstOn(t.byIP[ip], n); c != nil {
		return c
	}
	for _, cn := range t.nets {
		if cn.p.Contains(ip) && cn.c.onNetwork(n) {
			return cn.c
		}
	}
	if len(mac) == 6 {
		if c := firstOn(t.byMAC[macKey(mac)], n); c != nil {
			return c
		}
	}
	if n != nil {
		for _, c := range t.netOnly {
			if c.onNetwork(n) {
				return c
			}
		}
	}
	return nil
}

// Fallback is what serves when the config on disk does not pass, and why.
type Fallback struct {
	// State: "" (the config on disk passed), "last_valid" (the last config that passed
	// serves) or "fail_closed" (none ever passed: this table is the failing config read
	// strictly, see LoadFailClosed).
	State string
	// Message says so for people: "serving the last valid config from <time>;
	// /etc/config/airelay: …". Never holds a key.
	Message string
	// Refused: a reload found the config on disk failing and left the serving config as it
	// was; its problems. "": not a refused reload.
	Refused string
}

// Refusal says why, in fail-closed mode (FailClosed set), the device matched to c (nil:
// none) is refused p: the problems of p's section, c's section, or, for a device no section
// matches, those that may concern any device. "" when nothing refuses it. A valid config
// costs one comparison.
func (t *Table) Refusal(c *Client, p *Provider) string {
	if t.FailClosed == "" {
		return ""
	}
	switch {
	case p != nil && p.Invalid != "":
		return p.Invalid
	case c != nil:
		return c.Invalid
	}
	return t.Main.Invalid
}

// Access decides whether a device may use p. c is what ClientFor returned (may be nil).
func (t *Table) Access(c *Client, p *Provider) bool {
	if t.Refusal(c, p) != "" {
		return false
	}
	if c != nil {
		return c.Allows(p)
	}
	return t.Main.DefaultAccess == Allow
}
