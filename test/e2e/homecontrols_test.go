package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"time"
)

// clockFile is the router's test clock (AIRELAY_CLOCK_FILE): an RFC 3339 time the daemon's
// clock starts from at each SIGHUP. Without the file, the real clock.
const clockFile = "tmp/airelay-clock"

type quotaOut struct {
	Quota struct {
		Completed int `json:"completed"`
		Tokens    int `json:"tokens"`
		Error     *struct {
			Name    string `json:"name"`
			Status  int    `json:"status"`
			Type    string `json:"type"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"quota"`
}

type historyDoc struct {
	From string `json:"from"`
	To   string `json:"to"`
	Rows []struct {
		Day      string `json:"day"`
		Addr     string `json:"addr"`
		Name     string `json:"name"`
		Provider string `json:"provider"`
		Denied   uint64 `json:"denied"`
		TokensIn uint64 `json:"tokens_in"`
	} `json:"rows"`
}

// --- 8. home controls: a schedule that closes and opens, a daily token quota ---

// homeScenario moves the router's clock (the test clock, not a sleep) across the phone's
// schedule: closed, the relay refuses its TLS and the gateway answers 403 schedule_closed;
// open again, both work. Then a daily token quota: the official openai SDK, with its default
// retries, gets a 429 insufficient_quota it raises as RateLimitError without retrying; the next
// local day the quota starts again. History and status show all of it.
func homeScenario(s *sc) {
	h := s.h
	good, _ := os.ReadFile(h.path(confPath))
	defer func() {
		os.WriteFile(h.path(confPath), good, 0o600)
		os.Remove(h.path(clockFile))
		h.initReload()
	}()
	setClock := func(t string) {
		if err := os.WriteFile(h.path(clockFile), []byte(t+"\n"), 0o644); err != nil {
			s.fatalf("%v", err)
		}
	}
	reload := func(extra string) {
		os.WriteFile(h.path(confPath), append(append([]byte(nil), good...), extra...), 0o600)
		gen := s.status().Config.Generation
		if err := h.initReload(); err != nil {
			s.fatalf("reload: %v", err)
		}
		for deadline := time.Now().Add(10 * time.Second); s.status().Config.Generation == gen; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				s.fatalf("the daemon did not reload")
			}
		}
	}
	schedule := "\nconfig client 'phone'\n\tlist schedule 'Mon-Fri 15:00-20:00'\n"

	// Monday 21:00: the window closed at 20:00
	setClock("2026-12-07T21:00:00Z")
	reload(schedule)
	c := s.curl(h.lan, "https://"+openai.host+"/v1/models")
	if c.ok() || !strings.Contains(strings.ToLower(c.errOut), "access denied") {
		s.fatalf("relay outside the schedule: %s", c.result)
	}
	g := s.curl(h.lan, gateway+"/openai/v1/models")
	if g.status != 403 || !strings.Contains(g.body, `"code":"schedule_closed"`) || !strings.Contains(g.body, "closed by its schedule until Tue 15:00") {
		s.fatalf("gateway outside the schedule: %d %s", g.status, g.body)
	}
	d := device(s.status(), phoneAddr)
	if d.Schedule == nil || d.Schedule.Open || !d.Schedule.Next.Equal(time.Date(2026, 12, 8, 15, 0, 0, 0, time.UTC)) || d.Name != "Phone" || d.NameSource != "client" {
		s.fatalf("status outside the schedule: %+v", d.Schedule)
	}
	s.prove("clock Mon 21:00 (window Mon-Fri 15:00-20:00): relay TLS alert access_denied, gateway 403 %q; status: closed, opens %s", firstLine(jsonField(g.body, "message")), d.Schedule.Next.Format("Mon 15:04"))

	// Tuesday 16:00: open again
	setClock("2026-12-08T16:00:00Z")
	reload(schedule)
	if !s.relayWorks() {
		s.fatalf("relay inside the schedule does not work")
	}
	if g := s.curl(h.lan, gateway+"/openai/v1/models"); g.status != 200 {
		s.fatalf("gateway inside the schedule: %d %s", g.status, g.body)
	}
	s.prove("clock Tue 16:00: relay and gateway work again")

	// a daily token quota through the gateway, with the official SDK
	quota := schedule + "\toption daily_tokens '100'\n"
	reload(quota)
	var q quotaOut
	if r := s.node(h.lan, "openai.mjs", &q, "E2E_KEY=sk-placeholder", "E2E_BASE_URL="+gateway+"/openai/v1", "E2E_MODE=quota"); !r.ok() {
		s.fatalf("openai SDK: %s", r)
	}
	e := q.Quota.Error
	if q.Quota.Completed < 1 || e == nil || e.Status != 429 || e.Name != "RateLimitError" || e.Type != "insufficient_quota" || e.Code != "daily_token_quota" || !strings.Contains(e.Message, "daily token quota of 100") {
		s.fatalf("openai SDK against the quota: %+v", q.Quota)
	}
	reqBefore := device(s.status(), phoneAddr).Requests
	var q2 quotaOut
	s.node(h.lan, "openai.mjs", &q2, "E2E_KEY=sk-placeholder", "E2E_BASE_URL="+gateway+"/openai/v1", "E2E_MODE=quota")
	d = device(s.status(), phoneAddr)
	if q2.Quota.Completed != 0 || q2.Quota.Error == nil || d.Requests-reqBefore != 1 {
		s.fatalf("a second run past the quota: %+v; gateway requests +%d, want +1 (no SDK retry)", q2.Quota, d.Requests-reqBefore)
	}
	if d.Today == nil || d.Today.Tokens < 100 || d.Quota == nil || d.Quota.Tokens != 100 {
		s.fatalf("status past the quota: today %+v quota %+v", d.Today, d.Quota)
	}
	s.prove("daily_tokens 100: openai SDK (default retries) completed %d (%d tokens), then %s %d %s/%s without retrying (gateway requests +1); status today %d tokens of %d",
		q.Quota.Completed, q.Quota.Tokens, e.Name, e.Status, e.Type, e.Code, d.Today.Tokens, d.Quota.Tokens)

	// the next local day the quota starts again
	setClock("2026-12-09T16:00:00Z")
	reload(quota)
	var q3 quotaOut
	if r := s.node(h.lan, "openai.mjs", &q3, "E2E_KEY=sk-placeholder", "E2E_BASE_URL="+gateway+"/openai/v1", "E2E_MODE=quota"); !r.ok() || q3.Quota.Completed < 1 {
		s.fatalf("the next day: %+v %s", q3.Quota, r)
	}
	s.prove("clock Wed 16:00: the quota reset at midnight; the SDK completes %d again", q3.Quota.Completed)

	r := runIn(h.router, 10*time.Second, nil, h.airelayBin, "history", "--json", "--days", "3", "--config", h.path(runConf))
	var hist historyDoc
	if !r.ok() || json.Unmarshal([]byte(r.out), &hist) != nil || hist.From != "2026-12-07" || hist.To != "2026-12-09" {
		s.fatalf("airelay history: %s", r)
	}
	type day struct {
		name           string
		denied, tokens uint64
	}
	perDay := map[string]day{}
	for _, row := range hist.Rows {
		if row.Addr == phoneAddr && row.Provider == "openai" {
			perDay[row.Day] = day{row.Name, row.Denied, row.TokensIn}
		}
	}
	// Monday: the relay's alert and the gateway's 403; Tuesday and Wednesday: tokens
	if d := perDay["2026-12-07"]; d.name != "Phone" || d.denied < 2 || perDay["2026-12-08"].tokens == 0 || perDay["2026-12-09"].tokens == 0 {
		s.fatalf("history rows of the phone at openai: %+v", perDay)
	}
	s.prove("airelay history --days 3, phone at openai: Mon denied %d, Tue %d tokens in, Wed %d tokens in", perDay["2026-12-07"].denied, perDay["2026-12-08"].tokens, perDay["2026-12-09"].tokens)
}

// jsonField is the string value of name anywhere in a JSON body, for messages.
func jsonField(body, name string) string {
	var v map[string]any
	if json.Unmarshal([]byte(body), &v) != nil {
		return ""
	}
	if e, ok := v["error"].(map[string]any); ok {
		v = e
	}
	s, _ := v[name].(string)
	return s
}
