package config

import (
	"bytes"
	"flag"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func mustLoad(t testing.TB, text string) *Table {
	t.Helper()
	tb, err := LoadBytes("test.uci", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestEmbeddedDefault(t *testing.T) {
	tb, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Warnings) > 0 {
		t.Errorf("warnings: %v", tb.Warnings)
	}
	for _, want := range []string{"openai", "anthropic", "gemini", "mistral", "groq", "deepseek", "xai", "openrouter", "together", "perplexity", "cohere"} {
		p := tb.Provider(want)
		if p == nil || !p.Enabled || p.Upstream == nil || p.Upstream.Scheme != "https" {
			t.Errorf("provider %s missing, disabled or without an https upstream", want)
			continue
		}
		for _, h := range p.Hosts {
			if tb.MatchHost(h) != p {
				t.Errorf("host %s does not route to %s", h, want)
			}
		}
		if got, rest := tb.Route(p.Prefix + "/v1/x"); got != p || rest != "/v1/x" {
			t.Errorf("prefix %s routes to %v %q", p.Prefix, got, rest)
		}
	}
	m := tb.Main
	if m.DNSListen != "127.0.0.1:5353" || m.TLSListen != ":8443" || m.HTTPListen != ":8080" || m.StatusListen != "127.0.0.1:9099" {
		t.Errorf("listeners: %+v", m)
	}
	if tb.Provider("anthropic").Auth != AuthXAPIKey || tb.Provider("gemini").Auth != AuthXGoogAPIKey {
		t.Error("auth headers of anthropic/gemini wrong")
	}
}

func TestFullConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/full.uci")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := LoadBytes("testdata/full.uci", data)
	if err != nil {
		t.Fatal(err)
	}
	m := tb.Main
	if m.HTTPListen != "" {
		t.Errorf("http_listen '' must mean off, got %q", m.HTTPListen)
	}
	if m.IdleTimeout.Seconds() != 300 || m.MemoryLimit != 16<<20 || m.DefaultAccess != Deny {
		t.Errorf("main: %+v", m)
	}
	if strings.Join(m.Resolvers, ",") != "9.9.9.9:53,[2620:fe::fe]:53" {
		t.Errorf("resolvers %v", m.Resolvers)
	}
	oa, an, lab := tb.Provider("openai"), tb.Provider("anthropic"), tb.Provider("lab")
	if tb.MatchHost("api.openai.com") != oa || oa.Hosts[0] != "api.openai.com" {
		t.Errorf("host normalisation: %v", oa.Hosts)
	}
	if oa.Upstream.String() != "https://api.openai.com" || oa.Prefix != "/openai" {
		t.Errorf("openai defaults: %v %s", oa.Upstream, oa.Prefix)
	}
	if len(oa.Fallback) != 1 || oa.Fallback[0] != an {
		t.Errorf("fallback %v", oa.Fallback)
	}
	if an.Upstream.String() != "https://api.anthropic.com" || an.Prefix != "/claude" || an.KeyPolicy != KeyReplace {
		t.Errorf("anthropic: %v %s %v", an.Upstream, an.Prefix, an.KeyPolicy)
	}
	if tb.MatchHost("x.lab.example") != nil {
		t.Error("a disabled provider's host is intercepted")
	}
	if lab.Egress.Iface != "wg0" || lab.Upstream.Path != "/v1" {
		t.Errorf("lab: %+v", lab)
	}
	kid := tb.ClientFor(netip.MustParseAddr("10.9.9.9"), net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})
	if kid == nil || kid.Name != "Kids tablet" || tb.Access(kid, oa) {
		t.Errorf("kid by MAC: %+v", kid)
	}
	office := tb.ClientFor(netip.MustParseAddr("::ffff:192.168.1.9"), nil)
	if office == nil || office.ID != "office" || !tb.Access(office, oa) || tb.Access(office, an) {
		t.Errorf("office by prefix and provider list: %+v", office)
	}
	if tb.Access(nil, oa) {
		t.Error("default_access deny ignored")
	}

	var uci, js bytes.Buffer
	if err := tb.Effective().WriteUCI(&uci); err != nil {
		t.Fatal(err)
	}
	if err := tb.Effective().WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{uci.String(), js.String()} {
		for _, secret := range []string{"sk-live-0123456789abcdef", "hunter2"} {
			if strings.Contains(out, secret) {
				t.Fatalf("print-config leaks %q:\n%s", secret, out)
			}
		}
	}
	golden(t, "testdata/full.golden", uci.Bytes())
	// What print-config prints is itself a valid config that reads back the same.
	again, err := LoadBytes("printed", uci.Bytes())
	if err != nil {
		t.Fatalf("printed config does not load: %v", err)
	}
	var uci2 bytes.Buffer
	_ = again.Effective().WriteUCI(&uci2)
	if uci2.String() != uci.String() {
		t.Errorf("print-config is not stable:\n%s\n---\n%s", uci.String(), uci2.String())
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, got)
	}
}

func TestErrors(t *testing.T) {
	const main = "config airelay 'main'\n"
	tests := []struct {
		name, text string
		want       []string // substrings of the error
	}{
		{"unknown keyword", main + "\toptoin x '1'\n", []string{"test.uci:2:", `unknown keyword "optoin"`}},
		{"unterminated quote", main + "\toption dns_ttl '60\n", []string{"test.uci:2:", "unterminated"}},
		{"option before config", "option enabled '1'\n", []string{"test.uci:1:", "before any 'config'"}},
		{"list for a single option", main + "\tlist dns_ttl '60'\n", []string{"test.uci:2: section 'main' option 'dns_ttl': takes one value"}},
		// issue 19.1: a name airelay does not know is refused, never ignored
		{"unknown option", "config client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption acess 'deny'\n", []string{"test.uci:3: section 'kid' option 'acess': 'client' sections have no such option (did you mean 'access'?)"}},
		{"unknown option swapped letters", main + "\toption defualt_access 'deny'\n", []string{"test.uci:2: section 'main' option 'defualt_access':", "(did you mean 'default_access'?)"}},
		{"unknown list", "config client 'kid'\n\tlist shedule 'Mon-Fri 15:00-20:00'\n", []string{"test.uci:2: section 'kid' option 'shedule':", "(did you mean 'schedule'?)"}},
		{"option of another section", main + "\toption access 'deny'\n", []string{"section 'main' option 'access': 'airelay' sections have no such option (it is an option of 'client' sections)"}},
		{"unknown option far from any", main + "\toption frobnicate '1'\n", []string{"section 'main' option 'frobnicate': 'airelay' sections have no such option"}},
		{"unknown section type", "config clinet 'kid'\n\tlist mac '02:00:00:00:01:64'\n", []string{"test.uci:1: section 'kid': no section type 'clinet' (did you mean 'client'?); airelay reads 'airelay', 'provider' and 'client' sections"}},
		{"bad section name", "config provider 'open-ai'\n", []string{"test.uci:1:", "letters, digits"}},
		{"bool", main + "\toption enabled 'maybe'\n", []string{"section 'main' option 'enabled' value 'maybe': not a boolean"}},
		{"int range", main + "\toption dns_ttl '0'\n", []string{"option 'dns_ttl' value '0'", "from 1 to 86400"}},
		{"enum", main + "\toption default_access 'block'\n", []string{"option 'default_access' value 'block'", "allow, deny"}},
		{"duration", main + "\toption idle_timeout '-5s'\n", []string{"option 'idle_timeout'", "duration"}},
		{"size", main + "\toption max_body '12Q'\n", []string{"option 'max_body' value '12Q'", "not a size"}},
		{"listen", main + "\toption tls_listen '8443'\n", []string{"option 'tls_listen' value '8443'", "host:port"}},
		{"port", main + "\toption tls_listen ':70000'\n", []string{"port must be 1-65535"}},
		{"same listen twice", main + "\toption http_listen ':8443'\n", []string{"option 'http_listen' value ':8443'", "same address as tls_listen"}},
		{"ipv4", main + "\toption lan_ipv4 'fd00::1'\n", []string{"option 'lan_ipv4' value 'fd00::1': not an IPv4"}},
		{"resolver name", main + "\tlist resolver 'dns.google'\n", []string{"option 'resolver' value 'dns.google'", "must be an IP"}},
		{"fallback port 0", main + "\toption tls_fallback '127.0.0.1:0'\n", []string{"option 'tls_fallback'", "1-65535"}},
		{"two mains", main + "config airelay 'other'\n", []string{"one 'airelay' section"}},
		{"main misnamed", "config airelay 'global'\n", []string{"section 'global'", "named 'main'"}},
		{"unnamed provider", "config provider\n\tlist host 'a.example'\n", []string{"section '@provider[0]'", "needs a name"}},
		{"bad host", "config provider 'x'\n\tlist host 'api openai com'\n", []string{"section 'x' option 'host' value 'api openai com'", "not a host name"}},
		{"single-label host", "config provider 'x'\n\tlist host 'localhost'\n", []string{"value 'localhost'", "not a host name"}},
		{"no host no upstream", "config provider 'x'\n", []string{"section 'x': an enabled provider needs"}},
		{"upstream scheme", "config provider 'x'\n\toption upstream 'ftp://a.example'\n", []string{"option 'upstream' value 'ftp://a.example'", "https or http"}},
		{"upstream with key", "config provider 'x'\n\toption upstream 'https://u:p@a.example'\n", []string{"option 'upstream'", "no user"}},
		{"prefix", "config provider 'x'\n\tlist host 'a.example'\n\toption prefix 'x'\n", []string{"option 'prefix' value 'x'"}},
		{"egress scheme", "config provider 'x'\n\tlist host 'a.example'\n\toption egress 'ftp://h:1'\n", []string{"option 'egress' value 'ftp://h:1'", "not supported"}},
		{"auth", "config provider 'x'\n\tlist host 'a.example'\n\toption auth 'basic'\n", []string{"option 'auth' value 'basic'"}},
		{"dup host", "config provider 'a'\n\tlist host 'x.example'\nconfig provider 'b'\n\tlist host 'X.example'\n", []string{"section 'b' option 'host' value 'x.example': also a host of provider 'a'"}},
		{"dup prefix", "config provider 'a'\n\tlist host 'a.example'\n\toption prefix '/p'\nconfig provider 'b'\n\tlist host 'b.example'\n\toption prefix '/p'\n", []string{"section 'b' option 'prefix' value '/p': also the prefix of provider 'a'"}},
		{"fallback unknown", "config provider 'a'\n\tlist host 'a.example'\n\tlist fallback 'zz'\n", []string{"option 'fallback' value 'zz': no provider"}},
		{"fallback self", "config provider 'a'\n\tlist host 'a.example'\n\tlist fallback 'a'\n", []string{"its own fallback"}},
		{"client mac", "config client 'c'\n\tlist mac 'aa:bb'\n", []string{"section 'c' option 'mac' value 'aa:bb'"}},
		{"client ip", "config client 'c'\n\tlist ip '192.168.1.300'\n", []string{"option 'ip' value '192.168.1.300'"}},
		{"client provider", "config client 'c'\n\tlist ip '10.0.0.1'\n\tlist provider 'nope'\n", []string{"option 'provider' value 'nope'"}},
		{"device", main + "\toption listen_device 'br/lan'\n", []string{"option 'listen_device' value 'br/lan'", "not a device name"}},
		{"NUL byte", main + "\toption log_level 'in\x00fo'\n", []string{"test.uci:2:", "NUL"}},
		{"bad option name", main + "\toption log-level 'info'\n", []string{"test.uci:2:", `"log-level"`}},
		{"client dup ip", "config client 'a'\n\tlist ip '10.0.0.1'\nconfig client 'b'\n\tlist ip '10.0.0.1'\n", []string{"section 'b' option 'ip' value '10.0.0.1': also an address of client 'a'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("test.uci", []byte(tt.text))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "test.uci") {
				t.Errorf("error does not name the file: %q", err)
			}
		})
	}
}

// Every problem is reported at once, and a key or proxy password is never echoed.
func TestErrorsAreCollectedAndRedacted(t *testing.T) {
	text := "config airelay 'main'\n\toption dns_ttl 'x'\n\toption log_level 'loud'\nconfig provider 'a'\n\tlist host 'a.example'\n\toption api_key 'sk-bad\\nkey'\n\toption egress 'socks5://me:s3cret@'\n"
	_, err := LoadBytes("t", []byte(text))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, w := range []string{"dns_ttl", "log_level", "egress"} {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %s in %q", w, msg)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Fatalf("proxy password in error: %q", msg)
	}
}

// TestErrorsHideCredentials: whatever option a credential was put in by mistake, no error
// shows it (errors reach syslog, /status and LuCI), and each still names file, section,
// option and what it can of the value.
func TestErrorsHideCredentials(t *testing.T) {
	const gemini = "AIzaSyLEAKED-user-key-0123456789"
	const prov = "config provider 'p'\n\tlist host 'a.example'\n"
	tests := []struct {
		name, text, secret string
		want               []string
	}{
		{"gemini key in the upstream's query", "config provider 'gemini'\n\toption upstream 'https://generativelanguage.googleapis.com/v1beta?key=" + gemini + "'\n", gemini,
			[]string{"test.uci:2: section 'gemini' option 'upstream' value 'https://generativelanguage.googleapis.com/v1beta?REDACTED': a base URL takes no user, query or fragment (keys go in api_key)"}},
		{"password in the upstream", "config provider 'p'\n\toption upstream 'https://me:hunter2hunter2@api.example.com/v1'\n", "hunter2hunter2",
			[]string{"section 'p' option 'upstream' value 'https://REDACTED@api.example.com/v1': a base URL takes no user"}},
		{"password with '/' and '@' in the upstream", "config provider 'p'\n\toption upstream 'https://me:pa/ss@wd@api.example.com'\n", "pa/ss@wd",
			[]string{"option 'upstream' value 'https://REDACTED@api.example.com'"}},
		{"fragment in the upstream", "config provider 'p'\n\toption upstream 'https://api.example.com#tok3n-xyz'\n", "tok3n-xyz",
			[]string{"option 'upstream' value 'https://api.example.com#REDACTED'"}},
		{"bad scheme and a query", "config provider 'p'\n\toption upstream 'ftp://a.example/?token=s3cr3t-token-value'\n", "s3cr3t-token-value",
			[]string{"option 'upstream' value 'ftp://a.example/?REDACTED': the scheme must be https or http"}},
		{"a key in upstream", "config provider 'p'\n\toption upstream 'sk-proj-Abc123def456ghi789'\n", "Abc123def456ghi789",
			[]string{"option 'upstream' value 'REDACTED': not a URL", "a key goes in option api_key"}},
		{"a key in the upstream's path", "config provider 'p'\n\toption upstream 'http:/api.example.com/v2/0a1b2c3d4e5f6a7b8c9d0e1f'\n", "0a1b2c3d4e5f6a7b8c9d0e1f",
			[]string{"option 'upstream' value 'http:/api.example.com/v2/REDACTED'"}},
		{"a key in host", "config provider 'p'\n\tlist host 'generativelanguage.googleapis.com/v1beta?key=" + gemini + "'\n", gemini,
			[]string{"section 'p' option 'host' value 'generativelanguage.googleapis.com/v1beta?REDACTED': not a host name"}},
		{"user info in host", "config provider 'p'\n\tlist host 'sk-ant-api03-0123456789@api.anthropic.com'\n", "0123456789",
			[]string{"option 'host' value 'REDACTED@api.anthropic.com'"}},
		{"a key in prefix", prov + "\toption prefix 'gemini?key=" + gemini + "'\n", gemini,
			[]string{"option 'prefix' value 'gemini?REDACTED'"}},
		// the message quotes the host part of the value: it is hidden there too
		{"a key in connect", prov + "\toption connect '" + gemini + ":443'\n", gemini,
			[]string{`option 'connect' value 'REDACTED:443': "REDACTED" is neither`}},
		{"a key in a schedule", "config client 'c'\n\tlist ip '10.0.0.1'\n\tlist schedule '" + gemini + " 10:00-11:00'\n", gemini,
			[]string{"section 'c' option 'schedule' value 'REDACTED 10:00-11:00'"}},
		{"proxy password", prov + "\toption egress 'socks5://me:s3cretpass@'\n", "s3cretpass",
			[]string{"option 'egress' value 'socks5://REDACTED@'"}},
		{"proxy token in a query", prov + "\toption egress 'http://proxy.lan:3128/?token=0123456789abcdef'\n", "0123456789abcdef",
			[]string{"option 'egress' value 'http://proxy.lan:3128/?REDACTED': a proxy URL takes no path, query or fragment"}},
		{"a key on a line of its own", prov + gemini + "\n", gemini,
			[]string{`test.uci:3: unknown keyword "REDACTED"`}},
		{"a key as a section name", "config provider 'sk-proj-Abc123def456ghi789'\n", "Abc123def456ghi789",
			[]string{`test.uci:1: section name "REDACTED"`}},
		{"a key in api_key with a line break", prov + "\toption api_key 'sk-proj-Abc123\rdef456ghi789'\n", "Abc123",
			[]string{"section 'p' option 'api_key': the key contains a line break"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("test.uci", []byte(tt.text))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the error shows %q: %v", tt.secret, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tb := mustLoad(t, "config airelay 'main'\n\toption dns_ttl '5'\n\toption dns_ttl '6'\nconfig client 'c'\n\toption name 'n'\n")
	all := strings.Join(tb.Warnings, "\n")
	for _, w := range []string{`test.uci:3: section 'main': option "dns_ttl" is set again`, "section 'c': no 'mac', 'ip' or 'network'"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings lack %q:\n%s", w, all)
		}
	}
	if tb.Main.DNSTTL != 6 {
		t.Errorf("last value should win, got %d", tb.Main.DNSTTL)
	}
}

// A suggestion is made only for a near miss, never for a different word.
func TestDidYouMean(t *testing.T) {
	known := []string{"access", "mac", "ip", "schedule", "default_access", "name"}
	for name, want := range map[string]string{
		"acess": "access", "Access": "access", "acces": "access", "accesss": "access", "shedule": "schedule",
		"schedlue": "schedule", "defualt_access": "default_access", "mak": "mac", "nmae": "name",
		"frobnicate": "", "x": "", "provider": "", "ipv6": "", "allow": "",
	} {
		got := didYouMean(name, known)
		if want == "" && got != "" || want != "" && got != " (did you mean '"+want+"'?)" {
			t.Errorf("didYouMean(%q) = %q, want %q", name, got, want)
		}
	}
}

// A day's token or request quota on a section without the gateway would never apply: the relay
// sees neither. It is said, not silently accepted.
func TestGatewayOffQuotaWarning(t *testing.T) {
	tb := mustLoad(t, "config client 'guests'\n\tlist network 'guest'\n\toption gateway '0'\n\toption daily_tokens '100000'\n\toption daily_requests '50'\n\toption daily_bytes '50M'\n")
	all := strings.Join(tb.Warnings, "\n")
	for _, w := range []string{"section 'guests': option 'daily_tokens' counts gateway use only, which gateway '0' forbids", "section 'guests': option 'daily_requests' counts gateway use only"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings lack %q:\n%s", w, all)
		}
	}
	if len(tb.Warnings) != 2 {
		t.Errorf("want the two warnings only (daily_bytes applies to the relay):\n%s", all)
	}
	if tb := mustLoad(t, "config client 'g'\n\tlist network 'guest'\n\toption daily_tokens '100000'\n"); len(tb.Warnings) > 0 {
		t.Errorf("daily_tokens with the gateway on: %v", tb.Warnings)
	}
}

func TestLookups(t *testing.T) {
	tb := mustLoad(t, `
config provider 'a'
	list host 'api.a.example'
	list host '*.b.example'
	option prefix '/a'
config provider 'deep'
	list host 'deep.example'
	option prefix '/a/v2'
config client 'net8'
	list ip '10.0.0.0/8'
config client 'net24'
	list ip '10.1.2.0/24'
config client 'host'
	list ip '10.1.2.3'
`)
	a, deep := tb.Provider("a"), tb.Provider("deep")
	for name, want := range map[string]*Provider{
		"api.a.example": a, "API.A.EXAMPLE.": a, "x.b.example": a, "x.y.b.example": a,
		"b.example": nil, "a.example": nil, "xapi.a.example": nil, "": nil, ".": nil,
	} {
		if got := tb.MatchHost(name); got != want {
			t.Errorf("MatchHost(%q) = %v, want %v", name, got, want)
		}
	}
	for path, want := range map[string]struct {
		p    *Provider
		rest string
	}{
		"/a/v1/chat": {a, "/v1/chat"}, "/a": {a, ""}, "/a/v2/x": {deep, "/x"}, "/a/v2": {deep, ""},
		"/ab/x": {nil, ""}, "/": {nil, ""}, "": {nil, ""}, "/b/a": {nil, ""},
	} {
		if p, rest := tb.Route(path); p != want.p || rest != want.rest {
			t.Errorf("Route(%q) = %v %q, want %v %q", path, p, rest, want.p, want.rest)
		}
	}
	for ip, want := range map[string]string{"10.1.2.3": "host", "10.1.2.4": "net24", "10.9.9.9": "net8", "11.0.0.1": ""} {
		c := tb.ClientFor(netip.MustParseAddr(ip), nil)
		if got := ""; c != nil {
			got = c.ID
			if got != want {
				t.Errorf("ClientFor(%s) = %s, want %s", ip, got, want)
			}
		} else if want != "" {
			t.Errorf("ClientFor(%s) = nil, want %s", ip, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { tb.MatchHost("x.y.b.example"); tb.Route("/a/v2/chat/completions") }); n != 0 {
		t.Errorf("lookups allocate %v times", n)
	}
}

func TestSecretFormatting(t *testing.T) {
	s := Secret{"sk-abc"}
	for _, out := range []string{s.String(), s.GoString()} {
		if strings.Contains(out, "sk-abc") {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if s.Reveal() != "sk-abc" || !s.Set() || (Secret{}).Set() {
		t.Fatal("Reveal/Set")
	}
}

// Values are read the way uci(1) writes them: a quote inside single quotes as '\”, escapes in
// double quotes and bare words, ” as "set to nothing".
func TestQuoting(t *testing.T) {
	text := "config airelay 'main'\n" +
		"\toption tls_fallback ''\n" +
		"config provider 'x'\n" +
		"\tlist host 'a.example'\n" +
		"\tlist host ''\n" +
		"\tlist host b.example\n" +
		"\toption api_key 'sk-'\\''q\"\\x#y'\n" +
		"config client 'c'\n" +
		"\toption name \"Kid's \\\"tab\\\" # 1\"  # comment\n" +
		"\tlist ip 10.0.0.1\n"
	tb := mustLoad(t, strings.Replace(text, "main'\n", "main'\n\toption http_listen 'off'\n", 1))
	if tb.Main.HTTPListen != "" {
		t.Errorf("http_listen 'off' = %q", tb.Main.HTTPListen)
	}
	if tb.Main.TLSFallback != "" {
		t.Errorf("tls_fallback '' = %q, want off", tb.Main.TLSFallback)
	}
	p := tb.Provider("x")
	if strings.Join(p.Hosts, ",") != "a.example,b.example" {
		t.Errorf("hosts %q", p.Hosts)
	}
	if got := p.APIKey.Reveal(); got != `sk-'q"\x#y` {
		t.Errorf("api_key %q", got)
	}
	if got := tb.Clients[0].Name; got != `Kid's "tab" # 1` {
		t.Errorf("name %q", got)
	}
	// What print-config writes (uci's own quoting) reads back as the same values.
	var out bytes.Buffer
	if err := tb.Effective().WriteUCI(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `option name 'Kid'\''s "tab" # 1'`) {
		t.Errorf("print-config quoting:\n%s", out.String())
	}
	again := mustLoad(t, out.String())
	if again.Clients[0].Name != tb.Clients[0].Name {
		t.Errorf("read back %q", again.Clients[0].Name)
	}
}

func FuzzLoad(f *testing.F) {
	full, _ := os.ReadFile("testdata/full.uci")
	f.Add(string(full))
	f.Add(string(Embedded()))
	f.Add("config airelay 'main'\n\toption dns_ttl \"6\\\"0\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		tb, err := LoadBytes("fuzz", []byte(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := tb.Effective().WriteUCI(&out); err != nil {
			t.Fatal(err)
		}
		again, err := LoadBytes("printed", out.Bytes())
		if err != nil {
			if !strings.Contains(err.Error(), "REDACTED") {
				t.Fatalf("accepted config prints as an invalid one: %v\n%s", err, out.String())
			}
			return
		}
		var out2 bytes.Buffer
		if err := again.Effective().WriteUCI(&out2); err != nil {
			t.Fatal(err)
		}
		if out2.String() != out.String() {
			t.Fatalf("printed config reads back differently:\n%s\n---\n%s", out.String(), out2.String())
		}
	})
}

func FuzzSplitLine(f *testing.F) {
	f.Add(`option host 'api.openai.com' # comment`)
	f.Add(`list x "a\"b" c\ d`)
	f.Fuzz(func(t *testing.T, line string) {
		toks, err := splitLine(line)
		if err == nil && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#") && len(toks) == 0 {
			t.Fatalf("non-empty line %q gave no words", line)
		}
	})
}

// TestScheduleAndQuota: a client's windows and quotas load, main's defaults fill what a client
// leaves at 0, and a bad window is named (section, option, value, what is wrong).
func TestScheduleAndQuota(t *testing.T) {
	tb, err := LoadBytes("test", []byte("config airelay 'main'\n\toption default_daily_tokens '5000'\n\toption default_daily_bytes '10M'\nconfig client 'kids'\n\tlist ip '192.168.1.50'\n\tlist schedule 'Mon-Fri 15:00-20:00'\n\tlist schedule 'Sat,Sun 09:00-21:00'\n\toption schedule_cut '5m'\n\toption daily_tokens '1000'\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := tb.Clients[0]
	if c.Schedule.String() != "Mon,Tue,Wed,Thu,Fri 15:00-20:00; Sat,Sun 09:00-21:00" || c.ScheduleCut != 5*time.Minute {
		t.Errorf("schedule %q cut %v", c.Schedule, c.ScheduleCut)
	}
	if q := c.Quota.Or(tb.Main.DefaultQuota); q != (Quota{Tokens: 1000, Bytes: 10 << 20}) {
		t.Errorf("quota %+v", q)
	}
	if tb.Main.HistoryDays != 31 || tb.Main.HistoryInterval != time.Hour || tb.Main.HistoryFile != "" {
		t.Errorf("history defaults: %d %v %q", tb.Main.HistoryDays, tb.Main.HistoryInterval, tb.Main.HistoryFile)
	}
	_, err = LoadBytes("test", []byte("config client 'kids'\n\tlist ip '192.168.1.50'\n\tlist schedule 'Mon-Fry 15:00-20:00'\n\toption daily_tokens '-1'\nconfig airelay 'main'\n\toption history_interval '10s'\n"))
	for _, want := range []string{
		"test:3: section 'kids' option 'schedule' value 'Mon-Fry 15:00-20:00': unknown day 'Fry'",
		"test:4: section 'kids' option 'daily_tokens' value '-1': must be a whole number from 0",
		"test:6: section 'main' option 'history_interval' value '10s': must be at least 1m",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %s", err, want)
		}
	}
}
