package main

// homeConfig puts every bench device (127.0.0.1) under a schedule that is always open and daily
// quotas that never run out, and sets main's defaults too: each gateway request and relay
// connection then takes the whole decision (rules, schedule, today's use against three quotas)
// without ever being refused.
const homeConfig = `
config airelay 'main'
	option default_daily_tokens '1000000000000'
	option default_daily_bytes '1000G'

config client 'bench'
	option name 'bench device'
	list ip '127.0.0.1'
	list schedule 'daily 00:00-24:00'
	option daily_tokens '1000000000000'
	option daily_requests '1000000000000'
	option daily_bytes '1000G'
`

// runHome measures airelay as shipped (e.air) beside airelay with homeConfig, one after the
// other on the same CPU, same load: gateway requests at the first concurrency, and relay
// handshakes (issue 16: schedules and quotas must cost nothing measurable).
func (e *env) runHome() error {
	home, err := e.startAirelayWith("airelay-home", "s_", homeConfig, 1, e.p.ProxyCPUs)
	if err != nil {
		return err
	}
	defer home.stop()
	ts := []l7Target{
		{name: "airelay", base: "http://" + e.addr("air_http") + "/openai/v1", proxy: e.air},
		{name: "airelay + schedule + quotas", base: "http://" + e.addr("s_air_http") + "/openai/v1", proxy: home},
	}
	sec := &HomeSection{L7: e.l7("gateway, plain upstream, with and without schedules and quotas", ts, false, e.p.Concurrency[:1], min(e.p.Rounds, 2))}
	sec.Relay = e.handshakes([]relayTarget{
		{name: "airelay", addr: e.addr("air_tls"), proxy: e.air},
		{name: "airelay + schedule + quotas", addr: e.addr("s_air_tls"), proxy: home},
	}, e.p.Rounds)
	e.res.Home = sec
	return nil
}
