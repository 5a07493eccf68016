package dnsserver

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/testnet"
)

const testConfig = `
config airelay 'main'
	option lan_ipv4 '192.168.1.1'
	option lan_ipv6 'fd00::1'
	option dns_ttl '30'
	option dns_forward '%FORWARD%'
	option enabled '%ENABLED%'

config provider 'openai'
	list host 'api.openai.com'

config provider 'wild'
	list host '*.example.ai'

config provider 'off'
	option enabled '0'
	list host 'api.disabled.com'
`

func table(t testing.TB, forward, enabled string) *config.Table {
	t.Helper()
	text := strings.NewReplacer("%FORWARD%", forward, "%ENABLED%", enabled).Replace(testConfig)
	tb, err := config.LoadBytes("test", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// serve starts the handler on UDP and TCP on one loopback port; a *Handler the way the service
// starts it (NewUDPServer: batched, with the fast path).
func serve(t *testing.T, h dns.Handler) string {
	t.Helper()
	pc, ln := testnet.UDPAndTCP(t)
	us, ts := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
	if dh, ok := h.(*Handler); ok {
		us = NewUDPServer(dh, pc, 1232)
	}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { _ = us.Shutdown(); _ = ts.Shutdown() })
	return pc.LocalAddr().String()
}

func newHandler(tb *config.Table, upstream string) *Handler {
	return &Handler{
		Table:   func() *config.Table { return tb },
		Servers: func() []string { return []string{upstream} },
		Log:     logging.Text(io.Discard, nil),
	}
}

// fakeUpstream answers every A query with 203.0.113.7.
func fakeUpstream(t *testing.T) string {
	return serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 99}, A: net.ParseIP("203.0.113.7")}}
		}
		_ = w.WriteMsg(m)
	}))
}

func query(t *testing.T, addr, network, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	if in.Id != m.Id {
		t.Fatalf("reply id %d, query id %d", in.Id, m.Id)
	}
	return in
}

func TestAnswers(t *testing.T) {
	addr := serve(t, newHandler(table(t, "0", "1"), fakeUpstream(t)))
	tests := []struct {
		name    string
		qtype   uint16
		rcode   int
		answer  string // the answer's data, "" for none
		soa     bool   // NODATA with a SOA
		network string
	}{
		{"api.openai.com.", dns.TypeA, dns.RcodeSuccess, "192.168.1.1", false, "udp"},
		{"API.OpenAI.COM.", dns.TypeA, dns.RcodeSuccess, "192.168.1.1", false, "udp"},
		{"api.openai.com.", dns.TypeA, dns.RcodeSuccess, "192.168.1.1", false, "tcp"},
		{"api.openai.com.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::1", false, "udp"},
		{"api.openai.com.", dns.TypeHTTPS, dns.RcodeSuccess, "", true, "udp"},
		{"api.openai.com.", dns.TypeSVCB, dns.RcodeSuccess, "", true, "udp"},
		{"api.openai.com.", dns.TypeMX, dns.RcodeSuccess, "", true, "udp"},
		{"api.openai.com.", dns.TypeTXT, dns.RcodeSuccess, "", true, "tcp"},
		{"deep.sub.example.ai.", dns.TypeA, dns.RcodeSuccess, "192.168.1.1", false, "udp"},
		{"example.ai.", dns.TypeA, dns.RcodeRefused, "", false, "udp"}, // *.x does not cover x
		{"api.disabled.com.", dns.TypeA, dns.RcodeRefused, "", false, "udp"},
		{"example.org.", dns.TypeA, dns.RcodeRefused, "", false, "udp"},
		{"openai.com.", dns.TypeA, dns.RcodeRefused, "", false, "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+dns.TypeToString[tt.qtype]+"/"+tt.network, func(t *testing.T) {
			in := query(t, addr, tt.network, tt.name, tt.qtype, true)
			if in.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[in.Rcode], dns.RcodeToString[tt.rcode])
			}
			if tt.answer == "" && len(in.Answer) != 0 {
				t.Fatalf("unexpected answer %v", in.Answer)
			}
			if tt.answer != "" {
				if len(in.Answer) != 1 {
					t.Fatalf("answers %v, want one", in.Answer)
				}
				var got string
				switch rr := in.Answer[0].(type) {
				case *dns.A:
					got = rr.A.String()
				case *dns.AAAA:
					got = rr.AAAA.String()
				}
				if got != tt.answer || in.Answer[0].Header().Ttl != 30 || in.Answer[0].Header().Name != tt.name {
					t.Fatalf("answer %v, want %s with TTL 30 for %s", in.Answer[0], tt.answer, tt.name)
				}
			}
			if tt.soa {
				if len(in.Ns) != 1 || in.Ns[0].Header().Rrtype != dns.TypeSOA || in.Ns[0].(*dns.SOA).Minttl != 30 {
					t.Fatalf("NODATA without the SOA: %v", in.Ns)
				}
			}
			if tt.rcode == dns.RcodeSuccess && in.IsEdns0() == nil {
				t.Fatal("EDNS0 query answered without OPT")
			}
		})
	}
}

func TestNoLANv6IsNODATA(t *testing.T) {
	tb, err := config.LoadBytes("test", []byte("config airelay 'main'\n\toption lan_ipv4 '10.0.0.1'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, newHandler(tb, "127.0.0.1:1"))
	in := query(t, addr, "udp", "api.openai.com.", dns.TypeAAAA, false)
	if in.Rcode != dns.RcodeSuccess || len(in.Answer) != 0 || len(in.Ns) != 1 {
		t.Fatalf("AAAA without lan_ipv6: %v", in)
	}
	if in.IsEdns0() != nil {
		t.Fatal("OPT added to a query that had none")
	}
}

func TestForwarding(t *testing.T) {
	up := fakeUpstream(t)
	for _, c := range []struct{ forward, enabled string }{{"1", "1"}, {"0", "0"}} {
		addr := serve(t, newHandler(table(t, c.forward, c.enabled), up))
		in := query(t, addr, "udp", "example.org.", dns.TypeA, false)
		if in.Rcode != dns.RcodeSuccess || len(in.Answer) != 1 || in.Answer[0].(*dns.A).A.String() != "203.0.113.7" {
			t.Fatalf("dns_forward=%s enabled=%s: not forwarded: %v", c.forward, c.enabled, in)
		}
		in = query(t, addr, "udp", "api.openai.com.", dns.TypeA, false)
		want := "192.168.1.1"
		if c.enabled == "0" {
			want = "203.0.113.7" // disabled: real answers, nothing intercepted
		}
		if len(in.Answer) != 1 || in.Answer[0].(*dns.A).A.String() != want {
			t.Fatalf("dns_forward=%s enabled=%s: api.openai.com = %v, want %s", c.forward, c.enabled, in.Answer, want)
		}
	}
	// An upstream that does not answer gives SERVFAIL, not a hang.
	h := newHandler(table(t, "1", "1"), "127.0.0.1:9")
	h.Timeout = 200 * time.Millisecond
	addr := serve(t, h)
	if in := query(t, addr, "udp", "example.org.", dns.TypeA, false); in.Rcode != dns.RcodeServerFailure {
		t.Fatalf("dead upstream: rcode %s", dns.RcodeToString[in.Rcode])
	}
}

func TestMalformedQueries(t *testing.T) {
	addr := serve(t, newHandler(table(t, "0", "1"), "127.0.0.1:9"))
	m := new(dns.Msg)
	m.SetQuestion("api.openai.com.", dns.TypeA)
	m.Question = append(m.Question, m.Question[0])
	in, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil || in.Rcode != dns.RcodeFormatError {
		t.Fatalf("two questions: %v %v", in, err)
	}
	m = new(dns.Msg)
	m.SetNotify("api.openai.com.")
	in, _, err = (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil || in.Rcode != dns.RcodeNotImplemented {
		t.Fatalf("NOTIFY: %v %v", in, err)
	}
	// Garbage on UDP must not kill the server.
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte{1, 2, 3})
	c.Close()
	if in := query(t, addr, "udp", "api.openai.com.", dns.TypeA, false); len(in.Answer) != 1 {
		t.Fatal("server stopped answering after a garbage packet")
	}
}

// dig, the tool a person would use, sees the same answers.
func TestDig(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig not installed (.ci/deps installs dnsutils)")
	}
	addr := serve(t, newHandler(table(t, "0", "1"), "127.0.0.1:9"))
	host, port, _ := net.SplitHostPort(addr)
	dig := func(args ...string) string {
		out, err := exec.Command("dig", append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := dig("+short", "api.openai.com", "A"); strings.TrimSpace(out) != "192.168.1.1" {
		t.Fatalf("dig +short A: %q", out)
	}
	if out := dig("+short", "+tcp", "api.openai.com", "AAAA"); strings.TrimSpace(out) != "fd00::1" {
		t.Fatalf("dig +tcp AAAA: %q", out)
	}
	if out := dig("api.openai.com", "HTTPS"); !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "ANSWER: 0") {
		t.Fatalf("dig HTTPS is not NODATA:\n%s", out)
	}
	if out := dig("example.org", "A"); !strings.Contains(out, "status: REFUSED") {
		t.Fatalf("dig example.org is not REFUSED:\n%s", out)
	}
}

func BenchmarkAnswer(b *testing.B) {
	tb, _ := config.LoadBytes("bench", []byte("config airelay 'main'\n\toption lan_ipv4 '10.0.0.1'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n"))
	h := newHandler(tb, "127.0.0.1:9")
	r := new(dns.Msg)
	r.SetQuestion("api.openai.com.", dns.TypeA)
	from := &net.UDPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 5555}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = h.answer(tb, r, from)
	}
}

// RFC 6891: a query with an OPT record of a version airelay does not speak (only 0 exists)
// gets BADVERS and an OPT of version 0; a query with two OPT records gets FORMERR. Over UDP
// (the batched reader and its fast path) and TCP, for an intercepted name and for one that
// is forwarded.
func TestEDNSVersionAndTwoOPT(t *testing.T) {
	addr := serve(t, newHandler(table(t, "1", "1"), fakeUpstream(t)))
	for _, network := range []string{"udp", "tcp"} {
		for _, name := range []string{"api.openai.com.", "example.org."} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			in, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
			if err != nil {
				t.Fatalf("%s %s EDNS version 1: %v", network, name, err)
			}
			if in.Rcode != dns.RcodeBadVers || in.IsEdns0() == nil || in.IsEdns0().Version() != 0 || len(in.Answer) != 0 {
				t.Errorf("%s %s EDNS version 1: rcode %s, OPT %v, answers %v", network, name, dns.RcodeToString[in.Rcode], in.IsEdns0(), in.Answer)
			}

			m = new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, false)
			m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512}})
			in, _, err = (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
			if err != nil {
				t.Fatalf("%s %s two OPT: %v", network, name, err)
			}
			if in.Rcode != dns.RcodeFormatError || len(in.Answer) != 0 {
				t.Errorf("%s %s two OPT records: rcode %s, answers %v", network, name, dns.RcodeToString[in.Rcode], in.Answer)
			}
		}
	}
	// version 0 is answered as always
	if in := query(t, addr, "udp", "api.openai.com.", dns.TypeA, true); in.Rcode != dns.RcodeSuccess || len(in.Answer) != 1 {
		t.Errorf("EDNS version 0: %v", in)
	}
}
