package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airelay/airelay/src/testca"
)

// Addresses. "The internet" uses documentation prefixes that are not private, because airelay
// refuses private addresses learned from DNS and the test keeps that default policy. The LAN is
// OpenWrt's default 192.168.1.0/24.
const (
	ispAddr   = "203.0.113.1" // the ISP's end of the router's WAN link
	routerWAN = "203.0.113.2"
	routerLAN = "192.168.1.1"
	phoneAddr = "192.168.1.100" // the home device
	phoneMAC  = "02:00:00:00:01:00"
	kidAddr   = "192.168.1.101" // a device the config denies, by MAC
	kidMAC    = "02:00:00:00:01:01"
	ispDNS    = "198.51.100.53"
	socksAddr = "198.51.100.80:1080"
	// A site that is not an AI API. Not in the RFC 5737 test nets like the rest: dnsmasq's
	// rebind protection (on in OpenWrt) counts those as private and would drop the answer.
	// 198.18.0.0/15 (RFC 2544, benchmarking) is private to neither dnsmasq nor airelay.
	exampleOrg = "198.18.0.20"
)

// provider is one fake provider in wan: the name it answers as, its public address, and the
// only API key it accepts (anyKey: it accepts any).
type provider struct {
	id, host, addr, key string
	anyKey              bool
}

var (
	openai = provider{id: "openai", host: "api.openai.com", addr: "198.51.100.10", key: "sk-e2e-openai-0123456789"}
	// @anthropic-ai/sdk 1.x sends its key as "Authorization: Bearer", which the fake provider
	// refuses for Anthropic (it takes only x-api-key), so this one takes any key. The key is
	// the device's own on the relay path, which airelay never sees.
	anthropic = provider{id: "anthropic", host: "api.anthropic.com", addr: "198.51.100.11", key: "sk-ant-e2e-0123456789", anyKey: true}
	gemini    = provider{id: "gemini", host: "generativelanguage.googleapis.com", addr: "198.51.100.12", key: "gm-e2e-0123456789"}
	providers = []provider{openai, anthropic, gemini}
)

// siteConfig is appended to the shipped files/airelay.config, as a user would add sections with
// uci: the router keeps keys for the gateway, gemini leaves through the ISP's SOCKS5 proxy, and
// two devices are named by MAC, one of them denied.
var siteConfig = `
# added by the e2e test, as with uci set/add
config provider 'openai'
	option api_key '` + openai.key + `'

config provider 'gemini'
	option api_key '` + gemini.key + `'
	option egress 'socks5://` + socksAddr + `'

config client 'phone'
	option name 'Phone'
	list mac '` + phoneMAC + `'

config client 'kids'
	option name 'Kid tablet'
	list mac '` + kidMAC + `'
	option access 'deny'
`

// home is the whole setup: four network namespaces and what runs in them.
//
//	wan     the internet: fake providers on :443, the ISP's DNS, a SOCKS5 proxy, example.org
//	router  airelay + dnsmasq + an fw4-shaped nftables ruleset; a web UI on 127.0.0.1:443
//	lan     the home device (phone): resolver = the router, trusts the test CA as its public roots
//	kid     a second device on the same LAN bridge, denied by its MAC in the config
type home struct {
	t                     *testing.T
	repo                  string
	dir                   string // bin/, pki/, node/, wan/
	root                  string // the router's files, at their OpenWrt paths below root
	wan, router, lan, kid string // namespace names
	airelayBin, fakeBin   string
	ca                    *testca.CA

	mu       sync.Mutex
	procs    map[string]*proc
	servers  []*webServer
	webUI    *webServer
	site     *webServer
	dnsmasqN int // dnsmasq (re)starts in the router, by the init script's logic
	once     sync.Once
}

const nsPrefix = "airelay-e2e-"

func (h *home) namespaces() []string { return []string{h.wan, h.router, h.lan, h.kid} }

// Paths on the router, below h.root: the same as on OpenWrt.
func (h *home) path(p string) string { return filepath.Join(h.root, p) }

var (
	confPath    = "etc/config/airelay"
	runDir      = "var/run/airelay"
	runConf     = "var/run/airelay/airelay"
	configState = "var/run/airelay/config-state"   // runtime-config --state: which config the copy is
	lastValid   = "etc/airelay/last-valid"         // the last config that passed, without keys
	dnsmasqConf = "var/etc/dnsmasq.conf.cfg01411c" // OpenWrt 24.10's name for the default instance
	chainPre    = "usr/share/nftables.d/chain-pre"
)

// up builds the binaries and the namespaces, and starts everything: the internet, then the
// router as it boots (dnsmasq first, airelay last, started the way files/airelay.init does).
func (h *home) up() {
	pid := os.Getpid()
	h.root = filepath.Join(h.dir, "router")
	name := func(role string) string { return fmt.Sprintf("%s%d-%s", nsPrefix, pid, role) }
	h.wan, h.router, h.lan, h.kid = name("wan"), name("router"), name("lan"), name("kid")
	h.t.Cleanup(h.cleanup)
	h.build()
	h.pki()
	h.network()
	h.startInternet()
	h.startRouter()
}

// under makes t the test that h's helpers fail (a scenario's subtest: a setup step that fails
// inside a scenario fails that scenario) until the returned func restores the previous one.
func (h *home) under(t *testing.T) (restore func()) {
	prev := h.t
	h.t = t
	return func() { h.t = prev }
}

func (h *home) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf(format, args...)
}

// build compiles airelay and the fake provider from this tree.
func (h *home) build() {
	bin := filepath.Join(h.dir, "bin")
	h.airelayBin, h.fakeBin = filepath.Join(bin, "airelay"), filepath.Join(bin, "fakeprovider")
	for out, pkg := range map[string]string{h.airelayBin: "./src/cmd/airelay", h.fakeBin: "./src/cmd/fakeprovider"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = h.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			h.fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
}

// pki makes the test's "public" CA and a certificate for every HTTPS server, issued the way a
// public CA would: for the names the server answers as. Devices and the router trust this CA
// in place of the public roots; airelay never holds a key for any of them.
func (h *home) pki() {
	c, err := testca.New("airelay e2e public root")
	if err != nil {
		h.fatalf("CA: %v", err)
	}
	h.ca = c
	for _, p := range providers {
		// cert.pem and key.pem for the fakeprovider (and a ca.pem nobody reads).
		dir := filepath.Join(h.dir, "pki", p.id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			h.fatalf("%v", err)
		}
		if _, _, _, err := c.WriteFiles(dir, h.leaf(p.host)); err != nil {
			h.fatalf("%v", err)
		}
	}
}

func (h *home) leaf(names ...string) tls.Certificate {
	c, err := h.ca.Leaf(names...)
	if err != nil {
		h.fatalf("leaf %v: %v", names, err)
	}
	return c
}

// ip runs the ip command (in the test's own namespace; -n NS targets another).
func (h *home) ip(args ...string) {
	h.t.Helper()
	cmd := exec.Command("ip", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		h.fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// in runs a setup command in namespace ns and fails the test when it fails.
func (h *home) in(ns string, args ...string) string {
	h.t.Helper()
	r := runIn(ns, 30*time.Second, nil, args...)
	if !r.ok() {
		h.fatalf("in %s: %s: %s", ns, strings.Join(args, " "), r)
	}
	return r.out
}

// network creates the namespaces, links, addresses and routes. Nothing is connected to the
// test's own namespace: no packet can leave the four.
func (h *home) network() {
	for _, ns := range h.namespaces() {
		cmd := exec.Command("ip", "netns", "add", ns)
		if b, err := cmd.CombinedOutput(); err != nil {
			if ns == h.wan && (bytes.Contains(b, []byte("ermission")) || bytes.Contains(b, []byte("not permitted"))) {
				h.t.Skipf("cannot create network namespaces here: %s", bytes.TrimSpace(b))
			}
			h.fatalf("ip netns add %s: %v\n%s", ns, err, b)
		}
		h.ip("-n", ns, "link", "set", "lo", "up")
	}
	// /etc/netns/NS/* is bound over /etc/* by `ip netns exec`: each namespace's resolver, hosts
	// and trusted roots.
	lanEtc := map[string]string{"resolv.conf": "nameserver " + routerLAN + "\n"}
	h.etc(h.lan, lanEtc, true)
	h.etc(h.kid, lanEtc, true)
	h.etc(h.wan, map[string]string{"resolv.conf": "nameserver " + ispDNS + "\n"}, false)
	// OpenWrt's /etc/resolv.conf names dnsmasq on loopback; the ISP's server follows here in
	// place of /tmp/resolv.conf.d/resolv.conf.auto (airelay skips loopback resolvers, which
	// would loop back to itself).
	h.etc(h.router, map[string]string{"resolv.conf": "search lan\nnameserver 127.0.0.1\nnameserver " + ispDNS + "\n"}, true)

	// wan: the ISP's router and the public servers' addresses
	h.ip("-n", h.router, "link", "add", "wan", "type", "veth", "peer", "name", "eth0", "netns", h.wan)
	h.ip("-n", h.wan, "addr", "add", ispAddr+"/24", "dev", "eth0")
	h.ip("-n", h.wan, "link", "set", "eth0", "up")
	for _, a := range []string{openai.addr, anthropic.addr, gemini.addr, ispDNS, exampleOrg, hostOf(socksAddr)} {
		h.ip("-n", h.wan, "addr", "add", a+"/32", "dev", "lo")
	}
	// router: wan + br-lan with one port per device
	h.ip("-n", h.router, "addr", "add", routerWAN+"/24", "dev", "wan")
	h.ip("-n", h.router, "link", "set", "wan", "up")
	h.ip("-n", h.router, "route", "add", "default", "via", ispAddr)
	h.ip("-n", h.router, "link", "add", "br-lan", "type", "bridge")
	h.ip("-n", h.router, "addr", "add", routerLAN+"/24", "dev", "br-lan")
	h.ip("-n", h.router, "link", "set", "br-lan", "up")
	for i, dev := range []struct{ ns, addr, mac string }{{h.lan, phoneAddr, phoneMAC}, {h.kid, kidAddr, kidMAC}} {
		port := "lan" + strconv.Itoa(i+1)
		h.ip("-n", h.router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", dev.ns)
		h.ip("-n", h.router, "link", "set", port, "master", "br-lan")
		h.ip("-n", h.router, "link", "set", port, "up")
		h.ip("-n", dev.ns, "link", "set", "eth0", "address", dev.mac)
		h.ip("-n", dev.ns, "addr", "add", dev.addr+"/24", "dev", "eth0")
		h.ip("-n", dev.ns, "link", "set", "eth0", "up")
		h.ip("-n", dev.ns, "route", "add", "default", "via", routerLAN)
	}
	h.in(h.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
}

// etc writes /etc/netns/ns/: the given files, hosts, and with roots an ssl/ directory whose
// bundle holds only the test CA (curl and Go read /etc/ssl/certs/ca-certificates.crt).
func (h *home) etc(ns string, files map[string]string, roots bool) {
	dir := filepath.Join("/etc/netns", ns)
	files["hosts"] = "127.0.0.1 localhost\n::1 localhost\n"
	if roots {
		files["ssl/certs/ca-certificates.crt"] = string(h.ca.PEM)
		if b, err := os.ReadFile("/etc/ssl/openssl.cnf"); err == nil {
			files["ssl/openssl.cnf"] = string(b)
		}
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			h.fatalf("%v", err)
		}
	}
}

func hostOf(hostport string) string {
	host, _, _ := net.SplitHostPort(hostport)
	return host
}

// start starts a long-running program and registers it under name (replacing a stopped one).
func (h *home) start(name, ns string, env []string, args ...string) *proc {
	h.t.Helper()
	p, err := startIn(name, ns, env, args...)
	if err != nil {
		h.fatalf("%v", err)
	}
	h.mu.Lock()
	h.procs[name] = p
	h.mu.Unlock()
	return p
}

func (h *home) proc(name string) *proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.procs[name]
}

// startInternet starts what runs in wan: the ISP's DNS (a real dnsmasq), the fake providers,
// a SOCKS5 proxy (microsocks) and example.org.
func (h *home) startInternet() {
	dir := filepath.Join(h.dir, "wan")
	os.MkdirAll(dir, 0o755)
	var conf strings.Builder
	conf.WriteString(`# The ISP's resolver: public addresses of the providers and example.org, and an HTTPS (SVCB)
# record for api.openai.com, the kind that can carry ECH keys or another endpoint.
no-resolv
no-hosts
local=/com/org/ai/
local-ttl=300
listen-address=` + ispDNS + `
bind-interfaces
log-queries
dns-rr=api.openai.com,65,000100
`)
	for _, p := range providers {
		fmt.Fprintf(&conf, "host-record=%s,%s\n", p.host, p.addr)
	}
	fmt.Fprintf(&conf, "host-record=example.org,%s\n", exampleOrg)
	confFile := filepath.Join(dir, "dnsmasq.conf")
	os.WriteFile(confFile, []byte(conf.String()), 0o644)
	h.start("isp-dns", h.wan, nil, "dnsmasq", "--keep-in-foreground", "--conf-file="+confFile,
		"--pid-file=", "--user=root", "--log-facility=-")

	for _, p := range providers {
		h.startProvider(p)
	}
	h.start("socks5", h.wan, nil, "microsocks", "-i", hostOf(socksAddr), "-p", portOf(socksAddr))

	site, err := serveHTTPS(h.wan, exampleOrg+":443", h.leaf("example.org"), "example.org: an ordinary site")
	if err != nil {
		h.fatalf("example.org: %v", err)
	}
	h.addServer(site)
	h.site = site

	if err := h.waitDNS(h.wan, ispDNS, "example.org", exampleOrg); err != nil {
		h.fatalf("ISP DNS: %v", err)
	}
	if err := waitTCP(h.wan, socksAddr, 10*time.Second); err != nil {
		h.fatalf("SOCKS5 proxy: %v\n%s", err, h.proc("socks5").out.String())
	}
}

func portOf(hostport string) string {
	_, port, _ := net.SplitHostPort(hostport)
	return port
}

// startProvider (re)starts provider p's fake with extra flags (faults).
func (h *home) startProvider(p provider, flags ...string) *proc {
	h.t.Helper()
	dir := filepath.Join(h.dir, "pki", p.id)
	args := []string{h.fakeBin, "--listen", p.addr + ":443", "--cert", filepath.Join(dir, "cert.pem"), "--key", filepath.Join(dir, "key.pem")}
	if !p.anyKey {
		args = append(args, "--key-required", p.key)
	}
	args = append(args, flags...)
	pr := h.start("fake-"+p.id, h.wan, nil, args...)
	if err := pr.waitOutput("serving on", 20*time.Second); err != nil {
		h.fatalf("%v", err)
	}
	return pr
}

func (h *home) addServer(s *webServer) {
	h.mu.Lock()
	h.servers = append(h.servers, s)
	h.mu.Unlock()
}

// waitDNS waits until server (queried from ns) answers name with want.
func (h *home) waitDNS(ns, server, name, want string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := runIn(ns, 5*time.Second, nil, "dig", "@"+server, "+short", "+time=1", "+tries=1", name)
		if strings.TrimSpace(r.out) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s with %s within 15s: %s", server, name, want, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// --- cleanup ---

// cleanup stops everything and removes the namespaces and /etc/netns entries. It runs once:
// from t.Cleanup, or from the signal handler when the run is interrupted.
func (h *home) cleanup() {
	h.once.Do(func() {
		h.mu.Lock()
		procs := make([]*proc, 0, len(h.procs))
		for _, p := range h.procs {
			procs = append(procs, p)
		}
		servers := h.servers
		h.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(3 * time.Second) }()
		}
		wg.Wait()
		for _, s := range servers {
			s.Close()
		}
		for _, ns := range h.namespaces() {
			removeNetns(ns)
		}
		os.Remove("/etc/netns") // only when empty: it may hold others' namespaces
		os.RemoveAll(h.dir)
	})
}

// removeNetns kills whatever still runs in ns, then deletes it and its /etc/netns entry.
func removeNetns(ns string) {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
	os.RemoveAll(filepath.Join("/etc/netns", ns))
}

// sweepStale removes what earlier runs left behind when their process is gone (a run killed
// with SIGKILL cannot clean up after itself): namespaces with what still runs in them,
// /etc/netns entries and temporary directories, all named nsPrefix + pid.
func sweepStale(t *testing.T) {
	var names []string
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				names = append(names, f[0])
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), nsPrefix+"*"))
	etc, _ := filepath.Glob(filepath.Join("/etc/netns", nsPrefix+"*"))
	stale := func(name string) bool {
		rest, ok := strings.CutPrefix(filepath.Base(name), nsPrefix)
		if !ok {
			return false
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			return false
		}
		_, err = os.Stat("/proc/" + strconv.Itoa(pid))
		return err != nil // its run is over
	}
	for _, ns := range names {
		if stale(ns) {
			t.Logf("removing namespace %s, left by an earlier run", ns)
			removeNetns(ns)
		}
	}
	for _, d := range append(dirs, etc...) {
		if stale(d) {
			t.Logf("removing %s, left by an earlier run", d)
			os.RemoveAll(d)
		}
	}
	os.Remove("/etc/netns")
}

// --- small HTTPS servers of the test's own, in a namespace ---

// webServer serves one page over HTTPS and remembers who asked.
type webServer struct {
	srv   *http.Server
	mu    sync.Mutex
	peers []string
}

func serveHTTPS(ns, addr string, cert tls.Certificate, page string) (*webServer, error) {
	var ln net.Listener
	if err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, err
	}
	ws := &webServer{}
	ws.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws.mu.Lock()
			ws.peers = append(ws.peers, hostOf(r.RemoteAddr))
			ws.mu.Unlock()
			fmt.Fprintf(w, "%s\n", page)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go ws.srv.ServeTLS(ln, "", "")
	return ws, nil
}

// seen returns the client addresses of the requests so far.
func (ws *webServer) seen() []string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]string(nil), ws.peers...)
}

func (ws *webServer) Close() error { return ws.srv.Close() }

// logs returns every program's output, for a failed test.
func (h *home) logs() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for name, p := range h.procs {
		fmt.Fprintf(&b, "----- %s (pid %d) -----\n%s\n", name, p.pid(), tail(p.out.String(), 60))
	}
	return b.String()
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("… (%d lines before)", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
