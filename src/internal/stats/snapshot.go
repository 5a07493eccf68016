package stats

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/airelay/airelay/src/internal/jsonw"
)

// Values is a copy of Counters, as /status shows it.
type Values struct {
	Conns     uint64 `json:"connections"`
	Active    int64  `json:"active"`
	Requests  uint64 `json:"requests"`
	Denied    uint64 `json:"denied"`
	Errors    uint64 `json:"errors"`
	BytesUp   uint64 `json:"bytes_up"`
	BytesDown uint64 `json:"bytes_down"`
	TokensIn  uint64 `json:"tokens_in"`
	TokensOut uint64 `json:"tokens_out"`
	// TokensEstimated: answers whose tokens were estimated from the bytes (see Counters).
	TokensEstimated uint64    `json:"tokens_estimated"`
	WriteTimeouts   uint64    `json:"write_timeouts"` // connections cut: the device stopped reading
	Status          [6]uint64 `json:"status"`         // [0] other, [1] 1xx … [5] 5xx
}

func (c *Counters) values() Values {
	v := Values{
		Conns: c.Conns.Load(), Active: c.Active.Load(), Requests: c.Requests.Load(),
		Denied: c.Denied.Load(), Errors: c.Errors.Load(),
		BytesUp: c.BytesUp.Load(), BytesDown: c.BytesDown.Load(),
		TokensIn: c.TokensIn.Load(), TokensOut: c.TokensOut.Load(),
		TokensEstimated: c.TokensEstimated.Load(), WriteTimeouts: c.WriteTimeouts.Load(),
	}
	for i := range c.Status {
		v.Status[i] = c.Status[i].Load()
	}
	return v
}

// ProviderStatus is one provider in /status.
type ProviderStatus struct {
	ID      string `json:"id"`
	Enabled bool   `json:"enabled"`
	Values
}

// DeviceStatus is one device in /status.
type DeviceStatus struct {
	Addr   string `json:"addr"`
	MAC    string `json:"mac,omitempty"`
	Client string `json:"client,omitempty"` // matching client section
	// Network is the OpenWrt network (lan, guest) the device's traffic arrived on, when known.
	Network string `json:"network,omitempty"`
	Name    string `json:"name,omitempty"`
	// NameSource is where Name came from: "client" (its section's name) or "dhcp" (the host
	// name of its DHCP lease).
	NameSource string            `json:"name_source,omitempty"`
	LastSeen   time.Time         `json:"last_seen"`
	Providers  map[string]Values `json:"providers"`
	Today      *Today            `json:"today,omitempty"`    // since local midnight
	Quota      *Quota            `json:"quota,omitempty"`    // nil: no daily quota applies
	Schedule   *ScheduleStatus   `json:"schedule,omitempty"` // nil: its client has no schedule
	Values
}

// Today is what a device used since local midnight, over all providers.
type Today struct {
	Tokens   uint64 `json:"tokens"`
	Requests uint64 `json:"requests"`
	Bytes    uint64 `json:"bytes"`
}

// Quota is the daily quota in force for a device; 0 is no limit.
type Quota struct {
	Tokens   int64 `json:"tokens"`
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
}

// ScheduleStatus is a device's schedule now.
type ScheduleStatus struct {
	Open    bool      `json:"open"`
	Windows string    `json:"windows"` // "Mon,Tue,Wed,Thu,Fri 15:00-20:00; Sat,Sun 09:00-21:00"
	Next    time.Time `json:"next"`    // when it next opens or closes; zero: never (left out)
}

// MarshalJSON leaves "next" out when the schedule never changes (what the omitzero tag does
// from Go 1.24 on; go.mod's go line is older), for encoding/json's users: the daemon writes it
// with EncodeJSON.
func (s ScheduleStatus) MarshalJSON() ([]byte, error) { return jsonw.Marshal(&s) }

// Status is the /status document. `airelay status --json` prints it and LuCI reads it.
type Status struct {
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	// Disabled: the serving config says option enabled '0', so airelay relays nothing (DNS
	// forwarded, no name relayed, the gateway's 503 disabled).
	Disabled  bool              `json:"disabled,omitempty"`
	Config    ConfigStatus      `json:"config"`
	Listeners map[string]string `json:"listeners"`
	Providers []ProviderStatus  `json:"providers"`
	Devices   []DeviceStatus    `json:"devices"`
	Redirect  *RedirectStatus   `json:"redirect,omitempty"` // nil: not known (not on OpenWrt)
	// Networks lists the router's LAN-side networks and whether each is served; empty when
	// not known (not on OpenWrt).
	Networks []NetworkStatus `json:"networks,omitempty"`
}

// NetworkStatus is one LAN-side network of the router.
type NetworkStatus struct {
	Name   string `json:"name"`             // OpenWrt network: lan, guest
	Device string `json:"device,omitempty"` // br-lan
	Zone   string `json:"zone,omitempty"`   // its fw4 zone
	IPv4   string `json:"ipv4,omitempty"`   // the router's address on it
	IPv6   string `json:"ipv6,omitempty"`
	// Served: its devices are intercepted, relayed, counted and controlled. Not served: its
	// devices are left untouched (real DNS answers, nothing redirected), or passed through.
	Served bool   `json:"served"`
	Reason string `json:"reason,omitempty"` // why not served, or what is wrong with it
	// Mode says how it is not served: "served", "untouched", or "passthrough" (its resolver
	// also serves a served network, so its AI names resolve to the router, whose relay passes
	// its HTTPS through with no rule or count).
	Mode string `json:"mode,omitempty"`
}

// RedirectStatus is whether the firewall sends the LAN's HTTPS to the router on to the relay.
// The init script knows (it loads the rules and reads them back from the ruleset) and writes
// it to a state file that the daemon reads when status is asked for.
type RedirectStatus struct {
	Active bool   `json:"active"`
	Reason string `json:"reason,omitempty"` // why not, or what it is
}

// ParseRedirect reads the state file: a first line "active" or "inactive", then the reason,
// then lines "net <network> active|inactive [reason]" (ParseRedirectNetworks). Anything else is
// reported as not active, with the file's first line as the reason.
func ParseRedirect(b []byte) *RedirectStatus {
	state, rest, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(l, "net ") {
			lines = append(lines, l)
		}
	}
	reason := strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
	if len(reason) > 512 {
		reason = reason[:512]
	}
	switch strings.TrimSpace(state) {
	case "active":
		return &RedirectStatus{Active: true, Reason: reason}
	case "inactive":
		return &RedirectStatus{Reason: reason}
	}
	return &RedirectStatus{Reason: "unreadable redirect state: " + strconv.Quote(strings.TrimSpace(state))}
}

// ParseRedirectNetworks reads the state file's per-network lines.
func ParseRedirectNetworks(b []byte) map[string]RedirectStatus {
	m := map[string]RedirectStatus{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "net" {
			continue
		}
		r := RedirectStatus{Active: f[2] == "active", Reason: strings.Join(f[3:], " ")}
		if len(r.Reason) > 512 {
			r.Reason = r.Reason[:512]
		}
		m[f[1]] = r
	}
	return m
}

// ConfigStatus says which config is serving.
type ConfigStatus struct {
	Generation uint64    `json:"generation"`
	Source     string    `json:"source"`
	LoadedAt   time.Time `json:"loaded_at"`
	LastError  string    `json:"last_error,omitempty"` // the last failed reload, if any since
	// State is which config serves: "current" (the config on disk passed), "last_valid" (it
	// did not pass; the last config that passed serves) or "fail_closed" (no config ever
	// passed; devices the invalid config restricts are refused). Empty is "current".
	State string `json:"state,omitempty"`
	// Message says it for people when State is not "current": "serving the last valid config
	// from <time>; /etc/config/airelay: …". Never holds a key.
	Message string `json:"message,omitempty"`
}

// ProviderInfo is what the snapshot needs to know of a configured provider.
type ProviderInfo struct {
	ID      string
	Enabled bool
}

// Snapshot copies the counters. providers lists the configured providers in order (counters of
// providers no longer configured are left out); label names a device from its address and MAC.
func (r *Registry) Snapshot(providers []ProviderInfo, label func(addr netip.Addr, mac string) (client, name string)) (ps []ProviderStatus, ds []DeviceStatus) {
	for _, p := range providers {
		ps = append(ps, ProviderStatus{ID: p.ID, Enabled: p.Enabled, Values: r.Provider(p.ID).values()})
	}
	for _, d := range r.Devices() {
		s := DeviceStatus{Addr: "other", MAC: d.MAC(), LastSeen: time.Unix(0, d.lastSeen.Load()).UTC(), Values: d.Total.values(), Providers: map[string]Values{}}
		if d.Addr.IsValid() {
			s.Addr = d.Addr.String()
			if label != nil {
				s.Client, s.Name = label(d.Addr, s.MAC)
			}
		}
		d.mu.Lock()
		for id, c := range d.perProv {
			s.Providers[id] = c.values()
		}
		d.mu.Unlock()
		ds = append(ds, s)
	}
	// sort.Slice, not slices.SortFunc: the generic sort is compiled again for each struct shape
	// (12 KB of mipsle code for DeviceStatus), sort's code is shared and already linked.
	sort.Slice(ds, func(i, j int) bool { return ds[i].Addr < ds[j].Addr })
	return ps, ds
}

// WriteMetrics writes s in the Prometheus text exposition format.
func WriteMetrics(w io.Writer, s *Status) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP airelay_uptime_seconds Seconds since airelay started.\n# TYPE airelay_uptime_seconds gauge\nairelay_uptime_seconds %d\n", s.UptimeSeconds)
	fmt.Fprintf(&b, "# HELP airelay_config_generation Number of configs loaded since start.\n# TYPE airelay_config_generation gauge\nairelay_config_generation %d\n", s.Config.Generation)
	fmt.Fprintf(&b, "# HELP airelay_build_info Version of the running binary.\n# TYPE airelay_build_info gauge\nairelay_build_info{version=%s} 1\n", quote(s.Version))
	if s.Redirect != nil {
		active := 0
		if s.Redirect.Active {
			active = 1
		}
		fmt.Fprintf(&b, "# HELP airelay_tls_redirect_active Whether the firewall redirects the LAN's HTTPS to the relay.\n# TYPE airelay_tls_redirect_active gauge\nairelay_tls_redirect_active %d\n", active)
	}

	type series struct {
		labels string
		v      Values
	}
	var prov, dev, devProv []series
	for _, p := range s.Providers {
		prov = append(prov, series{"provider=" + quote(p.ID), p.Values})
	}
	for _, d := range s.Devices {
		l := "device=" + quote(d.Addr)
		if d.MAC != "" {
			l += ",mac=" + quote(d.MAC)
		}
		if d.Client != "" {
			l += ",client=" + quote(d.Client)
		}
		dev = append(dev, series{l, d.Values})
		ids := make([]string, 0, len(d.Providers))
		for id := range d.Providers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			devProv = append(devProv, series{l + ",provider=" + quote(id), d.Providers[id]})
		}
	}
	metric := func(name, typ, help string, get func(Values) uint64) {
		for _, g := range [...]struct {
			scope string
			rows  []series
		}{{"provider", prov}, {"device", dev}, {"device_provider", devProv}} {
			full := "airelay_" + g.scope + "_" + name
			fmt.Fprintf(&b, "# HELP %s %s (per %s).\n# TYPE %s %s\n", full, help, strings.ReplaceAll(g.scope, "_", " and "), full, typ)
			for _, r := range g.rows {
				fmt.Fprintf(&b, "%s{%s} %d\n", full, r.labels, get(r.v))
			}
		}
	}
	metric("connections_total", "counter", "Relay connections", func(v Values) uint64 { return v.Conns })
	metric("active", "gauge", "Connections and requests in progress", func(v Values) uint64 { return uint64(max(v.Active, 0)) })
	metric("requests_total", "counter", "Gateway requests", func(v Values) uint64 { return v.Requests })
	metric("denied_total", "counter", "Connections and requests refused by access rules", func(v Values) uint64 { return v.Denied })
	metric("upstream_errors_total", "counter", "Upstream failures", func(v Values) uint64 { return v.Errors })
	metric("bytes_up_total", "counter", "Bytes from devices to providers", func(v Values) uint64 { return v.BytesUp })
	metric("bytes_down_total", "counter", "Bytes from providers to devices", func(v Values) uint64 { return v.BytesDown })
	metric("tokens_in_total", "counter", "Input tokens reported by providers", func(v Values) uint64 { return v.TokensIn })
	metric("tokens_out_total", "counter", "Output tokens reported by providers", func(v Values) uint64 { return v.TokensOut })
	metric("tokens_estimated_total", "counter", "Gateway answers without reported usage whose tokens were estimated from the bytes", func(v Values) uint64 { return v.TokensEstimated })
	metric("write_timeouts_total", "counter", "Connections cut because the device took no byte for write_timeout", func(v Values) uint64 { return v.WriteTimeouts })
	for _, g := range [...]struct {
		scope string
		rows  []series
	}{{"provider", prov}, {"device", dev}} {
		full := "airelay_" + g.scope + "_responses_total"
		fmt.Fprintf(&b, "# HELP %s Gateway responses by status class (per %s).\n# TYPE %s counter\n", full, g.scope, full)
		for _, r := range g.rows {
			for i, n := range r.v.Status {
				class := "other"
				if i > 0 {
					class = strconv.Itoa(i) + "xx"
				}
				fmt.Fprintf(&b, "%s{%s,class=\"%s\"} %d\n", full, r.labels, class, n)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// quote renders a Prometheus label value.
func quote(s string) string {
	s = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
	return `"` + s + `"`
}
