package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airelay/airelay/src/internal/config"
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
	for _, want := range []string{bad + ": section 'main' option 'dns_ttl' value 'soon'", bad + ": section 'openai' option 'upstream' value 'gopher://x'"} {
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

// A key in both places: the keys file's wins, the old line goes, and the output says which.
func TestMigrateKeysBoth(t *testing.T) {
	dir := t.TempDir()
	cfg, keys := filepath.Join(dir, "airelay"), filepath.Join(dir, "airelay_keys")
	os.WriteFile(cfg, []byte("config provider 'openai'\n\tlist host 'api.openai.com'\n\toption api_key 'sk-old'\n"), 0o600)
	os.WriteFile(keys, []byte("config key 'openai'\n\toption api_key 'sk-new'\nconfig key 'gone'\n\toption api_key 'x'\n"), 0o600)
	code, so, se := cli("migrate-keys", "--config", cfg, "--keys", keys)
	if code != 0 || so != "removed the older API keys of openai from "+cfg+": "+keys+" has newer ones\n" || se != "" {
		t.Fatalf("migrate-keys: %d %q %q", code, so, se)
	}
	if k, _ := config.LoadKeys(keys); k["openai"] != "sk-new" {
		t.Errorf("keys file: %v", k)
	}
	if c, _ := os.ReadFile(cfg); strings.Contains(string(c), "sk-old") {
		t.Errorf("old key left in the config:\n%s", c)
	}
	if code, _, se := cli("check", "--config", cfg, "--keys", keys, "--run-as", "root"); code != 0 || !strings.Contains(se, "section 'gone': no provider section has that name") {
		t.Errorf("check --keys with a key for no provider: %d %q", code, se)
	}
}
