package config

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

const fcBase = `config airelay 'main'
	option tls_listen ':8443'

config provider 'openai'
	list host 'api.openai.com'

config provider 'anthropic'
	list host 'api.anthropic.com'

config client 'dad'
	list mac '02:00:00:00:01:10'
	option access 'allow'
`

var (
	kidMAC   = net.HardwareAddr{2, 0, 0, 0, 1, 0x64}
	dadMAC   = net.HardwareAddr{2, 0, 0, 0, 1, 0x10}
	otherMAC = net.HardwareAddr{2, 0, 0, 0, 1, 0x99}
	anyIP    = netip.MustParseAddr("192.168.1.50")
)

// who is how one device fares in a table: refused (and why) or allowed, on openai.
func who(t *Table, mac net.HardwareAddr) (allowed bool, why string) {
	c := t.ClientFor(anyIP, mac)
	p := t.MatchHost("api.openai.com")
	return t.Access(c, p) && t.Refusal(c, p) == "", t.Refusal(c, p)
}

// TestFailClosed: with no valid config to fall back on, the broken one is read strictly:
// whatever a mistake touches is refused, saying where, and nothing it touches is let through.
func TestFailClosed(t *testing.T) {
	tests := []struct {
		name, text string
		// what must hold for the kid (the device the broken section was for), for dad (a
		// valid allow section) and for a device no section matches
		kid, dad, other bool
		why             string // in the kid's refusal: where the problem is, never what
	}{
		{"misspelt access", fcBase + "\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption acess 'deny'\n",
			false, true, true, "section 'kid' option 'acess'"},
		{"schedule typo", fcBase + "\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\tlist schedule 'Mon-Fry 15:00-20:00'\n",
			false, true, true, "section 'kid' option 'schedule'"},
		{"bad mac among good", fcBase + "\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\tlist mac '02:00:00:00:01:6g'\n\toption access 'deny'\n",
			false, true, false, "section 'kid' option 'mac'"},
		{"main typo", fcBase + "\nconfig airelay 'main'\n\toption defualt_access 'deny'\n\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n",
			true, true, false, ""},
		{"section type typo", fcBase + "\nconfig clinet 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption access 'deny'\n",
			false, true, false, "section 'kid'"},
		// an option line that cannot be read belongs to its section; any other line may have
		// been anything, a client section among them
		// a line of the section that cannot be read may have been its mac
		{"unreadable option line", fcBase + "\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption access 'deny\n",
			false, true, false, "section 'kid'"},
		// the kid's section matches no one: the kid is refused as a device no section matches
		{"misspelt mac", fcBase + "\nconfig client 'kid'\n\tlist macs '02:00:00:00:01:64'\n\toption access 'deny'\n",
			false, true, false, "section 'kid' option 'macs'"},
		{"unknown client option", fcBase + "\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption frobnicate 'x'\n",
			false, true, false, "section 'kid' option 'frobnicate'"},
		{"unreadable line", fcBase + "\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption access 'deny'\n'config client 'x'\n",
			false, true, false, ""},
		// the options under a 'config' line that cannot be read must not join the section above
		{"bad config line", fcBase + "\nconfig client 'kid'\n\tlist mac '02:00:00:00:01:64'\n\toption access 'deny'\nconfig client kid extra\n\toption access 'allow'\n",
			false, true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadBytes("test.uci", []byte(tt.text)); err == nil {
				t.Fatal("Load accepted it")
			}
			tb, err := FailClosed("test.uci", []byte(tt.text), nil)
			if err == nil || tb == nil || tb.FailClosed == "" {
				t.Fatalf("FailClosed: %v, table %v", err, tb)
			}
			if tb.MatchHost("api.openai.com") == nil || tb.MatchHost("api.anthropic.com") == nil {
				t.Fatal("a provider is no longer intercepted")
			}
			for _, d := range []struct {
				name string
				mac  net.HardwareAddr
				want bool
			}{{"kid", kidMAC, tt.kid}, {"dad", dadMAC, tt.dad}, {"other", otherMAC, tt.other}} {
				allowed, why := who(tb, d.mac)
				if allowed != d.want {
					t.Errorf("%s: allowed %v, want %v (why %q)", d.name, allowed, d.want, why)
				}
				if !allowed && why == "" && (d.name == "other" || tt.why != "") {
					t.Errorf("%s refused without a reason", d.name)
				}
				if strings.Contains(why, "test.uci") {
					t.Errorf("%s: the reason names the file the daemon read: %q", d.name, why)
				}
				if strings.Contains(why, "value") || strings.Contains(why, ":") {
					t.Errorf("%s is told more than where the problem is: %q", d.name, why)
				}
			}
			if _, why := who(tb, kidMAC); tt.why != "" && !strings.Contains(why, tt.why) {
				t.Errorf("kid's reason %q lacks %q", why, tt.why)
			}
			if !strings.Contains(tb.FailClosed, "test.uci:") {
				t.Errorf("FailClosed does not name file and line:\n%s", tb.FailClosed)
			}
		})
	}
}

// A provider with a bad upstream stays intercepted and refuses everyone; a bad or
// unbindable listener takes its default; a valid file is Load's table.
func TestFailClosedProviderAndListeners(t *testing.T) {
	text := strings.Replace(fcBase, "config provider 'openai'\n", "config provider 'openai'\n\toption upstream 'htps//api.openai.com'\n", 1) +
		"\nconfig airelay 'main'\n\toption http_listen 'nonsense'\n\toption status_listen '127.0.0.1:99'\n"
	low := func(tb *Table) []error {
		if strings.HasSuffix(tb.Main.StatusListen, ":99") {
			return []error{&Error{File: tb.Source, Section: "main", Option: "status_listen", Value: tb.Main.StatusListen, Msg: "port 99 is below 1024"}}
		}
		return nil
	}
	tb, err := FailClosed("test.uci", []byte(text), low)
	if err == nil {
		t.Fatal("no error")
	}
	p := tb.MatchHost("api.openai.com")
	if p == nil || p.Invalid != "section 'openai' option 'upstream'" || p.Upstream.String() != "https://api.openai.com" {
		t.Fatalf("openai: %+v", p)
	}
	for _, mac := range []net.HardwareAddr{dadMAC, otherMAC} {
		if allowed, why := who(tb, mac); allowed || why != p.Invalid {
			t.Errorf("%v on the broken provider: allowed %v, why %q", mac, allowed, why)
		}
	}
	c := tb.ClientFor(anyIP, dadMAC)
	if a := tb.MatchHost("api.anthropic.com"); !tb.Access(c, a) || tb.Refusal(c, a) != "" {
		t.Error("dad refused on a provider with no problem")
	}
	if tb.Main.HTTPListen != ":8080" || tb.Main.StatusListen != "127.0.0.1:9099" || tb.Main.TLSListen != ":8443" {
		t.Errorf("listeners: %q %q %q, want the defaults for the bad ones", tb.Main.HTTPListen, tb.Main.StatusListen, tb.Main.TLSListen)
	}
	if !strings.Contains(err.Error(), "port 99 is below 1024") || !strings.Contains(err.Error(), "option 'http_listen' value 'nonsense'") {
		t.Errorf("errors: %v", err)
	}

	good, err := FailClosed("test.uci", []byte(fcBase), low)
	if err != nil || good.FailClosed != "" || good.Main.DefaultAccess != Allow || good.Refusal(nil, good.MatchHost("api.openai.com")) != "" {
		t.Errorf("a valid file: %v %+v", err, good)
	}
}

// A device is told where the problems that refuse it are, each place once, never a value or
// what is wrong: a key pasted into upstream (Google's docs write it into the URL) would
// otherwise reach every device; the router's own text (FailClosed: log, status) says what is
// wrong, the key redacted.
func TestFailClosedTellsDevicesWhereNotWhat(t *testing.T) {
	const key = "AIzaSyLEAKED-user-key-0123456789"
	text := fcBase + "\nconfig provider 'gemini'\n\tlist host 'generativelanguage.googleapis.com'\n\toption upstream 'https://generativelanguage.googleapis.com/v1beta?key=" + key + "'\n" +
		"\nconfig airelay 'main'\n\tlist resolver 'dns.google'\n\tlist resolver 'one.one.one.one'\n"
	tb, err := FailClosed("test.uci", []byte(text), nil)
	if err == nil {
		t.Fatal("no error")
	}
	c := tb.ClientFor(anyIP, otherMAC) // no section: main's problems concern it
	for _, tt := range []struct {
		host, want string
	}{
		{"generativelanguage.googleapis.com", "section 'gemini' option 'upstream'"},
		{"api.openai.com", "section 'main' option 'resolver'"}, // two bad values, one place
	} {
		if why := tb.Refusal(c, tb.MatchHost(tt.host)); why != tt.want {
			t.Errorf("on %s a device is told %q, want %q", tt.host, why, tt.want)
		}
	}
	for what, s := range map[string]string{"the error": err.Error(), "FailClosed": tb.FailClosed} {
		if strings.Contains(s, key) || !strings.Contains(s, "section 'gemini' option 'upstream' value 'https://generativelanguage.googleapis.com/v1beta?REDACTED': a base URL takes no user, query or fragment (keys go in api_key)") {
			t.Errorf("%s: %s", what, s)
		}
	}
}

// A provider section without a name (uci add airelay provider) is refused by Load; read
// strictly its names are intercepted all the same, and every device refused on them.
func TestFailClosedUnnamedProvider(t *testing.T) {
	tb, err := FailClosed("test.uci", []byte(fcBase+"\nconfig provider\n\tlist host 'api.example.ai'\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "section '@provider[2]': a provider section needs a name") {
		t.Fatalf("%v", err)
	}
	p := tb.MatchHost("api.example.ai")
	if p == nil || p.Invalid == "" {
		t.Fatalf("the unnamed provider's host is not intercepted and refused: %+v", p)
	}
	if allowed, _ := who(tb, dadMAC); !allowed {
		t.Error("dad refused on a provider with no problem")
	}
	if c := tb.ClientFor(anyIP, dadMAC); tb.Access(c, p) {
		t.Error("dad allowed on the unnamed provider")
	}
}

// Nothing readable at all: the built-in providers are intercepted and every device refused.
func TestFailClosedGarbage(t *testing.T) {
	tb, err := FailClosed("test.uci", []byte("\x00\x01garbage\n'unterminated\n"), nil)
	if err == nil || tb == nil {
		t.Fatalf("%v %v", err, tb)
	}
	p := tb.MatchHost("api.openai.com")
	if p == nil {
		t.Fatal("the built-in providers are not intercepted")
	}
	if allowed, why := who(tb, otherMAC); allowed || why == "" {
		t.Errorf("a device on an unreadable config: allowed %v why %q", allowed, why)
	}
}
