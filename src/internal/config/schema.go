package config

// Type is the kind of value an option holds. Its name is what `airelay schema --json` prints,
// and what the LuCI views match their widgets against.
type Type string

const (
	TBool     Type = "bool"     // 0/1 (also on/off, true/false, yes/no, enabled/disabled)
	TString   Type = "string"   // free text
	TInt      Type = "int"      // decimal integer within Min..Max
	TDuration Type = "duration" // Go duration ("10s", "5m"), or plain seconds
	TSize     Type = "size"     // bytes with an optional K/M/G suffix (powers of 1024)
	TEnum     Type = "enum"     // one of Values
	THostPort Type = "hostport" // host:port, host may be empty (all addresses)
	TIPv4     Type = "ipv4"
	TIPv6     Type = "ipv6"
	TURL      Type = "url"      // http(s)://host[:port][/base]
	THost     Type = "host"     // DNS name, or *.name for its subdomains
	TMAC      Type = "mac"      // aa:bb:cc:dd:ee:ff
	TCIDR     Type = "cidr"     // address or prefix
	TEgress   Type = "egress"   // empty, iface:NAME, socks5://host:port, http://host:port
	TDevice   Type = "device"   // a network device name (br-lan): 1-15 characters, no '/', ':' or space
	TPrefix   Type = "prefix"   // URL path prefix /name[/name…]
	TSecret   Type = "secret"   // write-only: never printed, logged or returned
	TRef      Type = "ref"      // the name of another section of type Ref
	TSchedule Type = "schedule" // [DAYS] HH:MM-HH:MM: Mon-Fri, Sat,Sun, daily; past midnight allowed
	TNetwork  Type = "network"  // an OpenWrt network (interface section) name: lan, guest, iot
)

// Option describes one UCI option.
type Option struct {
	Name    string   `json:"name"`
	Type    Type     `json:"type"`
	List    bool     `json:"list,omitempty"` // a UCI list (may repeat)
	Default string   `json:"default"`
	Values  []string `json:"values,omitempty"` // TEnum
	Min     int64    `json:"min,omitempty"`    // TInt
	Max     int64    `json:"max,omitempty"`    // TInt
	Ref     string   `json:"ref,omitempty"`    // TRef: section type referred to
	Doc     string   `json:"doc"`
}

// Section describes one UCI section type.
type Section struct {
	Type    string   `json:"type"`
	Name    string   `json:"name,omitempty"` // fixed name for a singleton ("main")
	Doc     string   `json:"doc"`
	Options []Option `json:"options"`
	// Runtime sections are written by the init script into the runtime copy only; people
	// and LuCI never write them, and runtime-config drops any found in the user's file.
	Runtime bool `json:"runtime,omitempty"`
}

// Schema is every section and option airelay reads. The loader refuses to read an option that is
// not here, so this list cannot drift from what is parsed.
var Schema = []Section{
	{Type: "airelay", Name: "main", Doc: "Global settings.", Options: []Option{
		{Name: "enabled", Type: TBool, Default: "1", Doc: "Serve. When 0, airelay starts, answers status, and relays nothing: DNS answers as if it were not there (forwarded), the relay takes no name, and the gateway answers every provider request with 503 `disabled` (no provider asked, no key sent)."},
		{Name: "lan_ipv4", Type: TIPv4, Doc: "A answer for intercepted names (the router's LAN address). Empty: no A answer (NODATA)."},
		{Name: "lan_ipv6", Type: TIPv6, Doc: "AAAA answer for intercepted names. Empty: NODATA, so devices use IPv4."},
		{Name: "dns_listen", Type: THostPort, Default: "127.0.0.1:5353", Doc: "UDP and TCP address of the DNS interceptor that dnsmasq forwards the AI names to. 'off': off (not an empty value: uci drops it on the next commit, which brings the default back)."},
		{Name: "dns_forward", Type: TBool, Default: "0", Doc: "Forward names that are not intercepted to the resolvers (standalone use). 0: they get REFUSED."},
		{Name: "doh_canary", Type: TBool, Default: "1", Doc: "While airelay runs, dnsmasq answers use-application-dns.net with NXDOMAIN, the signal that keeps browsers (Firefox) from turning on DNS over HTTPS by themselves and so bypassing the interception. Removed on stop. DoH set up by hand, or a VPN on the device, is out of airelay's reach."},
		{Name: "dns_ttl", Type: TInt, Default: "60", Min: 1, Max: 86400, Doc: "TTL in seconds of intercepted answers."},
		{Name: "tls_listen", Type: THostPort, Default: ":8443", Doc: "TCP address of the SNI relay (the firewall redirects LAN port 443 here). 'off': off (not an empty value: uci drops it on the next commit, which brings the default back)."},
		{Name: "tls_fallback", Type: THostPort, Doc: "Where TLS with no or an unknown SNI goes (the router's own HTTPS server). Empty or off: such connections are closed."},
		{Name: "http_listen", Type: THostPort, Default: ":8080", Doc: "TCP address of the plain-HTTP gateway. 'off': off (not an empty value: uci drops it on the next commit, which brings the default back)."},
		{Name: "status_listen", Type: THostPort, Default: "127.0.0.1:9099", Doc: "TCP address of /status and /metrics. Keep it on loopback. 'off': off (not an empty value: uci drops it on the next commit, which brings the default back)."},
		{Name: "network", Type: TNetwork, List: true, Doc: "OpenWrt networks (interface names: lan, guest, iot) whose devices airelay serves: their AI names resolve to the router, their HTTPS is relayed, the gateway listens on them and client rules apply. Networks not listed are left untouched (real DNS answers, nothing redirected). Empty: every LAN-side network (every firewall zone that does not masquerade)."},
		{Name: "listen_device", Type: TDevice, Doc: "Network device the listeners accept on (SO_BINDTODEVICE), so nothing that arrives on another one (the WAN) reaches them; loopback addresses are exempt. The init script sets the LAN's device. Empty: any device (the firewall alone decides)."},
		{Name: "resolver", Type: THostPort, List: true, Doc: "Upstream DNS servers (host or host:port) for the providers' real addresses. Empty: the WAN resolvers from /tmp/resolv.conf.d/resolv.conf.auto, else the system's non-loopback ones."},
		{Name: "default_access", Type: TEnum, Default: "allow", Values: []string{"allow", "deny"}, Doc: "Access for devices that no client section matches."},
		{Name: "log_level", Type: TEnum, Default: "info", Values: []string{"debug", "info", "warn", "error"}, Doc: "Least severe level logged."},
		{Name: "memory_limit", Type: TSize, Default: "32M", Doc: "Soft memory limit for the Go runtime (GOMEMLIMIT); 0: none. The environment's GOMEMLIMIT wins."},
		{Name: "max_conns", Type: TInt, Default: "1024", Min: 1, Max: 1 << 20, Doc: "Most open connections of the relay, and as many of the gateway; more wait in the kernel's accept queue."},
		{Name: "max_conns_per_device", Type: TInt, Default: "64", Min: 1, Max: 1 << 20, Doc: "Most open connections of one device on the relay, and as many on the gateway (its idle keep-alive connections are closed first), so one device cannot take every slot of max_conns."},
		{Name: "hello_timeout", Type: TDuration, Default: "5s", Doc: "Time a device has to send its TLS ClientHello."},
		{Name: "connect_timeout", Type: TDuration, Default: "10s", Doc: "Time to resolve and connect to a provider."},
		{Name: "idle_timeout", Type: TDuration, Default: "10m", Doc: "A relayed connection with no byte either way for this long is closed."},
		{Name: "write_timeout", Type: TDuration, Default: "30s", Doc: "A device that takes no byte of what is sent to it (relay or gateway) for this long is cut, so a device that stops reading cannot hold its slot, its buffers and its provider connection."},
		{Name: "drain_timeout", Type: TDuration, Default: "10s", Doc: "On stop, how long open connections may finish before they are cut."},
		{Name: "max_header_bytes", Type: TSize, Default: "64K", Doc: "Gateway: largest request header block."},
		{Name: "max_body", Type: TSize, Default: "64M", Doc: "Gateway: largest request body (413 past it); 0: no limit."},
		{Name: "retry_body", Type: TSize, Default: "1M", Doc: "Gateway: request bodies up to this size are kept so a failover can resend them."},
		{Name: "header_timeout", Type: TDuration, Default: "10s", Doc: "Gateway: time a device has to send its request headers."},
		{Name: "first_byte_timeout", Type: TDuration, Default: "5m", Doc: "Gateway: time a provider has to start its response (504 past it)."},
		{Name: "stream_idle_timeout", Type: TDuration, Default: "5m", Doc: "Gateway: longest gap inside a streamed response before it is cut."},
		{Name: "default_daily_tokens", Type: TInt, Default: "0", Min: 0, Max: 1 << 50, Doc: "Tokens (in + out) each device may use through the gateway per day, unless its client section sets daily_tokens; 0: no limit. Days start at local midnight."},
		{Name: "default_daily_requests", Type: TInt, Default: "0", Min: 0, Max: 1 << 50, Doc: "Gateway requests each device may make per day, unless its client section sets daily_requests; 0: no limit."},
		{Name: "default_daily_bytes", Type: TSize, Default: "0", Doc: "Bytes (up + down, relay and gateway) each device may move per day, unless its client section sets daily_bytes; 0: no limit."},
		{Name: "history_days", Type: TInt, Default: "31", Min: 1, Max: 366, Doc: "Days of usage history kept per device and provider."},
		{Name: "history_interval", Type: TDuration, Default: "1h", Doc: "Usage history is written to history_file at most this often (and on stop): flash wears with every write."},
		{Name: "history_file", Type: TString, Doc: "File the usage history is kept in across restarts (the OpenWrt package uses /etc/airelay/history.json). Empty: memory only."},
	}},
	{Type: "provider", Doc: "An AI API: the names intercepted and relayed, and its gateway route.", Options: []Option{
		{Name: "enabled", Type: TBool, Default: "1", Doc: "Intercept, relay and route this provider."},
		{Name: "host", Type: THost, List: true, Doc: "Names intercepted and relayed: exact, or *.example.com for every subdomain."},
		{Name: "upstream", Type: TURL, Doc: "Gateway: base URL requests are sent to. Default: https:// and the first exact host."},
		{Name: "prefix", Type: TPrefix, Doc: "Gateway: path prefix routed to this provider. Default: / and the section name."},
		{Name: "connect", Type: THostPort, Doc: "Relay and gateway dial this host:port instead of resolving the name (trusted as written)."},
		{Name: "egress", Type: TEgress, Doc: "How connections leave: empty (direct), iface:NAME, socks5://host:port, http://host:port (CONNECT)."},
		{Name: "api_key", Type: TSecret, Doc: "Gateway: the key put on requests. Never logged or shown."},
		{Name: "auth", Type: TEnum, Default: "bearer", Values: []string{"bearer", "x-api-key", "x-goog-api-key"}, Doc: "Gateway: header that carries api_key."},
		{Name: "key_policy", Type: TEnum, Default: "fill", Values: []string{"fill", "replace", "pass"}, Doc: "Gateway: fill (only when the device sent no key or a placeholder), replace (always), pass (never)."},
		{Name: "stream_usage", Type: TBool, Default: "0", Doc: "Gateway: on streamed OpenAI-style chat completions that do not ask for usage, ask the provider for it (stream_options.include_usage) and drop that extra chunk on the way back, so the device's tokens are counted. Only for providers that accept stream_options."},
		{Name: "fallback", Type: TRef, Ref: "provider", List: true, Doc: "Gateway: providers tried in order on connect error, timeout, 429 or 5xx before any byte reached the device."},
		{Name: "allow_private", Type: TBool, Default: "0", Doc: "Allow relaying to private or loopback addresses learned from DNS (refused by default: loops, open proxy)."},
	}},
	{Type: "client", Doc: "A device or group of devices, matched by MAC or IP, and what it may do.", Options: []Option{
		{Name: "name", Type: TString, Doc: "Label shown in status."},
		{Name: "mac", Type: TMAC, List: true, Doc: "MAC addresses (from the router's neighbour table)."},
		{Name: "ip", Type: TCIDR, List: true, Doc: "Addresses or prefixes (192.168.1.50, 192.168.1.0/24, fd00::/64). A device that has IPv6 too reaches the router from its IPv6 addresses as well, which IPv4 entries do not match: give such a device its mac (a warning says so when the LAN has IPv6)."},
		{Name: "network", Type: TNetwork, List: true, Doc: "OpenWrt networks (lan, guest, iot) whose devices this section matches. Alone: every device on them. With mac or ip: a device must match one of those and be on one of these networks."},
		{Name: "access", Type: TEnum, Default: "allow", Values: []string{"allow", "deny"}, Doc: "allow or deny AI access."},
		{Name: "provider", Type: TRef, Ref: "provider", List: true, Doc: "When set, only these providers are allowed for the device."},
		{Name: "schedule", Type: TSchedule, List: true, Doc: "Time windows in which AI is allowed, router local time: 'Mon-Fri 15:00-20:00', 'Sat,Sun 09:00-21:00', 'daily 07:00-21:00'; a window ending at or before its start runs past midnight. Outside them the device is denied on both paths. Empty: always."},
		{Name: "schedule_cut", Type: TDuration, Doc: "Connections and streams still open when the schedule closes are cut this long after it closes. Empty: they finish on their own."},
		{Name: "daily_tokens", Type: TInt, Default: "0", Min: 0, Max: 1 << 50, Doc: "Tokens (in + out) each matching device may use through the gateway per day; 0: main's default_daily_tokens."},
		{Name: "daily_requests", Type: TInt, Default: "0", Min: 0, Max: 1 << 50, Doc: "Gateway requests each matching device may make per day; 0: main's default_daily_requests."},
		{Name: "daily_bytes", Type: TSize, Default: "0", Doc: "Bytes (up + down, relay and gateway) each matching device may move per day; 0: main's default_daily_bytes."},
		{Name: "gateway", Type: TBool, Default: "1", Doc: "0: the device may not use the HTTP gateway, which puts the router's API keys on requests (403 gateway_not_allowed); the relay, where the device brings its own key, still works, and daily_tokens and daily_requests (gateway counts) never apply: daily_bytes limits the relay. For guests who must not spend the household's keys."},
	}},
	{Type: "runtime_network", Runtime: true, Doc: "One LAN-side network as the init script found it at the last start or reload (netifd, fw4, dnsmasq). Written by `airelay runtime-config` into the runtime copy (/var/run/airelay/airelay) only; never write it by hand: runtime-config drops such sections from /etc/config/airelay. An anonymous section.", Options: []Option{
		{Name: "network", Type: TNetwork, Doc: "The OpenWrt network (lan, guest)."},
		{Name: "device", Type: TDevice, Doc: "Its network device (br-guest)."},
		{Name: "zone", Type: TString, Doc: "Its fw4 zone."},
		{Name: "ipv4", Type: TCIDR, List: true, Doc: "The router's IPv4 addresses on it, with the subnet's prefix length (192.168.2.1/24)."},
		{Name: "ipv6", Type: TCIDR, List: true, Doc: "The router's IPv6 addresses on it, with their prefix length (fd00:2::1/64)."},
		{Name: "mode", Type: TEnum, Default: "untouched", Values: []string{"untouched", "served", "passthrough"}, Doc: "served: intercepted, relayed, counted and controlled; untouched: nothing of airelay's reaches it; passthrough: not served, but its resolver also serves a served network, so the relay passes its HTTPS through with no rule or count."},
		{Name: "reason", Type: TString, Doc: "Why it is not served, or what is wrong with it."},
		{Name: "dnsmasq", Type: TString, List: true, Doc: "dnsmasq instances (sections of /etc/config/dhcp) that answer DNS on its device."},
	}},
}

func lookupSection(typ string) *Section {
	for i := range Schema {
		if Schema[i].Type == typ {
			return &Schema[i]
		}
	}
	return nil
}

func (s *Section) option(name string) *Option {
	for i := range s.Options {
		if s.Options[i].Name == name {
			return &s.Options[i]
		}
	}
	return nil
}
