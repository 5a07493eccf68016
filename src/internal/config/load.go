package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	uci "github.com/digineo/go-uci"

	"github.com/airelay/airelay/src/internal/egress"
	"github.com/airelay/airelay/src/internal/schedule"
)

// DefaultPath is where OpenWrt keeps the config.
const DefaultPath = "/etc/config/airelay"

// EmbeddedName is the Source of a Table read from the built-in config.
const EmbeddedName = "embedded"

// embedded is the config built into the binary: default.uci, or the site file that
// `make EMBED_CONFIG=path` puts in its place (in a copy of the module, build/embed-src).
//
//go:embed default.uci
var embedded []byte

// Embedded returns the built-in config text.
func Embedded() []byte { return embedded }

// Error is one problem in a config file. Its text names the file (and line, when known),
// section and option, and the value unless the option is a secret, with whatever in it may be
// a credential redacted (redacted).
type Error struct {
	File    string
	Line    int // 1-based; 0: not known (the problem is in what the lines mean together)
	Section string
	Option  string
	Value   string
	Msg     string

	// anywhere: the problem may concern any device (a line that cannot be read, a section of
	// an unknown type), so LoadFailClosed refuses every device that no valid section allows.
	anywhere bool
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	parts := make([]string, 0, 3)
	if e.Section != "" {
		parts = append(parts, "section '"+e.Section+"'")
	}
	if e.Option != "" {
		parts = append(parts, "option '"+e.Option+"'")
	}
	msg := e.Msg
	if e.Value != "" {
		v, hidden, key := redacted(e.Value)
		parts = append(parts, "value '"+v+"'")
		msg = scrub(msg, hidden)
		if key && e.Option != "api_key" {
			msg += " (it looks like it holds an API key: a key goes in option api_key, which is never shown)"
		}
	}
	if len(parts) == 0 {
		return where + ": " + msg
	}
	return where + ": " + strings.Join(parts, " ") + ": " + msg
}

// Load reads a UCI file. All problems are reported together, joined.
func Load(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data)
}

// LoadEmbedded reads the built-in config.
func LoadEmbedded() (*Table, error) { return LoadBytes(EmbeddedName, embedded) }

// LoadBytes reads config text; name is what errors call it.
func LoadBytes(name string, data []byte) (*Table, error) { return parse(name, data) }

// parse lints the text, then hands the linted text to go-uci, which reads only files (see
// uciTree).
func parse(name string, data []byte) (*Table, error) {
	t, errs := build(name, data, nil)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return t, nil
}

// build reads config text into a table and returns it with every problem found. With drop nil
// it stops at the first stage that finds problems (lint, then the loader), as Load does; with
// drop set (LoadFailClosed) it goes on past them, reads the single-valued options drop names
// as if they were not set (their default), and returns the table it could build.
func build(name string, data []byte, drop map[optionKey]bool) (*Table, []*Error) {
	lintErrs, warns, subst, cleaned, where := lint(name, data)
	if len(lintErrs) > 0 && drop == nil {
		return nil, lintErrs
	}
	tree, cfg, done, err := uciTree(cleaned)
	if err != nil {
		return nil, append(lintErrs, &Error{File: name, Msg: keysRedacted(err.Error()), anywhere: true})
	}
	defer done()
	if err := tree.LoadConfig(cfg, true); err != nil {
		return nil, append(lintErrs, &Error{File: name, Msg: keysRedacted(err.Error()), anywhere: true})
	}
	l := &loader{name: name, tree: tree, cfg: cfg, subst: subst, drop: drop, where: where, t: &Table{Source: name, Warnings: warns}}
	l.load()
	return l.t, append(lintErrs, l.errs...)
}

func joinErrors(errs []*Error) error {
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// optionKey names one option of one section.
type optionKey struct{ section, option string }

type loader struct {
	name, cfg string
	tree      uci.Tree
	subst     []string // values lint replaced with placeholders
	drop      map[optionKey]bool
	where     lineIndex // the line of each section, option and value, for errors
	t         *Table
	errs      []*Error
}

// sec reads one section's options through the schema.
type sec struct {
	l      *loader
	schema *Section
	name   string
}

func (l *loader) errorf(section, option, value, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.name, Line: l.where.find(section, option, value), Section: section, Option: option, Value: value, Msg: fmt.Sprintf(format, args...)})
}

// values returns an option's values, or its schema default. Reading an option that is not in the
// schema is a programming error.
func (s sec) values(option string) (o *Option, vals []string, set bool) {
	o = s.schema.option(option)
	if o == nil {
		panic("config: option " + option + " is not in the schema of " + s.schema.Type)
	}
	defer func() { s.record(o, vals) }()
	raw, _ := s.l.tree.Get(s.l.cfg, s.name, option)
	if s.l.drop[optionKey{s.name, option}] && !o.List {
		raw = nil // LoadFailClosed: a bad single value falls back to the default (a list keeps its good values)
	}
	if len(raw) > 0 {
		// An empty value is set and means "none": 'off' for an option whose default is not
		// empty, no item in a list.
		vals = make([]string, 0, len(raw))
		for _, v := range raw {
			if v = unplace(v, s.l.subst); v != "" {
				vals = append(vals, v)
			}
		}
		if !o.List && unplace(raw[len(raw)-1], s.l.subst) == "" {
			vals = nil
		}
		return o, vals, true
	}
	if o.Default != "" {
		return o, []string{o.Default}, false
	}
	return o, nil, false
}

func (s sec) one(option string) (string, *Option) {
	o, vals, _ := s.values(option)
	if len(vals) == 0 {
		return "", o
	}
	return vals[len(vals)-1], o
}

func (s sec) fail(o *Option, v, format string, args ...any) {
	if o.Type == TSecret {
		v = "" // never echo a key, not even redacted (Error redacts a proxy password and the like)
	}
	s.l.errorf(s.name, o.Name, v, format, args...)
}

func (s sec) bool(option string) bool {
	v, o := s.one(option)
	switch v {
	case "1", "on", "true", "yes", "enabled":
		return true
	case "0", "off", "false", "no", "disabled", "":
		return false
	}
	s.fail(o, v, "not a boolean (use 0 or 1)")
	return false
}

func (s sec) str(option string) string { v, _ := s.one(option); return v }

func (s sec) enum(option string) int {
	v, o := s.one(option)
	if i := slices.Index(o.Values, v); i >= 0 {
		return i
	}
	s.fail(o, v, "must be one of: %s", strings.Join(o.Values, ", "))
	return 0
}

func (s sec) int(option string) int64 {
	v, o := s.one(option)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < o.Min || n > o.Max {
		s.fail(o, v, "must be a whole number from %d to %d", o.Min, o.Max)
		return o.Min
	}
	return n
}

func (s sec) duration(option string) time.Duration {
	v, o := s.one(option)
	d, err := parseDuration(v)
	if err != nil {
		s.fail(o, v, "%v", err)
	}
	return d
}

func (s sec) size(option string) int64 {
	v, o := s.one(option)
	n, err := ParseSize(v)
	if err != nil {
		s.fail(o, v, "%v", err)
	}
	return n
}

// hostPort reads a host:port. 'off' means the same as ”: LuCI and `uci set` cannot store an
// empty value (they delete the option, which brings back the default).
func (s sec) hostPort(option string) string {
	v, o := s.one(option)
	if v == "" || v == "off" {
		return ""
	}
	if err := checkHostPort(v, false); err != nil {
		s.fail(o, v, "%v", err)
		return ""
	}
	return v
}

func (s sec) device(option string) string {
	v, o := s.one(option)
	if err := CheckDevice(v); err != nil {
		s.fail(o, v, "%v", err)
		return ""
	}
	return v
}

// CheckDevice validates a network device name as Linux does (IFNAMSIZ); "" is valid (none).
func CheckDevice(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 15 || v == "." || v == ".." || strings.ContainsAny(v, "/: \t\n") {
		return fmt.Errorf("not a device name (1-15 characters, no '/', ':' or spaces)")
	}
	return nil
}

// networks reads a list of OpenWrt network names, each once.
func (s sec) networks(option string) []string {
	o, vals, _ := s.values(option)
	var out []string
	for _, v := range vals {
		if err := CheckNetwork(v); err != nil {
			s.fail(o, v, "%v", err)
			continue
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// CheckNetwork says whether v can name an OpenWrt network (a UCI section name of
// /etc/config/network: letters, digits and '_').
func CheckNetwork(v string) error {
	if v == "" || len(v) > 64 {
		return fmt.Errorf("not a network name (lan, guest, iot): 1 to 64 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("not a network name (lan, guest, iot): only letters, digits and '_'")
		}
	}
	return nil
}

func (s sec) addr(option string, v4 bool) netip.Addr {
	v, o := s.one(option)
	if v == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" || a.Is4() != v4 {
		s.fail(o, v, "not an IPv%s address", map[bool]string{true: "4", false: "6"}[v4])
		return netip.Addr{}
	}
	return a
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && n < 1<<31 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("not a positive duration (like 30s, 5m, or seconds)")
	}
	return d, nil
}

// ParseSize reads "512", "64K", "1M", "2G" (powers of 1024).
func ParseSize(v string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSuffix(strings.ToUpper(v), "B")
	if num != "" {
		switch num[len(num)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			num = strings.TrimSpace(num[:len(num)-1])
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, errors.New("not a size (like 512, 64K, 24M, 1G)")
	}
	return n * mult, nil
}

func checkHostPort(v string, needHost bool) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port (IPv6 as [addr]:port)")
	}
	// A listener may take port 0 (any free port, for tests); a destination may not.
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || p == 0 && needHost {
		return errors.New("port must be 1-65535")
	}
	if host == "" {
		if needHost {
			return errors.New("the host is missing")
		}
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	return nil
}

// validHostname accepts letters, digits, '-' and '_' in dot-separated labels of 1-63 bytes.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for rest, more := h, true; more; {
		var label string
		label, rest, more = strings.Cut(rest, ".")
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (l *loader) section(typ, name string) sec {
	return sec{l: l, schema: lookupSection(typ), name: name}
}

func (l *loader) load() {
	mains, _ := l.tree.GetSections(l.cfg, "airelay")
	switch {
	case len(mains) > 1:
		l.errorf(mains[1], "", "", "there must be one 'airelay' section, named 'main'; found %d", len(mains))
	case len(mains) == 1 && mains[0] != "main":
		l.errorf(mains[0], "", "", "the 'airelay' section must be named 'main' (config airelay 'main')")
	}
	l.loadMain(l.section("airelay", "main"))
	names, _ := l.tree.GetSections(l.cfg, "provider")
	for _, n := range names {
		l.loadProvider(l.section("provider", n))
	}
	l.linkProviders()
	l.loadNetworks()
	names, _ = l.tree.GetSections(l.cfg, "client")
	for _, n := range names {
		l.loadClient(l.section("client", n))
	}
	l.indexClients()
}

func (l *loader) loadMain(s sec) {
	m := &l.t.Main
	m.Enabled = s.bool("enabled")
	m.LANv4 = s.addr("lan_ipv4", true)
	m.LANv6 = s.addr("lan_ipv6", false)
	m.DNSListen = s.hostPort("dns_listen")
	m.DNSForward = s.bool("dns_forward")
	m.DoHCanary = s.bool("doh_canary")
	m.DNSTTL = uint32(s.int("dns_ttl"))
	m.TLSListen = s.hostPort("tls_listen")
	m.HTTPListen = s.hostPort("http_listen")
	m.StatusListen = s.hostPort("status_listen")
	m.ListenDevice = s.device("listen_device")
	m.Networks = s.networks("network")
	if v, o := s.one("tls_fallback"); v != "" && v != "off" {
		if err := checkHostPort(v, true); err != nil {
			s.fail(o, v, "%v", err)
		} else {
			m.TLSFallback = v
		}
	}
	o, vals, _ := s.values("resolver")
	for _, v := range vals {
		host, port := v, "53"
		if h, p, err := net.SplitHostPort(v); err == nil {
			host, port = h, p
		}
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil || a.Zone() != "" {
			s.fail(o, v, "a resolver must be an IP address, optionally with :port (a name would need a resolver itself)")
			continue
		}
		hp := net.JoinHostPort(a.String(), port)
		if err := checkHostPort(hp, true); err != nil {
			s.fail(o, v, "%v", err)
			continue
		}
		m.Resolvers = append(m.Resolvers, hp)
	}
	m.DefaultAccess = Access(s.enum("default_access"))
	m.LogLevel = s.schema.option("log_level").Values[s.enum("log_level")]
	m.MemoryLimit = s.size("memory_limit")
	m.MaxConns = int(s.int("max_conns"))
	m.MaxConnsPerDevice = int(s.int("max_conns_per_device"))
	m.HelloTimeout = s.duration("hello_timeout")
	m.ConnectTimeout = s.duration("connect_timeout")
	m.IdleTimeout = s.duration("idle_timeout")
	m.WriteTimeout = s.duration("write_timeout")
	m.DrainTimeout = s.duration("drain_timeout")
	m.MaxHeaderBytes = s.size("max_header_bytes")
	m.MaxBody = s.size("max_body")
	m.RetryBody = s.size("retry_body")
	m.HeaderTimeout = s.duration("header_timeout")
	m.FirstByteTimeout = s.duration("first_byte_timeout")
	m.StreamIdleTimeout = s.duration("stream_idle_timeout")
	m.DefaultQuota = Quota{Tokens: s.int("default_daily_tokens"), Requests: s.int("default_daily_requests"), Bytes: s.size("default_daily_bytes")}
	m.HistoryDays = int(s.int("history_days"))
	m.HistoryInterval = s.duration("history_interval")
	m.HistoryFile = s.str("history_file")
	if m.HistoryInterval < time.Minute {
		s.fail(s.schema.option("history_interval"), m.HistoryInterval.String(), "must be at least 1m (flash wears with every write)")
	}
	if m.MaxHeaderBytes < 1024 {
		s.fail(s.schema.option("max_header_bytes"), strconv.FormatInt(m.MaxHeaderBytes, 10), "must be at least 1K")
	}

	// Two roles on one address would fail at bind time with a vaguer message.
	listens := map[string]string{}
	for _, r := range [...]struct{ opt, v string }{{"tls_listen", m.TLSListen}, {"http_listen", m.HTTPListen}, {"status_listen", m.StatusListen}} {
		if r.v == "" || strings.HasSuffix(r.v, ":0") { // port 0: each gets its own free port
			continue
		}
		if prev, dup := listens[r.v]; dup {
			l.errorf("main", r.opt, r.v, "the same address as %s", prev)
		}
		listens[r.v] = r.opt
	}
}

func (l *loader) loadProvider(s sec) {
	if strings.HasPrefix(s.name, "@") {
		l.errorf(s.name, "", "", "a provider section needs a name (config provider 'openai')")
		if l.drop == nil {
			return
		}
		// LoadFailClosed: its names are still intercepted (and every device refused on them)
	}
	p := &Provider{ID: s.name, Index: len(l.t.Providers), Enabled: s.bool("enabled")}
	o, hosts, _ := s.values("host")
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !validHostname(strings.TrimPrefix(h, "*.")) || strings.Count(strings.TrimPrefix(h, "*."), ".") == 0 {
			s.fail(o, h, "not a host name (exact, like api.openai.com, or *.example.com for subdomains)")
			continue
		}
		p.Hosts = append(p.Hosts, h)
	}
	if v, o := s.one("upstream"); v != "" {
		u, err := url.Parse(v)
		switch {
		case err != nil || u.Host == "" || u.Opaque != "":
			s.fail(o, v, "not a URL (like https://api.openai.com)")
		case u.Scheme != "https" && u.Scheme != "http":
			s.fail(o, v, "the scheme must be https or http")
		case u.User != nil || u.RawQuery != "" || u.Fragment != "":
			s.fail(o, v, "a base URL takes no user, query or fragment (keys go in api_key)")
		default:
			u.Path = strings.TrimSuffix(u.Path, "/")
			u.RawPath = ""
			p.Upstream = u
		}
	} else {
		for _, h := range p.Hosts {
			if !strings.HasPrefix(h, "*.") {
				p.Upstream = &url.URL{Scheme: "https", Host: h}
				break
			}
		}
	}
	if v, o := s.one("prefix"); v != "" {
		v = strings.TrimSuffix(v, "/")
		if !strings.HasPrefix(v, "/") || v == "" || strings.Contains(v, "//") || strings.ContainsAny(v, "?#% ") {
			s.fail(o, v, "a path prefix is /name or /name/more (no //, ?, # or %%)")
		}
		p.Prefix = v
	} else {
		p.Prefix = "/" + p.ID
	}
	if v, o := s.one("connect"); v != "" {
		if err := checkHostPort(v, true); err != nil {
			s.fail(o, v, "%v", err)
		}
		p.Connect = v
	}
	if v, o := s.one("egress"); v != "" {
		spec, err := egress.ParseSpec(v)
		if err != nil {
			s.fail(o, v, "%v", err)
		}
		p.Egress = spec
	}
	p.APIKey = Secret{s.str("api_key")}
	if strings.ContainsAny(p.APIKey.v, "\r\n\x00") {
		s.fail(s.schema.option("api_key"), "", "the key contains a line break or NUL")
	}
	p.Auth = Auth(s.enum("auth"))
	p.KeyPolicy = KeyPolicy(s.enum("key_policy"))
	p.StreamUsage = s.bool("stream_usage")
	p.AllowPrivate = s.bool("allow_private")
	// print-config shows what is in force: the derived upstream and prefix, normalised hosts.
	if p.Upstream != nil {
		s.record(s.schema.option("upstream"), []string{p.Upstream.String()})
	}
	s.record(s.schema.option("prefix"), []string{p.Prefix})
	s.record(s.schema.option("host"), p.Hosts)
	if p.Enabled && len(p.Hosts) == 0 && p.Upstream == nil {
		l.errorf(s.name, "", "", "an enabled provider needs a 'host' or an 'upstream'")
	}
	l.t.Providers = append(l.t.Providers, p)
}

// linkProviders resolves references and builds the host and prefix indexes.
func (l *loader) linkProviders() {
	t := l.t
	t.exact, t.wildcard, t.prefix = map[string]*Provider{}, map[string]*Provider{}, map[string]*Provider{}
	for _, p := range t.Providers {
		_, refs, _ := l.section("provider", p.ID).values("fallback")
		for _, r := range refs {
			q := t.Provider(r)
			switch {
			case q == nil:
				l.errorf(p.ID, "fallback", r, "no provider section has that name")
			case q == p:
				l.errorf(p.ID, "fallback", r, "a provider cannot be its own fallback")
			case !q.Enabled && p.Enabled:
				l.errorf(p.ID, "fallback", r, "that provider is disabled")
			case q.Upstream == nil:
				l.errorf(p.ID, "fallback", r, "that provider has no upstream")
			default:
				p.Fallback = append(p.Fallback, q)
			}
		}
		if !p.Enabled {
			continue
		}
		for _, h := range p.Hosts {
			m, key := t.exact, h
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				m, key = t.wildcard, rest
			}
			if q := m[key]; q != nil {
				l.errorf(p.ID, "host", h, "also a host of provider '%s'", q.ID)
				continue
			}
			m[key] = p
		}
		if p.Upstream != nil {
			if q := t.prefix[p.Prefix]; q != nil {
				l.errorf(p.ID, "prefix", p.Prefix, "also the prefix of provider '%s'", q.ID)
			}
			t.prefix[p.Prefix] = p
		}
	}
}

func (l *loader) loadClient(s sec) {
	c := &Client{ID: s.name, Name: s.str("name"), Access: Access(s.enum("access"))}
	o, vals, _ := s.values("mac")
	for _, v := range vals {
		hw, err := net.ParseMAC(v)
		if err != nil || len(hw) != 6 {
			s.fail(o, v, "not a MAC address (aa:bb:cc:dd:ee:ff)")
			continue
		}
		c.MACs = append(c.MACs, hw)
	}
	o, vals, _ = s.values("ip")
	for _, v := range vals {
		var p netip.Prefix
		var err error
		if strings.Contains(v, "/") {
			p, err = netip.ParsePrefix(v)
			p = p.Masked()
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(v)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			s.fail(o, v, "not an address or prefix (192.168.1.50, 192.168.1.0/24, fd00::/64)")
			continue
		}
		c.Nets = append(c.Nets, p)
	}
	c.Networks = s.networks("network")
	o, vals, _ = s.values("provider")
	for _, v := range vals {
		if l.t.Provider(v) == nil {
			s.fail(o, v, "no provider section has that name")
			continue
		}
		if c.Providers == nil {
			c.Providers = map[string]bool{}
		}
		c.Providers[v] = true
	}
	o, vals, _ = s.values("schedule")
	for _, v := range vals {
		w, err := schedule.ParseWindow(v)
		if err != nil {
			s.fail(o, v, "%v", err)
			continue
		}
		c.Schedule = append(c.Schedule, w)
	}
	if v := s.str("schedule_cut"); v != "" {
		c.ScheduleCut = s.duration("schedule_cut")
	}
	c.Quota = Quota{Tokens: s.int("daily_tokens"), Requests: s.int("daily_requests"), Bytes: s.size("daily_bytes")}
	c.NoGateway = !s.bool("gateway")
	if c.NoGateway {
		// the relay carries end-to-end TLS: airelay sees no tokens or requests there
		for _, q := range []struct {
			opt string
			n   int64
		}{{"daily_tokens", c.Quota.Tokens}, {"daily_requests", c.Quota.Requests}} {
			if q.n > 0 {
				l.t.Warnings = append(l.t.Warnings, fmt.Sprintf("%s: section '%s': option '%s' counts gateway use only, which gateway '0' forbids, so it never applies (daily_bytes limits the relay)", l.name, s.name, q.opt))
			}
		}
	}
	if len(c.MACs) == 0 && len(c.Nets) == 0 && len(c.Networks) == 0 {
		l.t.Warnings = append(l.t.Warnings, fmt.Sprintf("%s: section '%s': no 'mac', 'ip' or 'network', so it matches no device", l.name, s.name))
	}
	if len(c.MACs) == 0 && len(c.Nets) > 0 && !slices.ContainsFunc(c.Nets, func(p netip.Prefix) bool { return p.Addr().Is6() }) && l.lanHasIPv6() {
		// A dual-stack device reaches the router from its IPv6 addresses too (AAAA answers
		// are given when lan_ipv6 is set, and a device can always use the gateway's IPv6
		// address): an IPv4 rule alone would let it step outside the section.
		l.t.Warnings = append(l.t.Warnings, fmt.Sprintf("%s: section '%s': option 'ip' holds IPv4 addresses only, but the LAN has IPv6: the same devices reaching airelay from an IPv6 address are not matched by this section and get what other sections and default_access give them; add their 'mac' (or their IPv6 addresses)", l.name, s.name))
	}
	l.t.Clients = append(l.t.Clients, c)
}

// lanHasIPv6 reports whether devices can reach airelay over IPv6: lan_ipv6 is set (AAAA
// answers for the intercepted names), or a served network has IPv6 prefixes.
func (l *loader) lanHasIPv6() bool {
	if l.t.Main.LANv6.IsValid() {
		return true
	}
	for _, n := range l.t.Networks {
		if n.Serves() && len(n.IPv6) > 0 {
			return true
		}
	}
	return false
}

func (l *loader) indexClients() {
	t := l.t
	t.byIP, t.byMAC = map[netip.Addr][]*Client{}, map[[6]byte][]*Client{}
	for _, c := range t.Clients {
		for _, hw := range c.MACs {
			k := macKey(hw)
			if d := clash(t.byMAC[k], c); d != nil {
				l.errorf(c.ID, "mac", hw.String(), "also a MAC of client '%s'%s", d.ID, sameNetworks(c, d))
			}
			t.byMAC[k] = append(t.byMAC[k], c)
		}
		for _, p := range c.Nets {
			if p.IsSingleIP() {
				if d := clash(t.byIP[p.Addr()], c); d != nil {
					l.errorf(c.ID, "ip", p.Addr().String(), "also an address of client '%s'%s", d.ID, sameNetworks(c, d))
				}
				t.byIP[p.Addr()] = append(t.byIP[p.Addr()], c)
				continue
			}
			t.nets = append(t.nets, clientNet{p, c})
		}
		if len(c.MACs) == 0 && len(c.Nets) == 0 && len(c.Networks) > 0 {
			for _, d := range t.netOnly {
				if !disjoint(c, d) {
					l.errorf(c.ID, "network", "", "client '%s' already matches every device on %s", d.ID, networkNames(common(c.Networks, d.Networks)))
					break
				}
			}
			t.netOnly = append(t.netOnly, c)
		}
	}
	// sort.SliceStable, not slices.SortStableFunc: the generic sort is compiled again for each
	// struct shape (5 KB of mipsle code here), sort's code is shared and already linked.
	sort.SliceStable(t.nets, func(i, j int) bool { return t.nets[i].p.Bits() > t.nets[j].p.Bits() })
}

// sameNetworks explains a clash between two sections that name networks: they share one.
func sameNetworks(c, d *Client) string {
	if len(c.Networks) == 0 || len(d.Networks) == 0 {
		return ""
	}
	return " on a network both name (give them networks in common to none)"
}
