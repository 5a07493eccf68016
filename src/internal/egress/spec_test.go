package egress

import (
	"net"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{in: "", want: Spec{}},
		{in: "direct", want: Spec{}},
		{in: "iface:wan", want: Spec{Kind: Iface, Iface: "wan"}},
		{in: "socks5://10.0.0.2:1080", want: Spec{Kind: SOCKS5, Addr: "10.0.0.2:1080"}},
		{in: "socks5h://proxy.lan:1080", want: Spec{Kind: SOCKS5, Addr: "proxy.lan:1080"}},
		{in: "socks5://u:p%40ss@[fd00::2]:1080", want: Spec{Kind: SOCKS5, Addr: "[fd00::2]:1080", User: "u", Pass: "p@ss"}},
		{in: "http://u@proxy:3128/", want: Spec{Kind: Connect, Addr: "proxy:3128", User: "u"}},
		{in: "iface:", wantErr: "not valid"},
		{in: "iface:averyveryverylongname", wantErr: "not valid"},
		{in: "https://proxy:443", wantErr: `scheme "https" is not supported`},
		{in: "socks5://proxy", wantErr: "host:port"},
		{in: "http://proxy:3128/path", wantErr: "no path"},
		{in: "wan", wantErr: "want ''"},
	} {
		got, err := ParseSpec(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSpec(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	s, _ := ParseSpec("http://alice:hunter2@proxy:3128")
	if str := s.String(); strings.Contains(str, "hunter2") || str != "http://alice:REDACTED@proxy:3128" {
		t.Errorf("String() = %q, want the password redacted", str)
	}
}

// FuzzParseSpec: any accepted spec is usable by the Dialer, and one without a password reads
// back from its own String.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"", "direct", "iface:br-lan", "socks5://u:p@h:1", "socks5h://[::1]:1080",
		"http://proxy:3128", "http://a%20b@h:1/", "socks5://h:1?x", "iface:a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseSpec(v)
		if err != nil {
			return
		}
		switch s.Kind {
		case Direct:
			if s != (Spec{}) {
				t.Fatalf("direct spec carries fields: %+v", s)
			}
		case Iface:
			if s.Iface == "" || len(s.Iface) > 15 || strings.ContainsAny(s.Iface, "/ \t:") {
				t.Fatalf("bad interface name accepted: %q", s.Iface)
			}
		case SOCKS5, Connect:
			if h, p, err := net.SplitHostPort(s.Addr); err != nil || h == "" || p == "" {
				t.Fatalf("proxy address %q does not split: %v", s.Addr, err)
			}
			if len(s.User) > 255 || len(s.Pass) > 255 {
				t.Fatalf("credentials over 255 bytes accepted")
			}
		default:
			t.Fatalf("unknown kind %d", s.Kind)
		}
		str := s.String()
		if s.Pass != "" {
			return
		}
		back, err := ParseSpec(str)
		if err != nil || back != s {
			t.Fatalf("ParseSpec(%q) = %+v; its String %q parses to %+v, %v", v, s, str, back, err)
		}
	})
}
