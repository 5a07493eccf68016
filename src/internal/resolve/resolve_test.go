package resolve

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/testnet"
)

// upstream is a DNS server on loopback (UDP and TCP on one port) with canned answers.
type upstream struct {
	addr    string
	queries atomic.Int64
	delay   time.Duration
}

func startUpstream(t *testing.T, delay time.Duration) *upstream {
	t.Helper()
	u := &upstream{delay: delay}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		u.queries.Add(1)
		time.Sleep(u.delay)
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch q.Name {
		case "api.openai.com.":
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: "edge.example.net."})
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "edge.example.net.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("203.0.113.10")})
			} else if q.Qtype == dns.TypeAAAA {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: "edge.example.net.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 30}, AAAA: net.ParseIP("2001:db8::10")})
			}
		case "big.example.":
			if w.LocalAddr().Network() == "udp" {
				m.Truncated = true
				break
			}
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("203.0.113.99")})
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, ln := testnet.UDPAndTCP(t)
	us, ts := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { _ = us.Shutdown(); _ = ts.Shutdown() })
	u.addr = pc.LocalAddr().String()
	return u
}

func TestLookup(t *testing.T) {
	u := startUpstream(t, 0)
	r := &Resolver{Servers: func() []string { return []string{u.addr} }}
	ctx := context.Background()
	got, err := r.LookupNetIP(ctx, "API.OpenAI.com.")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("2001:db8::10")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v (IPv4 first, CNAME followed)", got, want)
	}
	n := u.queries.Load()
	if _, err := r.LookupNetIP(ctx, "api.openai.com"); err != nil || u.queries.Load() != n {
		t.Fatalf("second lookup: err %v, queries %d → %d: want a cache hit", err, n, u.queries.Load())
	}
	if allocs := testing.AllocsPerRun(50, func() { _, _ = r.LookupNetIP(ctx, "api.openai.com") }); allocs > 0 {
		t.Errorf("cache hit allocates %v times", allocs)
	}

	_, err = r.LookupNetIP(ctx, "nope.example")
	if err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("NXDOMAIN: err = %v", err)
	}
	n = u.queries.Load()
	_, _ = r.LookupNetIP(ctx, "nope.example")
	if u.queries.Load() != n {
		t.Error("negative answer not cached")
	}

	got, err = r.LookupNetIP(ctx, "big.example")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("203.0.113.99") {
		t.Fatalf("truncated answer: got %v, %v; want a retry over TCP", got, err)
	}
}

func TestConcurrentLookupsShareOneQuery(t *testing.T) {
	u := startUpstream(t, 100*time.Millisecond)
	r := &Resolver{Servers: func() []string { return []string{u.addr} }}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.LookupNetIP(context.Background(), "api.openai.com"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if q := u.queries.Load(); q != 2 { // one A, one AAAA
		t.Fatalf("%d upstream queries for 20 concurrent lookups, want 2", q)
	}
}

func TestLookupHonoursContext(t *testing.T) {
	u := startUpstream(t, time.Second)
	r := &Resolver{Servers: func() []string { return []string{u.addr} }}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := r.LookupNetIP(ctx, "api.openai.com"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("lookup did not return when its context ended")
	}
}

func TestDiscovery(t *testing.T) {
	dir := t.TempDir()
	auto := filepath.Join(dir, "resolv.conf.auto")
	sys := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(sys, []byte("nameserver 127.0.0.1\nnameserver ::1\nsearch lan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Files: []string{auto, sys}}
	if _, err := r.LookupNetIP(context.Background(), "api.openai.com"); !errors.Is(err, ErrNoServers) {
		t.Fatalf("only loopback servers: err = %v, want ErrNoServers", err)
	}
	if err := os.WriteFile(auto, []byte("# Interface wan\nnameserver 198.51.100.53\nnameserver 2001:db8::53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = &Resolver{Files: []string{auto, sys}}
	if got, want := r.servers(), []string{"198.51.100.53:53", "[2001:db8::53]:53"}; !slices.Equal(got, want) {
		t.Fatalf("servers = %v, want %v", got, want)
	}
	configured := &Resolver{Servers: func() []string { return []string{"192.0.2.1:53"} }, Files: []string{auto}}
	if got := configured.servers(); !slices.Equal(got, []string{"192.0.2.1:53"}) {
		t.Fatalf("configured servers ignored: %v", got)
	}
}
