package e2e

import (
	"os"
	"strings"
	"time"
)

// --- 10. mistakes in the config (issue 19): refused where made, shown where the user looks,
// and never a wider access ---

// mistakesScenario edits the kid's client section the way a user at a shell does, with a
// mistake each time: a misspelt option at reload, a misspelt schedule at start (airelay
// stopped and started again, as at boot) with a last valid config on flash, and the same with
// none (a fresh install edited wrongly). The kid stays restricted throughout; the phone, whose
// section has no mistake, keeps working.
func mistakesScenario(s *sc) {
	s.part("10a-typo-reload", typoAtReload)
	s.part("10b-bad-start", badConfigAtStart)
}

// typoAtReload: `uci delete airelay.kids.access; uci set airelay.kids.acess=deny; uci commit`.
// An unknown option used to be ignored with a warning, which left the kid allowed.
func typoAtReload(s *sc) {
	h := s.h
	good, _ := os.ReadFile(h.path(confPath))
	defer func() {
		os.WriteFile(h.path(confPath), good, 0o600)
		h.initReload()
	}()
	gen := s.status().Config.Generation
	typo := strings.Replace(string(good), "\toption access 'deny'\n", "\toption acess 'deny'\n", 1)
	if typo == string(good) {
		s.fatalf("the site config has no kid denied by 'option access'")
	}
	os.WriteFile(h.path(confPath), []byte(typo), 0o600)
	err := h.initReload()
	if err == nil || !strings.Contains(err.Error(), "section 'kids' option 'acess': 'client' sections have no such option (did you mean 'access'?)") {
		s.fatalf("reload with option acess: %v, want it refused naming section, option and 'did you mean'", err)
	}
	st := s.waitConfig(func(st *statusDoc) bool { return st.Config.State == "last_valid" })
	if st.Config.Generation != gen || !strings.Contains(st.Config.Message, "option 'acess'") {
		s.fatalf("status after the refused reload: %+v", st.Config)
	}
	why := err.Error()[strings.Index(err.Error(), "section "):]
	s.prove("uci set kids.acess=deny + reload: refused (%s); status state %s, generation %d kept", firstLine(why), st.Config.State, st.Config.Generation)
	s.kidRefused("after the refused reload", "access_denied", "")
	if !s.relayWorks() {
		s.fatalf("the phone lost the relay")
	}
	s.prove("kid still denied (relay TLS alert, gateway 403 access_denied); the phone's relay works")
}

// badConfigAtStart: airelay stopped, the kid's section changed to a schedule with a misspelt
// day, airelay started (as at boot). First with the last valid config on flash, then with none.
func badConfigAtStart(s *sc) {
	h := s.h
	good, _ := os.ReadFile(h.path(confPath))
	defer func() {
		os.WriteFile(h.path(confPath), good, 0o600)
		h.initStop()
		if said, err := h.initStart(); err != nil || said != "" {
			s.errorf("start with the good config again: %v %s", err, said)
		}
	}()
	bad := strings.Replace(string(good), "\toption access 'deny'\n", "\tlist schedule 'Mon-Fry 15:00-20:00'\n", 1)
	wantWhy := "section 'kids' option 'schedule' value 'Mon-Fry 15:00-20:00': unknown day 'Fry'"

	if err := h.initStop(); err != nil {
		s.fatalf("stop: %v", err)
	}
	if _, err := os.Stat(h.path(lastValid)); err != nil {
		s.fatalf("no last valid config kept while the good one served: %v", err)
	}
	os.WriteFile(h.path(confPath), []byte(bad), 0o600)
	said, err := h.initStart()
	if err != nil || !strings.HasPrefix(said, "serving the last valid config from ") || !strings.Contains(said, wantWhy) {
		s.fatalf("start with a misspelt schedule: %v, said %q", err, said)
	}
	st := s.waitConfig(func(st *statusDoc) bool { return st.Config.State != "" })
	if st.Config.State != "last_valid" || st.Config.Message != said {
		s.fatalf("status: %+v, want last_valid and %q", st.Config, said)
	}
	s.prove("start with 'Mon-Fry': %q; status state %s", firstLine(said[:strings.Index(said, ";")]), st.Config.State)
	s.kidRefused("last valid config serving", "access_denied", "")
	if !s.relayWorks() {
		s.fatalf("the phone's relay does not work with the last valid config")
	}
	s.prove("the last valid config serves: kid denied on relay and gateway, the phone relayed")

	// a fresh install edited wrongly: no last valid config. The misspelt section is read
	// strictly: the kid is refused, told why; the phone's section has no mistake
	if err := h.initStop(); err != nil {
		s.fatalf("stop: %v", err)
	}
	os.Remove(h.path(lastValid))
	said, err = h.initStart()
	if err != nil || !strings.HasPrefix(said, "no valid config to serve, so "+h.path(confPath)+" is read strictly") || !strings.Contains(said, wantWhy) {
		s.fatalf("start with a misspelt schedule and no last valid config: %v, said %q", err, said)
	}
	st = s.waitConfig(func(st *statusDoc) bool { return st.Config.State != "" })
	if st.Config.State != "fail_closed" || st.Config.Message != said {
		s.fatalf("status: %+v, want fail_closed", st.Config)
	}
	d := s.dig(h.kid, openai.host, "A")
	if d.rcode != "NOERROR" || len(d.answers) != 1 || d.answers[0] != "A "+routerLAN {
		s.fatalf("kid's DNS for %s: %s %v, want the router (still intercepted)", openai.host, d.rcode, d.answers)
	}
	msg := s.kidRefused("fail-closed", "config_invalid", "section 'kids' option 'schedule'")
	if strings.Contains(msg, "Mon-Fry") {
		s.fatalf("fail-closed: the kid is told the value, not only where it is: %q", msg)
	}
	if !s.relayWorks() {
		s.fatalf("the phone's relay does not work fail-closed")
	}
	s.prove("no last valid config: %s still resolves to the router for kid; kid refused: relay TLS alert, gateway 403 config_invalid %q; the phone relayed", openai.host, firstLine(msg))
	if _, err := os.Stat(h.path(lastValid)); err == nil {
		s.fatalf("the failing config was kept as the last valid one")
	}
}

// waitConfig returns the status once ok holds for it (the daemon handles SIGHUP on its own time).
func (s *sc) waitConfig(ok func(*statusDoc) bool) *statusDoc {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := s.status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.fatalf("status config still %+v", st.Config)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kidRefused checks the kid gets through neither the relay (TLS alert access_denied) nor the
// gateway (403 with code, and why in its message when set), and returns the gateway's message.
func (s *sc) kidRefused(when, code, why string) string {
	s.t.Helper()
	c := s.curl(s.h.kid, "--max-time", "10", "https://"+openai.host+"/v1/models")
	if c.ok() || !strings.Contains(strings.ToLower(c.errOut), "access denied") {
		s.fatalf("%s: kid through the relay: %s", when, c.result)
	}
	g := s.curl(s.h.kid, "--max-time", "10", gateway+"/openai/v1/models")
	msg := jsonField(g.body, "message")
	if g.status != 403 || !strings.Contains(g.body, `"code":"`+code+`"`) || why != "" && !strings.Contains(msg, why) {
		s.fatalf("%s: kid through the gateway: %d %s", when, g.status, g.body)
	}
	return msg
}
