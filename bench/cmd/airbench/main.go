// Command airbench runs airelay side by side with nginx, HAProxy, dnsmasq and a direct
// connection on loopback, against one local fake provider, and writes BENCHMARKS.md, the raw
// numbers as JSON and an SVG chart. `make bench` builds it and runs it; see bench/README.md.
//
//	airbench -airelay build/bench/airelay -dist build/bench/tree/dist [-quick]
//	airbench upstream -plain ADDR -tls ADDR -cert C -key K   (the fake provider; started by airbench)
//
// It reports; it asserts nothing. The programs under test and the fake run on one CPU, the load
// generators (wrk, dnsperf, airbench's own Go clients) on another.
package main

import (
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

type options struct {
	quick   bool
	airelay string
	dist    string
	symbols string
	portkey string
	conf    string
	repo    string
	work    string
	out     string
	md      string
	svg     string
	only    string
	merge   string
}

// params are the sizes of the runs; quick mode shrinks them for iterating, not for publishing.
type params struct {
	Quick        bool    `json:"quick"`
	Rounds       int     `json:"rounds"`
	WarmSeconds  float64 `json:"warmup_seconds"`
	LatSeconds   float64 `json:"latency_run_seconds"`
	RPSSeconds   float64 `json:"rps_run_seconds"`
	Concurrency  []int   `json:"concurrency"`
	Keepalive    int     `json:"nginx_keepalive"`
	TTFERequests int     `json:"ttfe_requests_per_round"`
	Handshakes   int     `json:"handshakes_per_round"`
	Download     int64   `json:"download_bytes"`
	DownloadReps int     `json:"download_reps"`
	Streams      int     `json:"open_streams"`
	StartupRuns  int     `json:"startup_runs"`
	DNSSeconds   float64 `json:"dns_run_seconds"`
	ProxyCPUs    []int   `json:"proxy_cpus"`
	LoadCPUs     []int   `json:"load_cpus"`
}

type env struct {
	o      options
	p      params
	dir    string
	pool   *x509.CertPool
	names  []string // the AI names of the shipped config
	port   map[string]int
	up     *proc
	air    *proc
	ngx    *proc
	hap    *proc
	pk     *proc // Portkey's AI gateway
	res    *Results
	hasNgx bool
	hasHap bool
	hasPK  bool
	wrap   []string // argv put before airelay's (airbench probe -wrap: valgrind, strace)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "upstream" {
		runUpstream(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "size" {
		runSize(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		runProbe(os.Args[2:])
		return
	}
	var o options
	flag.BoolVar(&o.quick, "quick", false, "short runs, for iterating (not for publishing)")
	flag.StringVar(&o.airelay, "airelay", "build/bench/airelay", "the airelay binary under test")
	flag.StringVar(&o.dist, "dist", "build/bench/tree/dist", "where `make cross` and `make ipk` left their files")
	flag.StringVar(&o.symbols, "symbols", "build/bench/airelay-mipsle-symbols", "the mipsle binary with its symbol table (make size-build), for the size by package")
	flag.StringVar(&o.portkey, "portkey", "build/bench/portkey", "where bench/deps.sh installed Portkey's gateway (npm)")
	flag.StringVar(&o.conf, "conf", "bench/conf", "the other programs' config templates")
	flag.StringVar(&o.repo, "repo", ".", "the airelay repository")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new temporary one)")
	flag.StringVar(&o.out, "json", "bench/results.json", "raw results")
	flag.StringVar(&o.md, "md", "BENCHMARKS.md", "the report")
	flag.StringVar(&o.svg, "svg", "bench/chart.svg", "the chart")
	flag.StringVar(&o.merge, "merge", "", "an earlier results.json: the sections run now replace its own, the rest are kept, and the report is written from both (with a note saying which sections come from which run)")
	flag.StringVar(&o.only, "only", "", "comma-separated sections to run (l7,l7tls,l7two,home,lan,relay,memory,startup,dns,footprint); default all")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("airbench: ")

	e := &env{o: o, port: map[string]int{}}
	e.p = paramsFor(o.quick)
	e.pinSelf()
	ctx := make(chan os.Signal, 1)
	signal.Notify(ctx, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx
		log.Print("interrupted: stopping the programs under test")
		stopAll()
		os.Exit(130)
	}()
	err := e.run()
	stopAll()
	if err != nil {
		log.Fatal(err)
	}
}

func paramsFor(quick bool) params {
	p := params{Quick: quick, Rounds: 3, WarmSeconds: 2, LatSeconds: 5, RPSSeconds: 6, Concurrency: []int{8, 32}, Keepalive: 32,
		TTFERequests: 400, Handshakes: 300, Download: 1 << 30, DownloadReps: 3, Streams: 1000, StartupRuns: 31,
		DNSSeconds: 5}
	if quick {
		p.Rounds, p.WarmSeconds, p.LatSeconds, p.RPSSeconds = 1, 1, 2, 3
		p.TTFERequests, p.Handshakes, p.Download, p.DownloadReps = 200, 200, 256<<20, 1
		p.StartupRuns, p.DNSSeconds = 9, 3
	}
	n := onlineCPUs()
	p.ProxyCPUs, p.LoadCPUs = []int{0}, []int{1}
	if n < 2 {
		p.LoadCPUs = []int{0}
	}
	return p
}

// pinSelf moves the harness (and so wrk and dnsperf, which inherit it) onto the load CPUs by
// re-executing itself under taskset, once.
func (e *env) pinSelf() {
	if os.Getenv("AIRBENCH_PINNED") != "" || onlineCPUs() < 2 {
		return
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		log.Print("no taskset: the harness is not pinned")
		return
	}
	os.Setenv("AIRBENCH_PINNED", "1")
	self, _ := os.Executable()
	argv := append([]string{ts, "-c", cpuList(e.p.LoadCPUs), self}, os.Args[1:]...)
	log.Fatal(syscall.Exec(ts, argv, os.Environ()))
}

// onlineCPUs counts the machine's CPUs, not the ones this process may use.
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if ok {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return max(n, 1)
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

func (e *env) want(section string) bool {
	if e.o.only == "" {
		return true
	}
	for _, s := range strings.Split(e.o.only, ",") {
		if s == section {
			return true
		}
	}
	return false
}

func (e *env) run() error {
	began := time.Now()
	nofile := raiseNofile()
	e.res = &Results{Params: e.p, Durations: map[string]float64{}}
	e.res.Machine = machineInfo(e.o.repo)
	e.res.Machine.NoFile = nofile
	e.res.Machine.HarnessCPUs = cpusAllowed(os.Getpid())
	e.res.Machine.LoadavgBefore = loadavg()
	log.Printf("machine: %s, %d CPUs, kernel %s, load %s, harness on CPUs %s",
		e.res.Machine.CPUModel, e.res.Machine.CPUs, e.res.Machine.Kernel, e.res.Machine.LoadavgBefore, e.res.Machine.HarnessCPUs)

	cleanup, err := e.prepare()
	if err != nil {
		return err
	}
	defer cleanup()

	// Every section but the footprint runs programs.
	if e.o.only != "footprint" {
		if err := e.startCommon(); err != nil {
			return err
		}
		e.res.Memory = &MemorySection{}
		e.idleMemory()
	}

	sections := []struct {
		name string
		fn   func() error
	}{
		{"l7", e.runL7Plain},
		{"l7tls", e.runL7TLS},
		{"relay", e.runRelay},
		{"memory", e.runMemory},
		{"l7two", e.runL7Two},
		{"home", e.runHome},
		{"lan", e.runLAN},
		{"startup", e.runStartup},
		{"dns", e.runDNS},
		{"footprint", e.runFootprint},
	}
	for _, s := range sections {
		if !e.want(s.name) {
			continue
		}
		if s.name == "l7two" && e.p.Quick {
			e.note("quick mode: the GOMAXPROCS=2 / 2 nginx workers run was skipped")
			continue
		}
		t0 := time.Now()
		log.Printf("== %s", s.name)
		if err := s.fn(); err != nil {
			log.Printf("%s failed: %v", s.name, err)
			e.note(fmt.Sprintf("section %s failed: %v", s.name, err))
		}
		e.res.Durations[s.name] = time.Since(t0).Seconds()
	}
	stopAll()
	e.res.Machine.LoadavgAfter = loadavg()
	e.res.Durations["total"] = time.Since(began).Seconds()
	log.Printf("done in %.0fs, load %s", time.Since(began).Seconds(), e.res.Machine.LoadavgAfter)
	if e.o.merge != "" {
		if err := e.mergeInto(e.o.merge); err != nil {
			return err
		}
	}
	return e.write()
}

// mergeInto makes e.res the results in path with the sections run now put in place of theirs.
func (e *env) mergeInto(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var prev Results
	if err := json.Unmarshal(b, &prev); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	now := e.res
	var ran []string
	for _, s := range []struct {
		name string
		set  func()
	}{
		{"l7", func() { prev.L7 = now.L7 }},
		{"l7tls", func() { prev.L7TLS = now.L7TLS }},
		{"l7two", func() { prev.L7Two = now.L7Two }},
		{"home", func() { prev.Home = now.Home }},
		{"relay", func() { prev.Relay = now.Relay }},
		{"memory", func() { prev.Memory = now.Memory }},
		{"startup", func() { prev.Startup = now.Startup }},
		{"dns", func() { prev.DNS = now.DNS }},
		{"footprint", func() { prev.Footprint = now.Footprint }},
	} {
		if _, ok := now.Durations[s.name]; ok {
			s.set()
			prev.Durations[s.name] = now.Durations[s.name]
			ran = append(ran, s.name)
		}
	}
	m := now.Machine
	mode := ""
	if now.Params.Quick {
		mode = " in quick mode"
	}
	prev.Notes = append(prev.Notes, now.Notes...)
	prev.Notes = append(prev.Notes, fmt.Sprintf("Merged: %s measured again%s on %s at commit `%.12s` (`%s`), load %s before and %s after, and put in place of this run's; everything else is from the run dated above.",
		strings.Join(ran, ", "), mode, m.Date, m.Commit, m.Describe, m.LoadavgBefore, m.LoadavgAfter))
	for k, v := range m.Versions {
		if _, ok := prev.Machine.Versions[k]; !ok {
			prev.Machine.Versions[k] = v
		}
	}
	e.res = &prev
	return nil
}

// prepare makes the scratch directory, the certificates and the ports, and finds the programs
// installed; the returned func removes the directory.
func (e *env) prepare() (func(), error) {
	cleanup := func() {}
	dir := e.o.work
	if dir == "" {
		d, err := os.MkdirTemp("", "airbench-")
		if err != nil {
			return cleanup, err
		}
		dir = d
		cleanup = func() { os.RemoveAll(d) }
	}
	e.dir = dir
	for _, d := range []string{"nginx-tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	pool, err := writeCerts(dir)
	if err != nil {
		return cleanup, err
	}
	e.pool = pool
	_, e.hasNgx = lookPath("nginx")
	_, e.hasHap = lookPath("haproxy")
	if !e.hasNgx {
		e.note("nginx is not installed: its columns are empty")
	}
	if !e.hasHap {
		e.note("haproxy is not installed: its columns are empty")
	}
	if e.hasPK = portkeyVersion(e.o.portkey) != ""; e.hasPK {
		e.res.Machine.Versions["portkey"] = "Portkey AI gateway " + portkeyVersion(e.o.portkey) + " (npm), Node.js " + nodeVersion()
	} else {
		e.note("Portkey's gateway is not installed in " + e.o.portkey + " (bench/deps.sh installs it as root): its columns are empty")
	}
	for _, k := range []string{"plain", "plain32", "s_plain", "tls", "air_http", "air_tls", "air_dns", "air_status", "ngx_http", "ngx_relay",
		"hap_relay", "dnsmasq", "s_air_http", "s_air_tls", "s_air_dns", "s_air_status", "s_ngx_http", "s_ngx_relay", "pk_http", "s_pk_http"} {
		e.port[k] = freePort()
	}
	if e.names, err = shippedNames(filepath.Join(e.o.repo, "files/airelay.config")); err != nil {
		return cleanup, err
	}
	return cleanup, nil
}

func (e *env) note(s string) {
	e.res.Notes = append(e.res.Notes, s)
}

func lookPath(name string) (string, bool) {
	p, err := exec.LookPath(name)
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				return filepath.Join(d, name), true
			}
		}
		return "", false
	}
	return p, true
}

// freePort returns a port free for TCP and UDP on 127.0.0.1, below the kernel's ephemeral
// range: a port taken from that range can be handed to one of the bench's own outgoing
// connections (a thousand of them in the memory runs) before the program that is to listen on
// it starts, and that program then fails with "address in use".
func freePort() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 {
				lo = n
			}
		}
	}
	base := lo / 2
	for i := 0; i < lo-base; i++ {
		p := base + (nextPort+i)%(lo-base)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		nextPort += i + 1
		return p
	}
	log.Fatal("no free port below the ephemeral range")
	return 0
}

// nextPort spreads the bench's ports from a random start, so that two runs do not collide.
var nextPort = int(time.Now().UnixNano() % 8192)

func (e *env) addr(k string) string { return fmt.Sprintf("127.0.0.1:%d", e.port[k]) }

// startCommon starts the fake provider and the long-running programs under test.
// restartProxies stops airelay, nginx and HAProxy and starts them again on the same ports, warmed
// with one request each: every memory scenario then starts from the same idle process instead
// of from whatever the previous scenario left in its heap.
func (e *env) restartProxies() error {
	e.air.stop()
	e.ngx.stop()
	e.hap.stop()
	e.pk.stop()
	e.air, e.ngx, e.hap, e.pk = nil, nil, nil, nil
	if err := e.startProxies(); err != nil {
		return err
	}
	e.warm()
	time.Sleep(time.Second)
	return nil
}

func (e *env) startCommon() error {
	if err := e.startFake(); err != nil {
		return err
	}
	return e.startProxies()
}

// startFake starts the fake provider.
func (e *env) startFake() error {
	up, err := start(e.dir, "upstream", e.p.ProxyCPUs, []string{"GOMAXPROCS=1"}, mustSelf(), "upstream",
		"-plain", e.addr("plain")+","+e.addr("plain32")+","+e.addr("s_plain"), "-tls", e.addr("tls"),
		"-cert", filepath.Join(e.dir, "cert.pem"), "-key", filepath.Join(e.dir, "key.pem"))
	if err != nil {
		return err
	}
	e.up = up
	if err := waitTCP(up, e.addr("plain"), 10*time.Second); err != nil {
		return err
	}
	return waitTCP(up, e.addr("tls"), 10*time.Second)
}

func (e *env) startProxies() error {
	var err error
	if e.air, err = e.startAirelay("airelay", "", 1, e.p.ProxyCPUs); err != nil {
		return err
	}
	if e.hasNgx {
		if e.ngx, err = e.startNginx("nginx", "", 1, e.p.ProxyCPUs); err != nil {
			return err
		}
	}
	if e.hasHap {
		if e.hap, err = e.startHAProxy(); err != nil {
			return err
		}
	}
	if e.hasPK {
		if e.pk, err = e.startPortkey("portkey", "pk_http"); err != nil {
			return err
		}
	}
	return nil
}

func mustSelf() string {
	p, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	return p
}

// --- airelay ---

var optionLine = regexp.MustCompile(`^\s*option\s+(\S+)\s+`)

// airelayConfig is the shipped files/airelay.config with the listeners moved to the bench's
// ports, lan_ipv4 set (so DNS answers A) and the provider 'openai' pointed at the fake over
// HTTPS (relay, and the gateway's /openai-tls), max_conns_per_device at max_conns (every
// bench client is 127.0.0.1), plus providers 'bench' at /openai and 'bench32'
// at /openai32 whose upstreams are two of the fake's plain HTTP ports. Everything else (memory_limit, log_level, the other
// providers) is as shipped.
// extra is appended as it is (more sections).
func (e *env) airelayConfig(prefix, extra string) (string, error) {
	b, err := os.ReadFile(filepath.Join(e.o.repo, "files/airelay.config"))
	if err != nil {
		return "", err
	}
	set := map[string]string{
		"lan_ipv4":      "192.168.1.1",
		"dns_listen":    e.addr(prefix + "air_dns"),
		"tls_listen":    e.addr(prefix + "air_tls"),
		"http_listen":   e.addr(prefix + "air_http"),
		"status_listen": e.addr(prefix + "air_status"),
		"tls_fallback":  "",
		// Every bench client is one device (127.0.0.1): the memory and event runs hold 1000
		// streams, past the shipped max_conns_per_device.
		"max_conns_per_device": "1024",
	}
	var out []string
	section := ""
	flush := func() {
		if section == "main" {
			keys := make([]string, 0, len(set))
			for k := range set {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, fmt.Sprintf("\toption %s '%s'", k, set[k]))
			}
			set = nil
		}
		if section == "openai" {
			out = append(out, "\toption connect '"+e.addr("tls")+"'", "\toption api_key '"+benchKey+"'")
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "config ") {
			flush()
			section = strings.Trim(strings.Fields(l + " x x")[2], "'\"")
		}
		if m := optionLine.FindStringSubmatch(l); m != nil {
			if _, ok := set[m[1]]; ok && section == "main" {
				continue
			}
			if section == "openai" && m[1] == "prefix" {
				l = "\toption prefix '/openai-tls'"
			}
		}
		if strings.TrimSpace(l) == "" && section != "" {
			flush()
			section = ""
		}
		out = append(out, l)
	}
	flush()
	out = append(out, "", "config provider 'bench'",
		"\toption upstream 'http://"+e.addr(prefix+"plain")+"'",
		"\toption prefix '/openai'",
		"\toption api_key '"+benchKey+"'",
		"", "config provider 'bench32'",
		"\toption upstream 'http://"+e.addr("plain32")+"'",
		"\toption prefix '/openai32'",
		"\toption api_key '"+benchKey+"'", "")
	return strings.Join(out, "\n") + extra, nil
}

// startAirelay starts airelay with the bench config; prefix "s_" selects the startup ports.
func (e *env) startAirelay(name, prefix string, procs int, cpus []int) (*proc, error) {
	return e.startAirelayWith(name, prefix, "", procs, cpus)
}

// startAirelayWith is startAirelay with extra config sections.
func (e *env) startAirelayWith(name, prefix, extra string, procs int, cpus []int) (*proc, error) {
	cfg, err := e.airelayConfig(prefix, extra)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.dir, name+".uci")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(e.o.airelay)
	// The fake's leaf is signed by the bench CA: Go reads extra roots from SSL_CERT_FILE.
	// gctrace: a line per GC cycle in the log, counted by streamEvents; GOTRACEBACK=all: a
	// SIGQUIT prints every goroutine (streamEvents counts them). Neither costs anything between.
	argv := append(append([]string{}, e.wrap...), abs, "run", "--config", path)
	wait := 10 * time.Second
	if len(e.wrap) > 0 {
		wait = 2 * time.Minute // under valgrind
	}
	p, err := start(e.dir, name, cpus, []string{"GOMAXPROCS=" + strconv.Itoa(procs), "SSL_CERT_FILE=" + filepath.Join(e.dir, "ca.pem"),
		"GODEBUG=gctrace=1", "GOTRACEBACK=all"}, argv...)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(p, e.addr(prefix+"air_http"), wait); err != nil {
		p.stop()
		return nil, err
	}
	if err := waitTCP(p, e.addr(prefix+"air_tls"), wait); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// --- nginx, HAProxy, dnsmasq ---

func (e *env) render(tmplName, outName string, data any) (string, error) {
	t, err := template.ParseFiles(filepath.Join(e.o.conf, tmplName))
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.dir, outName)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return path, t.Execute(f, data)
}

func streamModule() string {
	for _, p := range []string{"/usr/lib/nginx/modules/ngx_stream_module.so", "/usr/share/nginx/modules/ngx_stream_module.so"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/usr/lib/nginx/modules/ngx_stream_module.so"
}

// nginxConf writes nginx's config; prefix "s_" selects the second set of ports.
func (e *env) nginxConf(name, prefix string, workers int) (string, error) {
	return e.render("nginx.conf.tmpl", name+".conf", map[string]any{
		"Name": name, "StreamModule": streamModule(), "Workers": workers, "Dir": e.dir, "Key": benchKey,
		"Keepalive": e.p.Keepalive, "PlainPort": e.port[prefix+"plain"], "Plain32Port": e.port["plain32"],
		"TLSPort": e.port["tls"], "HTTPPort": e.port[prefix+"ngx_http"], "RelayPort": e.port[prefix+"ngx_relay"],
	})
}

func (e *env) startNginx(name, prefix string, workers int, cpus []int) (*proc, error) {
	bin, _ := lookPath("nginx")
	conf, err := e.nginxConf(name, prefix, workers)
	if err != nil {
		return nil, err
	}
	p, err := start(e.dir, name, cpus, nil, bin, "-p", e.dir, "-c", conf)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(p, e.addr(prefix+"ngx_http"), 10*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (e *env) startHAProxy() (*proc, error) {
	bin, _ := lookPath("haproxy")
	conf, err := e.render("haproxy.cfg.tmpl", "haproxy.cfg", map[string]any{
		"RelayPort": e.port["hap_relay"], "TLSPort": e.port["tls"],
	})
	if err != nil {
		return nil, err
	}
	p, err := start(e.dir, "haproxy", e.p.ProxyCPUs, nil, bin, "-db", "-f", conf)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(p, e.addr("hap_relay"), 10*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// shippedNames are the exact host names of the shipped config (what DNS intercepts).
func shippedNames(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`(?m)^\s*list\s+host\s+'([^'*]+)'`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no list host lines", path)
	}
	return names, nil
}

func (e *env) write() error {
	b, err := json.MarshalIndent(e.res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.o.out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(e.o.svg, []byte(chart(e.res)), 0o644); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(e.o.md), e.o.svg)
	if err != nil {
		rel = e.o.svg
	}
	if err := os.WriteFile(e.o.md, []byte(report(e.res, rel)), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s, %s, %s", e.o.md, e.o.out, e.o.svg)
	return nil
}
