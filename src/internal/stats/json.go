package stats

import "github.com/airelay/airelay/src/internal/jsonw"

// The /status document as JSON: written by the daemon, read back by `airelay status`. Each
// type writes its members in the order of its struct's fields under their json tags, as
// encoding/json would (json_test.go holds them to it); keep both in step when a field is added.

// EncodeJSON writes the /status document.
func (s *Status) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("version").String(s.Version)
	w.Key("uptime_seconds").Int(s.UptimeSeconds)
	if s.Disabled {
		w.Key("disabled").Bool(true)
	}
	w.Key("config")
	s.Config.EncodeJSON(w)
	w.Key("listeners")
	jsonw.Map(w, s.Listeners, func(v *string, w *jsonw.Writer) { w.String(*v) })
	w.Key("providers")
	jsonw.Slice(w, s.Providers, (*ProviderStatus).EncodeJSON)
	w.Key("devices")
	jsonw.Slice(w, s.Devices, (*DeviceStatus).EncodeJSON)
	if s.Redirect != nil {
		w.Key("redirect")
		s.Redirect.EncodeJSON(w)
	}
	if len(s.Networks) > 0 {
		w.Key("networks")
		jsonw.Slice(w, s.Networks, (*NetworkStatus).EncodeJSON)
	}
	w.EndObject()
}

var statusFields = jsonw.Fields{"version", "uptime_seconds", "disabled", "config", "listeners", "providers", "devices", "redirect", "networks"}

// DecodeJSON reads the /status document.
func (s *Status) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch statusFields.Name(name) {
		case "version":
			return d.String(&s.Version)
		case "uptime_seconds":
			return d.Int64(&s.UptimeSeconds)
		case "disabled":
			return d.Bool(&s.Disabled)
		case "config":
			return s.Config.DecodeJSON(d)
		case "listeners":
			return jsonw.DecodeMap(d, &s.Listeners, func(v *string, d *jsonw.Decoder) error { return d.String(v) })
		case "providers":
			return jsonw.DecodeSlice(d, &s.Providers, (*ProviderStatus).DecodeJSON)
		case "devices":
			return jsonw.DecodeSlice(d, &s.Devices, (*DeviceStatus).DecodeJSON)
		case "redirect":
			return jsonw.DecodePtr(d, &s.Redirect, (*RedirectStatus).DecodeJSON)
		case "networks":
			return jsonw.DecodeSlice(d, &s.Networks, (*NetworkStatus).DecodeJSON)
		}
		return d.Skip()
	})
}

// EncodeJSON writes c.
func (c *ConfigStatus) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("generation").Uint(c.Generation)
	w.Key("source").String(c.Source)
	w.Key("loaded_at").Time(c.LoadedAt)
	if c.LastError != "" {
		w.Key("last_error").String(c.LastError)
	}
	if c.State != "" {
		w.Key("state").String(c.State)
	}
	if c.Message != "" {
		w.Key("message").String(c.Message)
	}
	w.EndObject()
}

var configFields = jsonw.Fields{"generation", "source", "loaded_at", "last_error", "state", "message"}

// DecodeJSON reads c.
func (c *ConfigStatus) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch configFields.Name(name) {
		case "generation":
			return d.Uint(&c.Generation)
		case "source":
			return d.String(&c.Source)
		case "loaded_at":
			return d.Time(&c.LoadedAt)
		case "last_error":
			return d.String(&c.LastError)
		case "state":
			return d.String(&c.State)
		case "message":
			return d.String(&c.Message)
		}
		return d.Skip()
	})
}

// EncodeJSON writes v.
func (v *Values) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	v.members(w)
	w.EndObject()
}

// members writes v's members: alone, or embedded in ProviderStatus and DeviceStatus.
func (v *Values) members(w *jsonw.Writer) {
	w.Key("connections").Uint(v.Conns)
	w.Key("active").Int(v.Active)
	w.Key("requests").Uint(v.Requests)
	w.Key("denied").Uint(v.Denied)
	w.Key("errors").Uint(v.Errors)
	w.Key("bytes_up").Uint(v.BytesUp)
	w.Key("bytes_down").Uint(v.BytesDown)
	w.Key("tokens_in").Uint(v.TokensIn)
	w.Key("tokens_out").Uint(v.TokensOut)
	w.Key("tokens_estimated").Uint(v.TokensEstimated)
	w.Key("write_timeouts").Uint(v.WriteTimeouts)
	w.Key("status").BeginArray()
	for _, n := range v.Status {
		w.Uint(n)
	}
	w.EndArray()
}

var valuesFields = jsonw.Fields{"connections", "active", "requests", "denied", "errors", "bytes_up", "bytes_down",
	"tokens_in", "tokens_out", "tokens_estimated", "write_timeouts", "status"}

// DecodeJSON reads v.
func (v *Values) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error { return v.member(d, valuesFields.Name(name)) })
}

// member reads the member name (a name of valuesFields, or "" to skip the value).
func (v *Values) member(d *jsonw.Decoder, name string) error {
	switch name {
	case "connections":
		return d.Uint(&v.Conns)
	case "active":
		return d.Int64(&v.Active)
	case "requests":
		return d.Uint(&v.Requests)
	case "denied":
		return d.Uint(&v.Denied)
	case "errors":
		return d.Uint(&v.Errors)
	case "bytes_up":
		return d.Uint(&v.BytesUp)
	case "bytes_down":
		return d.Uint(&v.BytesDown)
	case "tokens_in":
		return d.Uint(&v.TokensIn)
	case "tokens_out":
		return d.Uint(&v.TokensOut)
	case "tokens_estimated":
		return d.Uint(&v.TokensEstimated)
	case "write_timeouts":
		return d.Uint(&v.WriteTimeouts)
	case "status":
		// an array: elements past its length are zeroed, those past 6 skipped; null is no change
		if d.Null() {
			return nil
		}
		n := 0
		err := d.Array(func(i int) error {
			n = i + 1
			if i < len(v.Status) {
				return d.Uint(&v.Status[i])
			}
			return d.Skip()
		})
		for i := n; i < len(v.Status); i++ {
			v.Status[i] = 0
		}
		return err
	}
	return d.Skip()
}

// EncodeJSON writes p.
func (p *ProviderStatus) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("id").String(p.ID)
	w.Key("enabled").Bool(p.Enabled)
	p.Values.members(w)
	w.EndObject()
}

var providerFields = append(jsonw.Fields{"id", "enabled"}, valuesFields...)

// DecodeJSON reads p.
func (p *ProviderStatus) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch n := providerFields.Name(name); n {
		case "id":
			return d.String(&p.ID)
		case "enabled":
			return d.Bool(&p.Enabled)
		default:
			return p.Values.member(d, n)
		}
	})
}

// EncodeJSON writes v.
func (v *DeviceStatus) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("addr").String(v.Addr)
	for _, m := range [...]struct{ k, v string }{
		{"mac", v.MAC}, {"client", v.Client}, {"network", v.Network}, {"name", v.Name}, {"name_source", v.NameSource},
	} {
		if m.v != "" {
			w.Key(m.k).String(m.v)
		}
	}
	w.Key("last_seen").Time(v.LastSeen)
	w.Key("providers")
	jsonw.Map(w, v.Providers, (*Values).EncodeJSON)
	if v.Today != nil {
		w.Key("today")
		v.Today.EncodeJSON(w)
	}
	if v.Quota != nil {
		w.Key("quota")
		v.Quota.EncodeJSON(w)
	}
	if v.Schedule != nil {
		w.Key("schedule")
		v.Schedule.EncodeJSON(w)
	}
	v.Values.members(w)
	w.EndObject()
}

var (
	deviceFields = append(jsonw.Fields{"addr", "mac", "client", "network", "name", "name_source", "last_seen", "providers",
		"today", "quota", "schedule"}, valuesFields...)
	amountFields = jsonw.Fields{"tokens", "requests", "bytes"} // of Today and Quota
)

// DecodeJSON reads v.
func (v *DeviceStatus) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch n := deviceFields.Name(name); n {
		case "addr":
			return d.String(&v.Addr)
		case "mac":
			return d.String(&v.MAC)
		case "client":
			return d.String(&v.Client)
		case "network":
			return d.String(&v.Network)
		case "name":
			return d.String(&v.Name)
		case "name_source":
			return d.String(&v.NameSource)
		case "last_seen":
			return d.Time(&v.LastSeen)
		case "providers":
			return jsonw.DecodeMap(d, &v.Providers, (*Values).DecodeJSON)
		case "today":
			return jsonw.DecodePtr(d, &v.Today, (*Today).DecodeJSON)
		case "quota":
			return jsonw.DecodePtr(d, &v.Quota, (*Quota).DecodeJSON)
		case "schedule":
			return jsonw.DecodePtr(d, &v.Schedule, (*ScheduleStatus).DecodeJSON)
		default:
			return v.Values.member(d, n)
		}
	})
}

// EncodeJSON writes t.
func (t *Today) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("tokens").Uint(t.Tokens)
	w.Key("requests").Uint(t.Requests)
	w.Key("bytes").Uint(t.Bytes)
	w.EndObject()
}

// DecodeJSON reads t.
func (t *Today) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch amountFields.Name(name) {
		case "tokens":
			return d.Uint(&t.Tokens)
		case "requests":
			return d.Uint(&t.Requests)
		case "bytes":
			return d.Uint(&t.Bytes)
		}
		return d.Skip()
	})
}

// EncodeJSON writes q.
func (q *Quota) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("tokens").Int(q.Tokens)
	w.Key("requests").Int(q.Requests)
	w.Key("bytes").Int(q.Bytes)
	w.EndObject()
}

// DecodeJSON reads q.
func (q *Quota) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch amountFields.Name(name) {
		case "tokens":
			return d.Int64(&q.Tokens)
		case "requests":
			return d.Int64(&q.Requests)
		case "bytes":
			return d.Int64(&q.Bytes)
		}
		return d.Skip()
	})
}

// EncodeJSON writes s, without "next" when the schedule never changes.
func (s *ScheduleStatus) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("open").Bool(s.Open)
	w.Key("windows").String(s.Windows)
	if !s.Next.IsZero() {
		w.Key("next").Time(s.Next)
	}
	w.EndObject()
}

var scheduleFields = jsonw.Fields{"open", "windows", "next"}

// DecodeJSON reads s.
func (s *ScheduleStatus) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch scheduleFields.Name(name) {
		case "open":
			return d.Bool(&s.Open)
		case "windows":
			return d.String(&s.Windows)
		case "next":
			return d.Time(&s.Next)
		}
		return d.Skip()
	})
}

// EncodeJSON writes r.
func (r *RedirectStatus) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("active").Bool(r.Active)
	if r.Reason != "" {
		w.Key("reason").String(r.Reason)
	}
	w.EndObject()
}

var redirectFields = jsonw.Fields{"active", "reason"}

// DecodeJSON reads r.
func (r *RedirectStatus) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch redirectFields.Name(name) {
		case "active":
			return d.Bool(&r.Active)
		case "reason":
			return d.String(&r.Reason)
		}
		return d.Skip()
	})
}

// EncodeJSON writes n.
func (n *NetworkStatus) EncodeJSON(w *jsonw.Writer) {
	w.BeginObject()
	w.Key("name").String(n.Name)
	for _, m := range [...]struct{ k, v string }{{"device", n.Device}, {"zone", n.Zone}, {"ipv4", n.IPv4}, {"ipv6", n.IPv6}} {
		if m.v != "" {
			w.Key(m.k).String(m.v)
		}
	}
	w.Key("served").Bool(n.Served)
	if n.Reason != "" {
		w.Key("reason").String(n.Reason)
	}
	if n.Mode != "" {
		w.Key("mode").String(n.Mode)
	}
	w.EndObject()
}

var networkFields = jsonw.Fields{"name", "device", "zone", "ipv4", "ipv6", "served", "reason", "mode"}

// DecodeJSON reads n.
func (n *NetworkStatus) DecodeJSON(d *jsonw.Decoder) error {
	return d.Object(func(name []byte) error {
		switch networkFields.Name(name) {
		case "name":
			return d.String(&n.Name)
		case "device":
			return d.String(&n.Device)
		case "zone":
			return d.String(&n.Zone)
		case "ipv4":
			return d.String(&n.IPv4)
		case "ipv6":
			return d.String(&n.IPv6)
		case "served":
			return d.Bool(&n.Served)
		case "reason":
			return d.String(&n.Reason)
		case "mode":
			return d.String(&n.Mode)
		}
		return d.Skip()
	})
}
