package dnsserver

import (
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/config"
)

var fuzzAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}

// general is the answer the general path (miekg/dns unpacking, answer, packing) gives q, or
// nil where miekg/dns would not hand q to the handler at all.
func general(t testing.TB, tb *config.Table, q []byte) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	if err := r.Unpack(q); err != nil {
		return nil
	}
	h := newHandler(tb, "127.0.0.1:1")
	m := h.answer(tb, r, fuzzAddr)
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("general path packs no answer for %v: %v", r, err)
	}
	out := new(dns.Msg)
	if err := out.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return out
}

// fast is fastAnswer's reply to q unpacked, or nil when it left q to the general path.
func fast(t testing.TB, tb *config.Table, q []byte) *dns.Msg {
	t.Helper()
	out := make([]byte, maxFastReply)
	for i := range out {
		out[i] = 0xee // stale bytes from an earlier answer must not leak into this one
	}
	k := fastAnswer(tb, q, out)
	if k == 0 {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(out[:k]); err != nil {
		t.Fatalf("fast answer to %x does not unpack: %v\n%x", q, err, out[:k])
	}
	return m
}

func noV6(t testing.TB) *config.Table {
	tb, err := config.LoadBytes("test", []byte("config airelay 'main'\n\toption lan_ipv4 '10.0.0.1'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func q(name string, qtype uint16, edit func(*dns.Msg)) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	if edit != nil {
		edit(m)
	}
	return m
}

func withEDNS(opts ...dns.EDNS0) func(*dns.Msg) {
	return func(m *dns.Msg) {
		m.SetEdns0(4096, true)
		o := m.IsEdns0()
		o.Option = append(o.Option, opts...)
	}
}

func TestFastPath(t *testing.T) {
	for _, tc := range []struct {
		what   string
		tb     *config.Table
		m      *dns.Msg
		raw    func([]byte) []byte // edits the packed query
		isFast bool
	}{
		{what: "A", m: q("api.openai.com.", dns.TypeA, nil), isFast: true},
		{what: "AAAA", m: q("api.openai.com.", dns.TypeAAAA, nil), isFast: true},
		{what: "HTTPS is NODATA", m: q("api.openai.com.", dns.TypeHTTPS, nil), isFast: true},
		{what: "wildcard, mixed case", m: q("X.Example.AI.", dns.TypeA, nil), isFast: true},
		{what: "EDNS with a cookie, CD", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) {
			withEDNS(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})(m)
			m.CheckingDisabled = true
		}), isFast: true},
		{what: "no RD", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { m.RecursionDesired = false }), isFast: true},
		{what: "no lan_ipv6: AAAA is NODATA", tb: noV6(t), m: q("api.openai.com.", dns.TypeAAAA, nil), isFast: true},

		{what: "not intercepted", m: q("example.org.", dns.TypeA, nil)},
		{what: "disabled provider", m: q("api.disabled.com.", dns.TypeA, nil)},
		{what: "class CH", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })},
		{what: "a response", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { m.Response = true })},
		{what: "opcode STATUS", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus })},
		{what: "truncated flag", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { m.Truncated = true })},
		{what: "an escaped dot in a label", m: q(`api\.openai.com.`, dns.TypeA, nil)},
		{what: "a client subnet option", m: q("api.openai.com.", dns.TypeA, withEDNS(&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 0, 0, 0)}))},
		{what: "trailing bytes", m: q("api.openai.com.", dns.TypeA, nil), raw: func(b []byte) []byte { return append(b, 0) }},
		{what: "two questions", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })},
		{what: "airelay disabled", tb: table(t, "0", "0"), m: q("api.openai.com.", dns.TypeA, nil)},
		{what: "EDNS version 1 (BADVERS on the general path)", m: q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { withEDNS()(m); m.IsEdns0().SetVersion(1) })},
	} {
		t.Run(tc.what, func(t *testing.T) {
			tb := tc.tb
			if tb == nil {
				tb = table(t, "0", "1")
			}
			b := pack(t, tc.m)
			if tc.raw != nil {
				b = tc.raw(b)
			}
			f := fast(t, tb, b)
			if (f != nil) != tc.isFast {
				t.Fatalf("fast path answered: %v, want %v", f != nil, tc.isFast)
			}
			if f == nil {
				return
			}
			if g := general(t, tb, b); g == nil || g.String() != f.String() {
				t.Fatalf("fast answer\n%v\ndiffers from the general path's\n%v", f, g)
			}
		})
	}
}

// FuzzFastAnswer: whatever fastAnswer answers, miekg/dns can read, would have handed to the
// handler, and the general path answers the same.
func FuzzFastAnswer(f *testing.F) {
	for _, m := range []*dns.Msg{
		q("api.openai.com.", dns.TypeA, nil),
		q("API.openai.com.", dns.TypeAAAA, withEDNS()),
		q("a.example.ai.", dns.TypeHTTPS, withEDNS(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})),
		q("example.org.", dns.TypeA, nil),
		q("api.openai.com.", dns.TypeA, func(m *dns.Msg) { withEDNS()(m); m.IsEdns0().SetVersion(1) }),
	} {
		b, _ := m.Pack()
		f.Add(b)
	}
	tb := table(f, "0", "1")
	f.Fuzz(func(t *testing.T, b []byte) {
		fa := fast(t, tb, b)
		if fa == nil {
			return
		}
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			t.Fatalf("fast path answered what miekg/dns cannot read (%v): %x", err, b)
		}
		if r.Response || r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 || len(r.Answer) > 0 || len(r.Ns) > 0 || len(r.Extra) > 1 {
			t.Fatalf("fast path answered what the general path refuses: %v", r)
		}
		if g := general(t, tb, b); g == nil || g.String() != fa.String() {
			t.Fatalf("fast answer\n%v\ndiffers from the general path's\n%v", fa, g)
		}
	})
}

// TestBatchedIPv6 serves on ::1, where the batched reader goes through x/net/ipv6.
func TestBatchedIPv6(t *testing.T) {
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	h := newHandler(table(t, "0", "1"), "127.0.0.1:1")
	s := NewUDPServer(h, pc, 1232)
	if s.DecorateReader == nil {
		t.Fatal("a socket bound to ::1 is not batched")
	}
	go s.ActivateAndServe()
	t.Cleanup(func() { _ = s.Shutdown() })
	addr := pc.LocalAddr().String()
	for _, name := range []string{"api.openai.com.", "example.org."} {
		in := query(t, addr, "udp", name, dns.TypeA, true)
		switch name {
		case "api.openai.com.":
			if len(in.Answer) != 1 || in.Answer[0].(*dns.A).A.String() != "192.168.1.1" {
				t.Fatalf("%s over ::1: %v", name, in)
			}
		default:
			if in.Rcode != dns.RcodeRefused {
				t.Fatalf("%s over ::1: %v", name, in)
			}
		}
	}
}

// TestWildcardNotBatched: a socket on a wildcard address keeps miekg/dns's own reader, which
// answers from the address the query came to.
func TestWildcardNotBatched(t *testing.T) {
	pc, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if s := NewUDPServer(newHandler(table(t, "0", "1"), "127.0.0.1:1"), pc, 1232); s.DecorateReader != nil {
		t.Fatal("a wildcard socket was batched")
	}
}
