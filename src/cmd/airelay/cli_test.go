package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/openwrt"
	"github.com/airelay/airelay/src/internal/schedule"
	"github.com/airelay/airelay/src/internal/stats"
)

func cli(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = dispatch(args, &o, &e)
	return code, o.String(), e.String()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "airelay")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	good := writeConfig(t, "config airelay 'main'\n\toption lan_ipv4 '192.168.1.1'\n\toption dns_ttl '60'\n\toption dns_ttl '30'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n")
	code, out, errOut := cli("check", "--config", good)
	if code != 0 || !strings.Contains(out, good+": ok (1 providers, 1 enabled, 0 clients)") {
		t.Fatalf("good config: %d %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, `warning: `+good+`:4: section 'main': option "dns_ttl" is set again`) {
		t.Errorf("warning missing: %q", errOut)
	}
	// issue 19.1: a misspelt name is an error like a bad value, in check as in every command
	typo := writeConfig(t, "config airelay 'main'\n\toption lan_ipv4 '192.168.1.1'\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption acess 'deny'\n")
	out2 := filepath.Join(t.TempDir(), "copy")
	for _, args := range [][]string{{"check", "--config", typo}, {"runtime-config", "--config", typo, "--out", out2}, {"run", "--config", typo}} {
		code, out, errOut := cli(args...)
		if code != exitConfig || out != "" || !strings.Contains(errOut, typo+":5: section 'kid' option 'acess': 'client' sections have no such option (did you mean 'access'?)") {
			t.Errorf("%s with a misspelt option: exit %d, stdout %q, stderr %q", args[0], code, out, errOut)
		}
	}
	if _, err := os.Stat(out2); err == nil {
		t.Error("runtime-config wrote a copy of a config with a misspelt option")
	}
	bad := writeConfig(t, "config airelay 'main'\n\toption dns_ttl 'soon'\nconfig provider 'openai'\n\toption api_key 'sk-topsecret'\n\toption upstream 'gopher://x'\n")
	code, out, errOut = cli("check", "--config", bad)
	if code != exitConfig || out != "" {
		t.Fatalf("bad config: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{bad + ":2: section 'main' option 'dns_ttl' value 'soon'", bad + ":5: section 'openai' option 'upstream' value 'gopher://x'"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "sk-topsecret") {
		t.Fatal("key printed by check")
	}
	if code, _, errOut := cli("check", "--config", filepath.Join(t.TempDir(), "missing")); code != exitConfig || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing file: %d %q", code, errOut)
	}
	if code, _, _ := cli("check", "--bogus"); code != exitConfig {
		t.Fatalf("unknown flag: exit %d", code)
	}
	if code, _, _ := cli("nonsense"); code != exitConfig {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestPrintConfigRedacts(t *testing.T) {
	p := writeConfig(t, "config provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'sk-topsecret'\n\toption egress 'http://u:pw-secret@10.0.0.2:3128'\n")
	for _, args := range [][]string{{"print-config", "--config", p}, {"print-config", "--json", "--config", p}} {
		code, out, _ := cli(args...)
		if code != 0 || strings.Contains(out, "sk-topsecret") || strings.Contains(out, "pw-secret") || !strings.Contains(out, "REDACTED") {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	_, out, _ := cli("print-config", "--json", "--config", p)
	var eff config.Effective
	if err := json.Unmarshal([]byte(out), &eff); err != nil || len(eff.Sections) != 2 {
		t.Fatalf("--json output: %v %+v", err, eff)
	}
}

func TestSchemaJSON(t *testing.T) {
	code, out, _ := cli("schema", "--json")
	var doc struct {
		Sections []config.Section `json:"sections"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Sections) != len(config.Schema) {
		t.Fatalf("schema: exit %d, %d sections", code, len(doc.Sections))
	}
	for _, s := range doc.Sections {
		for _, o := range s.Options {
			if o.Type == "" || o.Doc == "" {
				t.Errorf("%s.%s lacks a type or doc", s.Type, o.Name)
			}
		}
	}
}

// docs/config.md is generated; it must match the schema the binary has.
func TestDocsUpToDate(t *testing.T) {
	_, out, _ := cli("schema", "--markdown")
	want, err := os.ReadFile("../../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatal("docs/config.md is stale: go run ./src/cmd/airelay schema --markdown > docs/config.md")
	}
}

// TestReadmeLayout (issue 21.7): README's Layout names every package under src/internal and
// src/cmd, and none that is gone, so the next person finds each where the README says.
func TestReadmeLayout(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n## Layout\n")
	if start < 0 {
		t.Fatal("README.md has no Layout section")
	}
	layout := text[start+len("\n## Layout\n"):]
	if end := strings.Index(layout, "\n## "); end >= 0 {
		layout = layout[:end]
	}
	listed := map[string]bool{}
	for _, f := range strings.Fields(layout) {
		for _, p := range strings.Split(strings.TrimSuffix(f, ","), ",") {
			if strings.HasPrefix(p, "src/internal/") || strings.HasPrefix(p, "src/cmd/") {
				listed[strings.TrimSuffix(p, "/")] = true
			}
		}
	}
	for _, dir := range []string{"src/internal", "src/cmd"} {
		entries, err := os.ReadDir(filepath.Join("../../..", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			p := dir + "/" + e.Name()
			if !listed[p] {
				t.Errorf("README.md's Layout does not list %s/", p)
			}
			delete(listed, p)
		}
	}
	for p := range listed {
		t.Errorf("README.md's Layout lists %s/, which does not exist", p)
	}
}

// TestRuntimeConfigKeysAndPorts: the init script's runtime-config puts the keys file's keys into
// the copy (never on stdout or stderr), warns of a key for no provider, and refuses a listener
// the unprivileged daemon could not bind, naming option, value and why; check refuses it too.
func TestRuntimeConfigKeysAndPorts(t *testing.T) {
	cfg := writeConfig(t, "config airelay 'main'\n\toption tls_listen ':8443'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n")
	keys := filepath.Join(t.TempDir(), "airelay_keys")
	os.WriteFile(keys, []byte("config key 'openai'\n\toption api_key 'sk-SECRET'\nconfig key 'gone'\n\toption api_key 'sk-OTHER'\n"), 0o600)
	out := filepath.Join(t.TempDir(), "copy")
	code, so, se := cli("runtime-config", "--config", cfg, "--keys", keys, "--run-as", "airelay", "--out", out)
	if code != 0 || strings.Contains(so+se, "sk-") || !strings.Contains(se, "section 'gone': no provider section has that name") {
		t.Fatalf("runtime-config: %d %q %q", code, so, se)
	}
	copyText, _ := os.ReadFile(out)
	if !strings.Contains(string(copyText), "config provider 'openai'\n\toption api_key 'sk-SECRET'\n") {
		t.Errorf("copy without the key:\n%s", copyText)
	}
	os.WriteFile(keys, []byte("config key 'openai'\n\toption api_key 'sk-SECRET\n"), 0o600)
	if code, so, se := cli("runtime-config", "--config", cfg, "--keys", keys, "--out", out); code != 2 || !strings.Contains(se, keys+":2: unterminated") || strings.Contains(so+se, "sk-") {
		t.Errorf("bad keys file: %d %q %q", code, so, se)
	}

	low := writeConfig(t, "config airelay 'main'\n\toption tls_listen ':443'\n")
	for _, args := range [][]string{
		{"runtime-config", "--config", low, "--run-as", "airelay", "--out", out},
		{"check", "--config", low, "--run-as", "airelay"},
	} {
		code, _, se := cli(args...)
		if code != 2 || !strings.Contains(se, "section 'main' option 'tls_listen' value ':443': port 443 is below") || !strings.Contains(se, "user 'airelay'") {
			t.Errorf("%s with tls_listen :443 as airelay: %d %q", args[0], code, se)
		}
	}
	if code, _, se := cli("check", "--config", low, "--run-as", "root"); code != 0 {
		t.Errorf("check as root: %d %q", code, se)
	}
}

func TestPrintStatusRedirect(t *testing.T) {
	for _, tc := range []struct {
		r    *stats.RedirectStatus
		want string
	}{
		{nil, ""},
		{&stats.RedirectStatus{Active: true}, "TLS redirect (LAN port 443): active\n"},
		{&stats.RedirectStatus{Reason: "fw4 refused the rules"}, "TLS redirect (LAN port 443): NOT active: fw4 refused the rules\n"},
	} {
		var b strings.Builder
		printStatus(&b, &stats.Status{Version: "v", Redirect: tc.r})
		got := b.String()
		if tc.want == "" && strings.Contains(got, "TLS redirect") || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("redirect %+v: status text\n%s", tc.r, got)
		}
	}
}

// TestMigrateKeys is the package's uci-defaults step on an old config with keys in it: they
// move to the keys file (0600), the config keeps everything else, nothing prints a key, a
// second run changes nothing, and the runtime copy still carries the keys.
func TestMigrateKeys(t *testing.T) {
	dir := t.TempDir()
	cfg, keys := filepath.Join(dir, "airelay"), filepath.Join(dir, "airelay_keys")
	old := "config airelay 'main'\n\toption tls_listen ':8443'\n\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'sk-SECRET-1'\n\nconfig provider 'anthropic'\n\tlist host 'api.anthropic.com'\n\toption api_key 'sk-SECRET-2'\n"
	os.WriteFile(cfg, []byte(old), 0o644)
	code, so, se := cli("migrate-keys", "--config", cfg, "--keys", keys)
	if code != 0 || so != "moved the API keys of anthropic, openai from "+cfg+" to "+keys+"\n" || se != "" {
		t.Fatalf("migrate-keys: %d %q %q", code, so, se)
	}
	c, _ := os.ReadFile(cfg)
	k, _ := os.ReadFile(keys)
	if strings.Contains(string(c), "sk-SECRET") || string(c) != strings.ReplaceAll(strings.ReplaceAll(old, "\toption api_key 'sk-SECRET-1'\n", ""), "\toption api_key 'sk-SECRET-2'\n", "") {
		t.Errorf("config after the move:\n%s", c)
	}
	if string(k) != "config key 'anthropic'\n\toption api_key 'sk-SECRET-2'\n\nconfig key 'openai'\n\toption api_key 'sk-SECRET-1'\n" {
		t.Errorf("keys file:\n%s", k)
	}
	for _, p := range []string{cfg, keys} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", p, st.Mode(), err)
		}
	}
	if code, so, se := cli("migrate-keys", "--config", cfg, "--keys", keys); code != 0 || so+se != "" {
		t.Errorf("second run: %d %q %q", code, so, se)
	}
	out := filepath.Join(dir, "copy")
	if code, _, se := cli("runtime-config", "--config", cfg, "--keys", keys, "--run-as", "root", "--out", out); code != 0 {
		t.Fatalf("runtime-config: %s", se)
	}
	tb, err := config.Load(out)
	if err != nil || tb.Provider("openai").APIKey.Reveal() != "sk-SECRET-1" || tb.Provider("anthropic").APIKey.Reveal() != "sk-SECRET-2" {
		t.Errorf("runtime copy: %v", err)
	}
	// no config at all (fresh image): only the empty keys file, 0600
	k2 := filepath.Join(dir, "k2")
	if code, so, se := cli("migrate-keys", "--config", filepath.Join(dir, "none"), "--keys", k2); code != 0 || so+se != "" {
		t.Errorf("no config: %d %q %q", code, so, se)
	}
	if st, err := os.Stat(k2); err != nil || st.Mode().Perm() != 0o600 || st.Size() != 0 {
		t.Errorf("keys file on a fresh install: %v %v", st, err)
	}
}

// Issue 19.5: a key in both places. The keys file's stays in force; a different one from the
// config is saved (0600, beside the keys file), never dropped; the same one is just removed;
// the output says which, and no key is printed.
func TestMigrateKeysBoth(t *testing.T) {
	dir := t.TempDir()
	cfg, keys := filepath.Join(dir, "airelay"), filepath.Join(dir, "airelay_keys")
	saved := keys + ".saved"
	os.WriteFile(cfg, []byte("config provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'sk-typed-by-hand'\n"+
		"config provider 'anthropic'\n\tlist host 'api.anthropic.com'\n\toption api_key 'sk-ant-same'\n"), 0o600)
	os.WriteFile(keys, []byte("config key 'openai'\n\toption api_key 'sk-new'\nconfig key 'anthropic'\n\toption api_key 'sk-ant-same'\nconfig key 'gone'\n\toption api_key 'x'\n"), 0o600)
	code, so, se := cli("migrate-keys", "--config", cfg, "--keys", keys)
	if code != 0 || se != "" || strings.Contains(so, "sk-") ||
		so != "removed the API keys of anthropic from "+cfg+": "+keys+" holds the same ones\n"+
			"kept the API keys of openai in "+keys+"; the other keys "+cfg+" held for them are saved in "+saved+" (mode 0600), not in use\n" {
		t.Fatalf("migrate-keys: %d %q %q", code, so, se)
	}
	if k, _ := config.LoadKeys(keys); k["openai"] != "sk-new" || k["anthropic"] != "sk-ant-same" {
		t.Errorf("keys file: %v", k)
	}
	if c, _ := os.ReadFile(cfg); strings.Contains(string(c), "sk-") {
		t.Errorf("a key left in the config:\n%s", c)
	}
	b, err := os.ReadFile(saved)
	if err != nil || !strings.Contains(string(b), "config key 'openai'\n\toption api_key 'sk-typed-by-hand'\n") || strings.Contains(string(b), "sk-ant-same") {
		t.Fatalf("saved keys: %v\n%s", err, b)
	}
	if st, _ := os.Stat(saved); st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", saved, st.Mode())
	}
	// typed by hand once more: appended, the first one still there
	os.WriteFile(cfg, []byte("config provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'sk-second'\n"), 0o600)
	if code, _, se := cli("migrate-keys", "--config", cfg, "--keys", keys); code != 0 || se != "" {
		t.Fatalf("second run: %d %q", code, se)
	}
	if b, _ := os.ReadFile(saved); !strings.Contains(string(b), "'sk-typed-by-hand'") || !strings.Contains(string(b), "'sk-second'") {
		t.Errorf("saved keys after a second run:\n%s", b)
	}
	if code, _, se := cli("check", "--config", cfg, "--keys", keys, "--run-as", "root"); code != 0 || !strings.Contains(se, "section 'gone': no provider section has that name") {
		t.Errorf("check --keys with a key for no provider: %d %q", code, se)
	}
}

// The CLI talks to the daemon with stats.Get, not net/http's client (issue 22: package size).
func TestCLIImportsNoNetHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "net/http" || strings.HasPrefix(p, "net/http/") {
			t.Errorf("package main imports %s", p)
		}
	}
}

// TestRuntimeConfigFallback (issue 19.2): the init script's runtime-config keeps the last
// config that passed (without keys) and, at start, serves it when the config does not pass;
// with none, the failing config read strictly; on reload it leaves the serving copy alone. The
// state file says which, for the daemon, dnsmasq-conf and firewall.
func TestRuntimeConfigFallback(t *testing.T) {
	dir := t.TempDir()
	cfg, keys, out := filepath.Join(dir, "airelay"), filepath.Join(dir, "airelay_keys"), filepath.Join(dir, "run", "airelay")
	lastValid, state := filepath.Join(dir, "etc-airelay", "last-valid"), filepath.Join(dir, "run", "config-state")
	os.MkdirAll(filepath.Dir(out), 0o700)
	os.MkdirAll(filepath.Dir(lastValid), 0o700)
	os.WriteFile(keys, []byte("config key 'openai'\n\toption api_key 'sk-FROM-KEYS'\n"), 0o600)
	good := "config airelay 'main'\n\toption tls_listen ':8443'\n\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'sk-TYPED'\n\n" +
		"config client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\tlist schedule 'Mon-Fri 15:00-20:00'\n"
	rc := func(extra ...string) (int, string, string) {
		return cli(append([]string{"runtime-config", "--config", cfg, "--keys", keys, "--run-as", "root", "--out", out,
			"--last-valid", lastValid, "--state", state, "--lan-ipv4", "192.168.1.1"}, extra...)...)
	}
	readState := func() openwrt.State {
		st, err := openwrt.ReadState(state)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	served := func() *config.Table {
		tb, err := loadServed(out, state, "root")
		if err != nil {
			t.Fatalf("loadServed: %v", err)
		}
		return tb
	}
	kidOn := func(tb *config.Table) (allowed bool, why string) {
		kid := tb.ClientFor(netip.MustParseAddr("192.168.1.100"), net.HardwareAddr{2, 0, 0, 0, 1, 0x64})
		p := tb.MatchHost("api.openai.com")
		return tb.Access(kid, p), tb.Refusal(kid, p)
	}

	// it passes: the copy, the last valid config without any key, state current
	os.WriteFile(cfg, []byte(good), 0o600)
	if code, so, se := rc(); code != 0 || so != "" {
		t.Fatalf("good config: %d %q %q", code, so, se)
	}
	lv, err := os.ReadFile(lastValid)
	if err != nil || strings.Contains(string(lv), "sk-") || !strings.Contains(string(lv), "list schedule 'Mon-Fri 15:00-20:00'") {
		t.Fatalf("last valid config: %v\n%s", err, lv)
	}
	if st, _ := os.Stat(lastValid); st.Mode().Perm() != 0o600 {
		t.Errorf("last valid config mode %v, want 0600", st.Mode())
	}
	if st := readState(); st.State != "current" || st.Message != "" {
		t.Errorf("state: %+v", st)
	}
	// same config again: the file is not rewritten (flash), so its time stays the time it passed
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	os.Chtimes(lastValid, old, old)
	rc()
	if st, _ := os.Stat(lastValid); !st.ModTime().Equal(old) {
		t.Errorf("the same config rewrote the last valid file")
	}
	goodCopy, _ := os.ReadFile(out)

	// the kid's schedule misspelt, at start: the last valid config serves, with the keys file's key
	bad := strings.Replace(good, "Mon-Fri", "Mon-Fry", 1)
	os.WriteFile(cfg, []byte(bad), 0o600)
	code, so, se := rc()
	when := old.In(schedule.Local()).Format("2006-01-02 15:04 MST")
	wantMsg := "serving the last valid config from " + when + "; " + cfg + ":10: section 'kid' option 'schedule' value 'Mon-Fry 15:00-20:00'"
	if code != exitFallback || !strings.HasPrefix(so, wantMsg) || !strings.Contains(se, cfg+":10: section 'kid' option 'schedule'") || strings.Contains(so+se, "sk-") {
		t.Fatalf("bad config at start: %d\nstdout %q\nstderr %q\nwant stdout %q", code, so, se, wantMsg)
	}
	if st := readState(); st.State != "last_valid" || !strings.HasPrefix(st.Message, wantMsg) || st.Refused {
		t.Errorf("state: %+v", st)
	}
	copyText, _ := os.ReadFile(out)
	if !strings.Contains(string(copyText), "'Mon-Fri 15:00-20:00'") || !strings.Contains(string(copyText), "option api_key 'sk-FROM-KEYS'") || strings.Contains(string(copyText), "sk-TYPED") {
		t.Errorf("the copy is not the last valid config with the keys file's key:\n%s", copyText)
	}
	if tb := served(); tb.Fallback.State != "last_valid" || len(tb.Clients[0].Schedule) != 1 {
		t.Errorf("served table: %+v", tb.Fallback)
	}
	if lv2, _ := os.ReadFile(lastValid); string(lv2) != string(lv) {
		t.Error("a failing config changed the last valid file")
	}

	// the same on reload while it serves: the copy is left as it is
	os.WriteFile(out, goodCopy, 0o600)
	misspelt := strings.Replace(good, "list schedule", "list shedule", 1)
	os.WriteFile(cfg, []byte(misspelt), 0o600)
	code, so, _ = rc("--reload")
	if code != exitConfig || !strings.HasPrefix(so, "reload refused, serving the last valid config from "+when+"; "+cfg+":10: section 'kid' option 'shedule'") {
		t.Fatalf("bad config on reload: %d %q", code, so)
	}
	if now, _ := os.ReadFile(out); string(now) != string(goodCopy) {
		t.Error("a refused reload changed the copy")
	}
	if st := readState(); st.State != "last_valid" || !st.Refused || !strings.Contains(st.Errors, "option 'shedule'") {
		t.Errorf("state after a refused reload: %+v", st)
	}
	if tb := served(); tb.Fallback.Refused == "" {
		t.Error("the daemon would not see the refusal")
	}

	// a fresh install edited wrongly: no last valid config. The failing one is read strictly:
	// the kid is refused, told where; the names are still intercepted and redirected
	os.Remove(lastValid)
	os.WriteFile(cfg, []byte(bad+"\nconfig airelay 'main'\n\toption tls_listen ':443'\n"), 0o600)
	code, so, _ = cli("runtime-config", "--config", cfg, "--keys", keys, "--run-as", "airelay", "--out", out, "--last-valid", lastValid, "--state", state)
	if code != exitFallback || !strings.HasPrefix(so, "no valid config to serve, so "+cfg+" is read strictly") || !strings.Contains(so, "value 'Mon-Fry 15:00-20:00'") || !strings.Contains(so, "port 443 is below") {
		t.Fatalf("bad config, no last valid: %d %q", code, so)
	}
	if _, err := os.Stat(lastValid); err == nil {
		t.Error("a failing config was kept as the last valid one")
	}
	tb, err := loadServed(out, state, "airelay")
	if err != nil || tb.Fallback.State != "fail_closed" || tb.Main.TLSListen != ":8443" {
		t.Fatalf("served fail-closed table: %v %+v tls %q", err, tb.Fallback, tb.Main.TLSListen)
	}
	if allowed, why := kidOn(tb); allowed || why != "section 'kid' option 'schedule'" {
		t.Errorf("kid fail-closed: allowed %v, why %q", allowed, why)
	}
	if code, so, se := cli("dnsmasq-conf", "--config", out, "--config-state", state); code != 0 || !strings.Contains(so, "server=/api.openai.com/127.0.0.1#5353") {
		t.Errorf("dnsmasq-conf on a fail-closed copy: %d %q %q", code, so, se)
	}
	if code, so, se := cli("firewall", "--config", out, "--config-state", state, "--run-as", "airelay", "--chain", "dstnat"); code != 0 || !strings.Contains(so, "redirect to :8443") {
		t.Errorf("firewall on a fail-closed copy: %d %q %q", code, so, se)
	}
	if code, _, _ := cli("dnsmasq-conf", "--config", out); code != exitConfig {
		t.Errorf("without --config-state the fail-closed copy must not load: %d", code)
	}

	// reload while fail-closed, still broken: the newer broken config, read strictly
	os.WriteFile(cfg, []byte(misspelt), 0o600)
	if code, so, _ := rc("--reload"); code != exitFallback || !strings.Contains(so, "option 'shedule'") {
		t.Errorf("reload while fail-closed: %d %q", code, so)
	}
	// fixed: current again, and kept as the last valid config
	os.WriteFile(cfg, []byte(good), 0o600)
	if code, _, se := rc("--reload"); code != 0 || readState().State != "current" {
		t.Errorf("fixed: %d %q %+v", code, se, readState())
	}
	if _, err := os.Stat(lastValid); err != nil {
		t.Error("the fixed config was not kept as the last valid one")
	}
	if _, why := kidOn(served()); why != "" {
		t.Errorf("fixed: kid still refused as fail-closed: %q", why)
	}

	// a broken keys file on reload: the copy in force, with its key, keeps serving
	before, _ := os.ReadFile(out)
	os.WriteFile(keys, []byte("config key 'openai'\n\toption api_key 'sk-BROKEN\n"), 0o600)
	code, so, se = rc("--reload")
	if code != exitConfig || !strings.HasPrefix(so, "reload refused, the config in force keeps serving: "+keys+":2: unterminated") || strings.Contains(so+se, "sk-") {
		t.Errorf("broken keys file on reload: %d %q %q", code, so, se)
	}
	if now, _ := os.ReadFile(out); string(now) != string(before) {
		t.Error("a broken keys file changed the copy on reload")
	}
	if tb := served(); tb.Fallback.Refused == "" || tb.Fallback.State != "" || tb.Provider("openai").APIKey.Reveal() != "sk-FROM-KEYS" {
		t.Errorf("served after a broken keys file: %+v", tb.Fallback)
	}
	// and at start: served without keys rather than not at all
	if code, _, se := rc(); code != 0 || !strings.Contains(se, "starting without the API keys") {
		t.Errorf("broken keys file at start: %d %q", code, se)
	}
}

// TestPrintStatusSwitchedOff: `airelay status` says that option enabled '0'
// relays nothing, and only then.
func TestPrintStatusSwitchedOff(t *testing.T) {
	for _, disabled := range []bool{true, false} {
		var b strings.Builder
		printStatus(&b, &stats.Status{Version: "v", Disabled: disabled})
		if got := strings.Contains(b.String(), "SWITCHED OFF (option enabled '0'): nothing is relayed"); got != disabled {
			t.Errorf("disabled %v: status text\n%s", disabled, b.String())
		}
	}
}

func TestPrintStatusConfigState(t *testing.T) {
	for _, tc := range []struct {
		c          stats.ConfigStatus
		want, nope string
	}{
		{stats.ConfigStatus{State: "current"}, "", "config state"},
		{stats.ConfigStatus{State: "last_valid", Message: "serving the last valid config from X; /etc/config/airelay:3: bad", LastError: "/etc/config/airelay:3: bad"},
			"config state: last_valid: serving the last valid config from X; /etc/config/airelay:3: bad\n", "last reload FAILED"},
		{stats.ConfigStatus{State: "fail_closed", Message: "no valid config to serve, so …"}, "config state: fail_closed: no valid config to serve", ""},
		{stats.ConfigStatus{LastError: "x: bad"}, "last reload FAILED (previous config serving): x: bad\n", "config state"},
	} {
		var b strings.Builder
		printStatus(&b, &stats.Status{Version: "v", Config: tc.c})
		got := b.String()
		if tc.want != "" && !strings.Contains(got, tc.want) || tc.nope != "" && strings.Contains(got, tc.nope) {
			t.Errorf("%+v: status text\n%s", tc.c, got)
		}
	}
}
