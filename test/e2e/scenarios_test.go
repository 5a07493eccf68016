package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The fake provider's default answer, which every client must get back whole.
const fakeText = "Hello from the fake provider, streamed word by word."

var gateway = "http://" + routerLAN + ":8080"

// --- what the devices run ---

// curlOut is one curl transfer: the body, and what --write-out reported.
type curlOut struct {
	result
	body    string
	status  int
	peer    string // the address curl connected to
	version string // HTTP version
}

// curl runs curl in ns. Only the device's own trust store is used (the test CA stands in for
// the public roots there).
func (s *sc) curl(ns string, args ...string) curlOut {
	s.t.Helper()
	const marker = "\n@@curl@@ "
	full := append([]string{"curl", "-sS", "--max-time", "20", "-w", marker + "%{http_code} %{remote_ip} %{http_version}"}, args...)
	r := runIn(ns, 30*time.Second, nil, full...)
	c := curlOut{result: r, body: r.out}
	if i := strings.LastIndex(r.out, marker); i >= 0 {
		c.body = r.out[:i]
		f := strings.Fields(r.out[i+len(marker):])
		if len(f) == 3 {
			c.status, _ = strconv.Atoi(f[0])
			c.peer, c.version = f[1], f[2]
		}
	}
	return c
}

// node runs one of test/e2e/node's scripts in ns with the official SDKs and decodes its JSON
// line into v. The device trusts its own store (NODE_EXTRA_CA_CERTS points at it).
func (s *sc) node(ns, script string, v any, env ...string) result {
	s.t.Helper()
	env = append(env, "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt", "HOME="+s.h.dir)
	r := runIn(ns, 90*time.Second, env, "node", filepath.Join(s.h.nodeDir(), script))
	if !r.ok() {
		return r
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		r.err = fmt.Errorf("output is not JSON: %v", err)
	}
	return r
}

// nodeDir is a directory with the scripts and a node_modules link to test/node's (where
// .ci/deps installs the SDKs from the lock file): Node resolves packages next to the script.
func (h *home) nodeDir() string {
	dir := filepath.Join(h.dir, "node")
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{"openai.mjs", "anthropic.mjs"} {
		b, err := os.ReadFile(filepath.Join(h.repo, "test/e2e/node", f))
		if err != nil {
			h.fatalf("%v", err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.Symlink(filepath.Join(h.repo, "test/node/node_modules"), filepath.Join(dir, "node_modules"))
	return dir
}

type openaiOut struct {
	BaseURL string   `json:"baseURL"`
	Models  []string `json:"models"`
	JSON    struct {
		Text    string `json:"text"`
		In, Out int
	} `json:"json"`
	Stream struct {
		Text    string `json:"text"`
		Chunks  int    `json:"chunks"`
		In, Out int
		Error   string `json:"error"`
	} `json:"stream"`
}

type anthropicOut struct {
	BaseURL string `json:"baseURL"`
	JSON    struct {
		Text    string `json:"text"`
		In, Out int
	} `json:"json"`
	Stream struct {
		Text    string `json:"text"`
		Chunks  int    `json:"chunks"`
		In, Out int
	} `json:"stream"`
}

// dig runs dig in ns and returns the rcode and the answer records' data by type.
type digOut struct {
	result
	rcode   string
	server  string
	answers []string // "TYPE DATA"
}

var (
	rcodeRE  = regexp.MustCompile(`status: ([A-Z]+)`)
	serverRE = regexp.MustCompile(`;; SERVER: ([^#\s]+)`)
)

func (s *sc) dig(ns string, args ...string) digOut {
	s.t.Helper()
	r := runIn(ns, 20*time.Second, nil, append([]string{"dig", "+noall", "+comments", "+answer", "+stats", "+time=3", "+tries=2"}, args...)...)
	d := digOut{result: r}
	if m := rcodeRE.FindStringSubmatch(r.out); m != nil {
		d.rcode = m[1]
	}
	if m := serverRE.FindStringSubmatch(r.out); m != nil {
		d.server = m[1]
	}
	for _, l := range strings.Split(r.out, "\n") {
		if l == "" || strings.HasPrefix(l, ";") {
			continue
		}
		if f := strings.Fields(l); len(f) >= 5 {
			d.answers = append(d.answers, f[3]+" "+strings.Join(f[4:], " "))
		}
	}
	return d
}

func (s *sc) status() *statusDoc {
	s.t.Helper()
	st, err := s.h.status()
	if err != nil {
		s.fatalf("%v", err)
	}
	return st
}

// nftCounters returns the packet counts of the commented rules of a table in ns.
func (s *sc) nftCounters(ns, table string) map[string]uint64 {
	s.t.Helper()
	r := runIn(ns, 10*time.Second, nil, "nft", "-j", "list", "table", "inet", table)
	if !r.ok() {
		s.fatalf("nft list table %s: %s", table, r)
	}
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Comment string            `json:"comment"`
				Expr    []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		s.fatalf("nft -j: %v", err)
	}
	out := map[string]uint64{}
	for _, o := range doc.Nftables {
		if o.Rule == nil {
			continue
		}
		for _, e := range o.Rule.Expr {
			var c struct {
				Counter *struct{ Packets uint64 } `json:"counter"`
			}
			if json.Unmarshal(e, &c) == nil && c.Counter != nil {
				out[o.Rule.Comment] = c.Counter.Packets
			}
		}
	}
	return out
}

func (s *sc) nft(ns, ruleset string) {
	s.t.Helper()
	f := filepath.Join(s.h.dir, fmt.Sprintf("rules-%d.nft", time.Now().UnixNano()))
	os.WriteFile(f, []byte(ruleset), 0o644)
	if r := runIn(ns, 10*time.Second, nil, "nft", "-f", f); !r.ok() {
		s.fatalf("nft -f in %s: %s\n%s", ns, r, ruleset)
	}
}

// --- 1. the relay, with nothing set on the device ---

func relayScenario(s *sc) {
	h := s.h
	before := device(s.status(), phoneAddr)

	c := s.curl(h.lan, "-H", "Authorization: Bearer "+openai.key, "https://api.openai.com/v1/models")
	if !c.ok() || c.status != 200 || !strings.Contains(c.body, `"data"`) {
		s.fatalf("curl https://api.openai.com/v1/models from lan: %d %s", c.status, c.result)
	}
	if c.peer != routerLAN {
		s.errorf("curl connected to %s, not the router (%s)", c.peer, routerLAN)
	}
	s.prove("curl https://api.openai.com/v1/models: 200 over HTTP/%s, connected to %s, the provider's certificate verified end to end", c.version, c.peer)

	var o openaiOut
	if r := s.node(h.lan, "openai.mjs", &o, "E2E_KEY="+openai.key); !r.ok() {
		s.fatalf("openai SDK from lan: %s", r)
	}
	if o.BaseURL != "https://api.openai.com/v1" || len(o.Models) == 0 || o.JSON.Text != fakeText || o.Stream.Text != fakeText || o.Stream.Chunks < 3 {
		s.fatalf("openai SDK from lan: %+v", o)
	}
	s.prove("openai SDK (base %s): models, chat JSON, chat SSE in %d chunks", o.BaseURL, o.Stream.Chunks)

	var a anthropicOut
	if r := s.node(h.lan, "anthropic.mjs", &a, "E2E_KEY="+anthropic.key); !r.ok() {
		s.fatalf("@anthropic-ai/sdk from lan: %s", r)
	}
	if a.BaseURL != "https://api.anthropic.com" || a.JSON.Text != fakeText || a.Stream.Text != fakeText || a.Stream.Chunks < 3 {
		s.fatalf("@anthropic-ai/sdk from lan: %+v", a)
	}
	s.prove("@anthropic-ai/sdk (base %s): messages JSON and SSE in %d events", a.BaseURL, a.Stream.Chunks)

	after := device(s.status(), phoneAddr)
	dOpenAI := after.Providers["openai"].Conns - before.Providers["openai"].Conns
	dAnthropic := after.Providers["anthropic"].Conns - before.Providers["anthropic"].Conns
	if dOpenAI < 2 || dAnthropic < 1 || after.BytesDown <= before.BytesDown {
		s.errorf("airelay status for %s: openai +%d connections (want ≥2: curl, node), anthropic +%d (want ≥1), bytes down %d→%d", phoneAddr, dOpenAI, dAnthropic, before.BytesDown, after.BytesDown)
	}
	if after.MAC != phoneMAC || after.Client != "phone" || after.Name != "Phone" {
		s.errorf("device %s in status: mac %q client %q name %q, want %s phone Phone", phoneAddr, after.MAC, after.Client, after.Name, phoneMAC)
	}
	if after.Requests != before.Requests {
		s.errorf("gateway requests of %s went %d→%d: the relay path should not touch the gateway", phoneAddr, before.Requests, after.Requests)
	}
	s.prove("airelay status: %s (%s, client 'phone') openai +%d connections, anthropic +%d, %d bytes down, no gateway request", phoneAddr, after.MAC, dOpenAI, dAnthropic, after.BytesDown-before.BytesDown)
}

// --- 2. DNS ---

func dnsScenario(s *sc) {
	h := s.h
	for _, p := range providers {
		d := s.dig(h.lan, p.host, "A")
		if d.rcode != "NOERROR" || len(d.answers) != 1 || d.answers[0] != "A "+routerLAN || d.server != routerLAN {
			s.fatalf("dig %s from lan (server %s): %s %v\n%s", p.host, d.server, d.rcode, d.answers, d.result)
		}
	}
	s.prove("dig A of %s, %s, %s from lan (server %s, dnsmasq): the router's %s", openai.host, anthropic.host, gemini.host, routerLAN, routerLAN)

	up := s.dig(h.router, "@"+ispDNS, openai.host, "HTTPS")
	if len(up.answers) == 0 {
		s.fatalf("the ISP's DNS has no HTTPS record for %s to withhold: %s", openai.host, up.result)
	}
	d := s.dig(h.lan, openai.host, "HTTPS")
	if d.rcode != "NOERROR" || len(d.answers) != 0 {
		s.fatalf("dig %s HTTPS from lan: %s %v, want NOERROR with no answer", openai.host, d.rcode, d.answers)
	}
	d6 := s.dig(h.lan, openai.host, "AAAA")
	if d6.rcode != "NOERROR" || len(d6.answers) != 0 {
		s.errorf("dig %s AAAA from lan: %s %v, want NODATA (no lan_ipv6)", openai.host, d6.rcode, d6.answers)
	}
	s.prove("HTTPS type: NODATA although the ISP's DNS has %q (no ECH/alt endpoint leaks); AAAA: NODATA", up.answers[0])

	e := s.dig(h.lan, "example.org", "A")
	if e.rcode != "NOERROR" || len(e.answers) != 1 || e.answers[0] != "A "+exampleOrg {
		s.fatalf("dig example.org from lan: %s %v, want A %s", e.rcode, e.answers, exampleOrg)
	}
	s.prove("example.org: A %s from the ISP's DNS, not intercepted", exampleOrg)
}

// --- 3. the router's own web UI behind tls_fallback ---

func webUIScenario(s *sc) {
	h := s.h
	seen := len(h.webUI.seen())
	for _, url := range []string{"https://" + routerLAN + "/", "https://openwrt.lan/"} {
		c := s.curl(h.lan, url)
		if !c.ok() || c.status != 200 || !strings.Contains(c.body, "OpenWrt LuCI") {
			s.fatalf("curl %s from lan: %d %s", url, c.status, c.result)
		}
	}
	peers := h.webUI.seen()[seen:]
	if len(peers) != 2 {
		s.fatalf("the web UI saw %d requests, want 2", len(peers))
	}
	for _, p := range peers {
		if p != "127.0.0.1" {
			s.errorf("the web UI saw a request from %s, want 127.0.0.1 (the relay's fallback dial)", p)
		}
	}
	s.prove("https://%s/ (no SNI) and https://openwrt.lan/ (SNI not an AI name) from lan: 200 from the web UI, which listens on 127.0.0.1:443 only and saw the relay (127.0.0.1) as its client", routerLAN)
}

// --- 4. a denied device ---

func denyScenario(s *sc) {
	h := s.h
	// The order that once let the kid through (issue 13): a freshly started airelay dumps the
	// neighbour table at the first device's connection, the kid is not in that dump (its entry
	// flushed), and the kid's first connection follows at once. Its MAC must still be found.
	h.proc("airelay").kill()
	if err := h.startDaemon(); err != nil {
		s.fatalf("airelay did not start again: %v", err)
	}
	h.ip("-n", h.router, "neigh", "flush", "to", kidAddr)
	if !s.relayWorks() {
		s.fatalf("lan's relayed request before the kid's failed")
	}
	lanAt := time.Now()
	before := device(s.status(), kidAddr)
	for i, p := range []provider{openai, anthropic} {
		if i == 0 {
			s.prove("airelay restarted, kid's neighbour entry flushed on the router, lan's request relayed; the kid's first request follows %s later", dur(time.Since(lanAt)))
		}
		c := s.curl(h.kid, "https://"+p.host+"/v1/models")
		if c.ok() || !strings.Contains(strings.ToLower(c.errOut), "access denied") {
			s.fatalf("kid reached %s through the relay, or failed otherwise: %s", p.host, c.result)
		}
	}
	s.prove("curl to %s and %s from kid: TLS alert access_denied from the relay", openai.host, anthropic.host)
	g := s.curl(h.kid, gateway+"/openai/v1/models")
	if g.status != 403 || !strings.Contains(g.body, "access_denied") {
		s.fatalf("kid through the gateway: %d %s", g.status, g.result)
	}
	var o openaiOut
	if r := s.node(h.kid, "openai.mjs", &o, "E2E_KEY="+openai.key); r.ok() {
		s.fatalf("the openai SDK on kid succeeded: %+v", o)
	}
	s.prove("gateway: 403 access_denied; openai SDK on kid fails")

	seen := len(h.site.seen())
	d := s.dig(h.kid, "example.org", "A")
	c := s.curl(h.kid, "https://example.org/")
	if d.rcode != "NOERROR" || len(d.answers) != 1 || !c.ok() || c.status != 200 || !strings.Contains(c.body, "example.org") {
		s.fatalf("kid's other traffic: dig %s %v; curl https://example.org/ %d %s", d.rcode, d.answers, c.status, c.result)
	}
	if p := h.site.seen()[seen:]; len(p) != 1 || p[0] != routerWAN {
		s.errorf("example.org saw %v, want the router's WAN address %s (routed and NATed, not relayed)", p, routerWAN)
	}
	s.prove("kid's other traffic works: dig example.org → %s, https://example.org/ 200 (routed, NATed from %s)", exampleOrg, routerWAN)

	after := device(s.status(), kidAddr)
	if after.Client != "kids" || after.MAC != kidMAC || after.Denied-before.Denied < 3 {
		s.errorf("status for kid %s: client %q mac %q denied %d→%d", kidAddr, after.Client, after.MAC, before.Denied, after.Denied)
	}
	s.prove("status: %s (%s, client 'kids') denied +%d", kidAddr, after.MAC, after.Denied-before.Denied)
}

// --- 5. the gateway with the router's key ---

func gatewayScenario(s *sc) {
	h := s.h
	before := device(s.status(), phoneAddr).Providers["openai"]
	var o openaiOut
	// The SDK refuses to start without a key, so a device with none passes a placeholder,
	// which the gateway treats as no key; the fake provider accepts only the router's key.
	r := s.node(h.lan, "openai.mjs", &o, "E2E_BASE_URL="+gateway+"/openai/v1", "E2E_KEY=sk-placeholder")
	if !r.ok() {
		s.fatalf("openai SDK through the gateway: %s", r)
	}
	if len(o.Models) == 0 || o.JSON.Text != fakeText || o.Stream.Text != fakeText || o.Stream.In == 0 {
		s.fatalf("openai SDK through the gateway: %+v", o)
	}
	s.prove("openai SDK (base %s, key 'sk-placeholder'): models, chat JSON and SSE (%d chunks) answered by a provider that accepts only the router's key", o.BaseURL, o.Stream.Chunks)
	after := device(s.status(), phoneAddr).Providers["openai"]
	wantIn, wantOut := uint64(o.JSON.In+o.Stream.In), uint64(o.JSON.Out+o.Stream.Out)
	gotIn, gotOut := after.TokensIn-before.TokensIn, after.TokensOut-before.TokensOut
	if gotIn != wantIn || gotOut != wantOut || after.Requests-before.Requests != 3 {
		s.fatalf("status for %s/openai: +%d requests, tokens +%d in +%d out; want +3, +%d, +%d", phoneAddr, after.Requests-before.Requests, gotIn, gotOut, wantIn, wantOut)
	}
	s.prove("status: %s openai +3 requests, +%d tokens in, +%d out (what the SDK was told)", phoneAddr, gotIn, gotOut)

	// airelay's rules open its listeners to the LAN's devices only: from the WAN side, the
	// router's address takes no connection on the gateway, the relay or 443.
	var wg sync.WaitGroup
	open := make([]string, 3)
	for i, port := range []string{"8080", "8443", "443"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := dialIn(h.wan, "tcp", routerWAN+":"+port, 2*time.Second); err == nil {
				c.Close()
				open[i] = port
			}
		}()
	}
	wg.Wait()
	if strings.Join(open, "") != "" {
		s.fatalf("from wan, %s:%v accepted a connection", routerWAN, open)
	}
	s.prove("from wan, %s:8080, :8443 and :443 take no connection", routerWAN)
}

// --- 7. egress through a SOCKS5 proxy ---

func egressScenario(s *sc) {
	h := s.h
	// In the router, a direct connection to gemini is dropped (and counted); connections to the
	// proxy are counted. In wan, connections to gemini from the proxy's host are counted.
	s.nft(h.router, `table inet e2e_egress {
	chain output {
		type filter hook output priority filter - 10; policy accept;
		ip daddr `+gemini.addr+` tcp dport 443 counter drop comment "direct"
		ip daddr `+hostOf(socksAddr)+` tcp dport `+portOf(socksAddr)+` counter comment "proxy"
	}
}`)
	s.nft(h.wan, `table inet e2e_egress {
	chain output {
		type filter hook output priority filter; policy accept;
		ip daddr `+gemini.addr+` tcp dport 443 counter comment "proxied"
	}
}`)
	defer runIn(h.router, 10*time.Second, nil, "nft", "delete", "table", "inet", "e2e_egress")
	defer runIn(h.wan, 10*time.Second, nil, "nft", "delete", "table", "inet", "e2e_egress")
	before := s.status()

	body := `{"contents":[{"role":"user","parts":[{"text":"Say hello."}]}]}`
	c := s.curl(h.lan, "-H", "x-goog-api-key: "+gemini.key, "-H", "Content-Type: application/json", "-d", body,
		"https://"+gemini.host+"/v1beta/models/gemini-test:streamGenerateContent?alt=sse")
	if !c.ok() || c.status != 200 || strings.Count(c.body, "data: ") < 3 || c.peer != routerLAN {
		s.fatalf("gemini SSE through the relay from lan: %d %s", c.status, c.result)
	}
	g := s.curl(h.lan, "-H", "Content-Type: application/json", "-d", body, gateway+"/gemini/v1beta/models/gemini-test:generateContent")
	if !g.ok() || g.status != 200 || !strings.Contains(g.body, "candidates") {
		s.fatalf("gemini through the gateway from lan: %d %s", g.status, g.result)
	}
	s.prove("https://%s streamGenerateContent (SSE, %d events) via the relay and generateContent via the gateway: 200", gemini.host, strings.Count(c.body, "data: "))

	rc, wc := s.nftCounters(h.router, "e2e_egress"), s.nftCounters(h.wan, "e2e_egress")
	if rc["direct"] != 0 || rc["proxy"] == 0 || wc["proxied"] == 0 {
		s.fatalf("counters: router→gemini direct %d packets (want 0), router→proxy %d (want >0), proxy→gemini %d (want >0)", rc["direct"], rc["proxy"], wc["proxied"])
	}
	after := s.status()
	bp, ap := providerOf(before, "gemini"), providerOf(after, "gemini")
	if ap.Conns-bp.Conns < 1 || ap.Requests-bp.Requests < 1 || ap.Errors != bp.Errors {
		s.errorf("status gemini: connections +%d requests +%d errors +%d", ap.Conns-bp.Conns, ap.Requests-bp.Requests, ap.Errors-bp.Errors)
	}
	s.prove("router: 0 packets router→%s:443 (a drop rule waits for them), %d to the proxy %s; wan: %d packets proxy→%s:443", gemini.addr, rc["proxy"], socksAddr, wc["proxied"], gemini.addr)
}

func providerOf(st *statusDoc, id string) providerRow {
	for _, p := range st.Providers {
		if p.ID == id {
			return p
		}
	}
	return providerRow{ID: id}
}

// --- 6. faults ---

func faultScenario(s *sc) {
	s.part("6a-drop-mid-stream", dropMidStream)
	s.part("6b-unreachable", unreachable)
	s.part("6c-restart", restart)
	s.part("6d-bad-reload", badReload)
}

// relayWorks reports whether the phone can reach openai through the relay.
func (s *sc) relayWorks() bool {
	c := s.curl(s.h.lan, "--max-time", "5", "-H", "Authorization: Bearer "+openai.key, "https://api.openai.com/v1/models")
	return c.ok() && c.status == 200
}

// The provider cuts its stream after three events: the device must see an error (not a
// truncated answer that looks complete, and not a hang), through the relay and the gateway.
func dropMidStream(s *sc) {
	h := s.h
	h.proc("fake-openai").stop(5 * time.Second)
	h.startProvider(openai, "--drop-after", "3", "--gap", "100ms")
	defer func() {
		h.proc("fake-openai").stop(5 * time.Second)
		h.startProvider(openai)
	}()
	for _, via := range []struct{ name, base, key string }{
		{"relay", "", openai.key},
		{"gateway", gateway + "/openai/v1", "sk-placeholder"},
	} {
		var o openaiOut
		env := []string{"E2E_MODE=stream", "E2E_KEY=" + via.key}
		if via.base != "" {
			env = append(env, "E2E_BASE_URL="+via.base)
		}
		r := s.node(h.lan, "openai.mjs", &o, env...)
		if !r.ok() {
			s.errorf("%s: the SDK script failed: %s", via.name, r)
			continue
		}
		if o.Stream.Error == "" || o.Stream.Text == fakeText {
			s.errorf("%s: the cut stream ended without an error at the device: %d chunks, text %q (a truncated answer that looks complete)", via.name, o.Stream.Chunks, o.Stream.Text)
			continue
		}
		s.prove("%s: the SDK's stream failed after %d chunks in %s (%s)", via.name, o.Stream.Chunks, dur(r.took), firstLine(o.Stream.Error))
	}
	h.proc("fake-openai").stop(5 * time.Second)
	h.startProvider(openai)
	if !s.relayWorks() {
		s.fatalf("after the provider came back, the relay does not work")
	}
	s.prove("the next request works")
	s.settled("openai")
}

// settled checks that no connection or request of provider id is still counted active: a cut
// stream must end the device's connection too, not linger until idle_timeout.
func (s *sc) settled(id string) {
	s.t.Helper()
	began := time.Now()
	for {
		p := providerOf(s.status(), id)
		if p.Active == 0 {
			s.prove("no %s connection left active", id)
			return
		}
		if time.Since(began) > 10*time.Second {
			s.errorf("%d %s connections or requests still active 10s after the last one ended", p.Active, id)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The provider is down (connection refused), then blackholed (no answer at all): the device
// gets a clean error, within connect_timeout for the blackhole, and everything works when it
// is back.
func unreachable(s *sc) {
	h := s.h
	before := providerOf(s.status(), "openai")
	h.proc("fake-openai").stop(5 * time.Second)
	defer func() {
		runIn(h.wan, 10*time.Second, nil, "nft", "delete", "table", "inet", "e2e_blackhole")
		if p := h.proc("fake-openai"); p.exited() {
			h.startProvider(openai)
		}
	}()
	probe := func(what string, max time.Duration, wantGateway int) {
		var wg sync.WaitGroup
		var relay, gw curlOut
		wg.Add(2)
		go func() {
			defer wg.Done()
			relay = s.curl(h.lan, "--max-time", "40", "-H", "Authorization: Bearer "+openai.key, "https://api.openai.com/v1/models")
		}()
		go func() { defer wg.Done(); gw = s.curl(h.lan, "--max-time", "40", gateway+"/openai/v1/models") }()
		wg.Wait()
		// exit 7 would be the relay refusing the connection, 28 curl giving up: the relay must
		// take the connection and close it once the provider cannot be reached
		if relay.ok() || relay.code == 7 || relay.code == 28 || relay.took > max {
			s.errorf("%s: relay: %s, want the TLS handshake closed within %s", what, relay.result, max)
		}
		if gw.status != wantGateway || gw.took > max {
			s.errorf("%s: gateway: %d after %s, want %d within %s: %s", what, gw.status, gw.took, wantGateway, max, gw.result)
		}
		s.prove("%s: relay closed the device's TLS in %s (curl exit %d), gateway %d in %s", what, dur(relay.took), relay.code, gw.status, dur(gw.took))
	}
	probe("provider stopped", 5*time.Second, 502)

	h.startProvider(openai)
	s.nft(h.wan, `table inet e2e_blackhole {
	chain input {
		type filter hook input priority filter - 10; policy accept;
		ip daddr `+openai.addr+` tcp dport 443 drop
	}
}`)
	// connect_timeout is 10s in the shipped config
	probe("provider blackholed", 20*time.Second, 504)
	runIn(h.wan, 10*time.Second, nil, "nft", "delete", "table", "inet", "e2e_blackhole")
	if !s.relayWorks() {
		s.fatalf("the relay does not work after the provider came back")
	}
	after := providerOf(s.status(), "openai")
	if after.Errors-before.Errors < 4 {
		s.errorf("status openai errors +%d, want ≥4", after.Errors-before.Errors)
	}
	s.prove("back: works; status openai errors +%d", after.Errors-before.Errors)
	s.settled("openai")
}

// airelay crashes and procd starts it again, while dnsmasq keeps running with the same
// conf-dir file: the device recovers within seconds, with nothing done to dnsmasq.
func restart(s *sc) {
	h := s.h
	dns := h.proc("dnsmasq")
	starts := h.dnsmasqN
	h.proc("airelay").kill()
	c := s.curl(h.lan, "--max-time", "5", "-H", "Authorization: Bearer "+openai.key, "https://api.openai.com/v1/models")
	if c.ok() {
		s.fatalf("the relay answered while airelay was down")
	}
	// dnsmasq answers an exact AI name's A itself with the router's address on the asking
	// device's network (interface-name), so the device goes on failing at the router (nothing
	// listens behind the redirect), never with another address; a query dnsmasq still forwards to
	// airelay (probably the AAAA: br-lan has no IPv6 here) waits for dnsmasq's timeout, so the
	// failure has taken up to curl's 5 s here rather than coming at once
	down := s.dig(h.lan, "+tries=1", "api.groq.com", "A")
	if len(down.answers) > 1 || len(down.answers) == 1 && down.answers[0] != "A "+routerLAN {
		s.errorf("a name nobody asked before resolved to something other than the router while airelay was down: %v", down.answers)
	}
	downRcode := down.rcode
	if downRcode == "" {
		downRcode = "no answer"
	} else if len(down.answers) == 1 {
		downRcode += " " + down.answers[0]
	}
	s.prove("airelay SIGKILLed: device's HTTPS fails (curl exit %d in %s); a new AI name gets %s", c.code, dur(c.took), downRcode)

	began := time.Now()
	if err := h.startDaemon(); err != nil { // procd's respawn
		s.fatalf("airelay did not start again: %v", err)
	}
	var took time.Duration
	for {
		if s.relayWorks() {
			took = time.Since(began)
			break
		}
		if time.Since(began) > 15*time.Second {
			s.fatalf("the device did not recover within 15s of the restart")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if took > 10*time.Second {
		s.errorf("the device took %s to recover, want seconds", took)
	}
	d := s.dig(h.lan, "api.groq.com", "A")
	if d.rcode != "NOERROR" || len(d.answers) != 1 || d.answers[0] != "A "+routerLAN {
		s.errorf("after the restart, dig api.groq.com from lan: %s %v", d.rcode, d.answers)
	}
	if h.proc("dnsmasq") != dns || dns.exited() || h.dnsmasqN != starts {
		s.errorf("dnsmasq was restarted")
	}
	s.prove("respawned: the device's HTTPS works %s after the start, DNS through dnsmasq answers %s; dnsmasq (pid %d) never restarted", dur(took), routerLAN, dns.pid())
}

// A bad config never replaces a good one: uci commit + reload stops at runtime-config (the
// daemon is signalled only to show why), and a bad file handed to the daemon directly (SIGHUP)
// is refused while the old config serves.
func badReload(s *sc) {
	h := s.h
	good, _ := os.ReadFile(h.path(confPath))
	goodRun, _ := os.ReadFile(h.path(runConf))
	restored := false
	defer func() {
		if !restored {
			os.WriteFile(h.path(confPath), good, 0o600)
			h.initReload()
		}
	}()
	st0 := s.status()
	bad := "\nconfig provider 'broken'\n\tlist host 'api.broken.example'\n\toption upstream 'ftp://api.broken.example'\n"
	waitStatus := func(what string, ok func(*statusDoc) bool) *statusDoc {
		deadline := time.Now().Add(20 * time.Second)
		for st := s.status(); ; st = s.status() {
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				s.fatalf("%s: status still %+v", what, st.Config)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// uci set …; uci commit airelay → /etc/init.d/airelay reload
	os.WriteFile(h.path(confPath), append(append([]byte(nil), good...), bad...), 0o600)
	err := h.initReload()
	if err == nil || !strings.Contains(err.Error(), "section 'broken' option 'upstream'") {
		s.fatalf("init reload with a bad config: %v, want runtime-config to refuse it naming section 'broken' option 'upstream'", err)
	}
	if now, _ := os.ReadFile(h.path(runConf)); string(now) != string(goodRun) {
		s.fatalf("the daemon's copy changed although the config is bad")
	}
	st := waitStatus("after a refused reload", func(st *statusDoc) bool {
		return st.Config.State == "last_valid" && strings.Contains(st.Config.LastError, "section 'broken' option 'upstream'")
	})
	if st.Config.Generation != st0.Config.Generation || !strings.HasPrefix(st.Config.Message, "serving the last valid config from ") {
		s.fatalf("after a refused reload: %+v", st.Config)
	}
	why := err.Error()[strings.Index(err.Error(), "section "):]
	s.prove("uci commit + reload: runtime-config refused it (%s), the daemon's copy unchanged; status: still generation %d, state %s", firstLine(why), st.Config.Generation, st.Config.State)

	// the bad file reaches the daemon anyway
	os.WriteFile(h.path(runConf), append(append([]byte(nil), goodRun...), bad...), 0o600)
	h.proc("airelay").signal(syscall.SIGHUP)
	st = waitStatus("after SIGHUP with a bad copy", func(st *statusDoc) bool {
		return strings.Contains(st.Config.LastError, h.path(runConf))
	})
	if st.Config.Generation != st0.Config.Generation || h.proc("airelay").exited() {
		s.fatalf("after SIGHUP with a bad config: generation %d→%d, exited %v", st0.Config.Generation, st.Config.Generation, h.proc("airelay").exited())
	}
	if !s.relayWorks() {
		s.fatalf("the relay stopped working after a bad reload")
	}
	if c := s.curl(h.kid, "https://"+openai.host+"/v1/models"); c.ok() {
		s.fatalf("kid is no longer denied after a bad reload")
	}
	why = st.Config.LastError
	if i := strings.Index(why, "section "); i >= 0 {
		why = why[i:]
	}
	s.prove("SIGHUP with a bad copy: still generation %d, status last_error %q; relay serves, kid still denied", st.Config.Generation, firstLine(why))

	// the good config again, through the init script
	os.WriteFile(h.path(confPath), good, 0o600)
	if err := h.initReload(); err != nil {
		s.fatalf("reload with the good config: %v", err)
	}
	restored = true
	st = waitStatus("the good config", func(st *statusDoc) bool { return st.Config.Generation != st0.Config.Generation })
	if st.Config.State != "current" || st.Config.LastError != "" {
		s.fatalf("after the good config: %+v", st.Config)
	}
	s.prove("the good config reloaded: generation %d, state %s, last_error %q", st.Config.Generation, st.Config.State, st.Config.LastError)
}
