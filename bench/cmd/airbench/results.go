package main

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Results is everything one run measured; bench/results.json is this, indented.
type Results struct {
	Machine   Machine            `json:"machine"`
	Params    params             `json:"params"`
	L7        *L7Section         `json:"l7_plain_upstream,omitempty"`
	L7TLS     *L7Section         `json:"l7_https_upstream,omitempty"`
	L7Two     *L7Section         `json:"l7_two_cpus,omitempty"`
	Home      *HomeSection       `json:"home_controls,omitempty"`
	LAN       *LANSection        `json:"lan_device,omitempty"`
	Relay     *RelaySection      `json:"relay,omitempty"`
	Memory    *MemorySection     `json:"memory,omitempty"`
	Startup   *StartupSection    `json:"startup,omitempty"`
	DNS       *DNSSection        `json:"dns,omitempty"`
	Footprint *FootprintSection  `json:"footprint,omitempty"`
	Durations map[string]float64 `json:"section_seconds"`
	Notes     []string           `json:"notes,omitempty"`
}

type Machine struct {
	Date          string            `json:"date"`
	CPUModel      string            `json:"cpu_model"`
	CPUs          int               `json:"cpus"`
	MemTotal      string            `json:"mem_total"`
	Kernel        string            `json:"kernel"`
	OS            string            `json:"os"`
	Commit        string            `json:"commit"`
	Describe      string            `json:"describe"`
	DirtyFiles    []string          `json:"dirty_files,omitempty"`
	Go            string            `json:"go"`
	Versions      map[string]string `json:"versions"`
	NoFile        uint64            `json:"nofile_limit"`
	HarnessCPUs   string            `json:"harness_cpus"`
	LoadavgBefore string            `json:"loadavg_before"`
	LoadavgAfter  string            `json:"loadavg_after"`
}

// L7Row is one target of the gateway comparison. Latencies are in microseconds.
type L7Row struct {
	Target string `json:"target"`
	Note   string `json:"note,omitempty"`
	// Small JSON, one connection, one request at a time (wrk -c1): median over rounds of each
	// round's percentile.
	LatP50 float64 `json:"json_p50_us"`
	LatP99 float64 `json:"json_p99_us"`
	// SSE: time from sending the request to the first event, airbench's Go client, kept alive;
	// percentiles over every request of every round.
	TTFEP50 float64 `json:"sse_ttfe_p50_us,omitempty"`
	TTFEP99 float64 `json:"sse_ttfe_p99_us,omitempty"`
	// Throughput runs at fixed concurrency (wrk -cN).
	Load   []*LoadPoint `json:"load"`
	Errors int64        `json:"errors"`
}

// LoadPoint is a target under wrk -cN: medians over rounds.
type LoadPoint struct {
	Conc      int       `json:"concurrency"`
	RPS       float64   `json:"rps"`
	RPSRounds []float64 `json:"rps_rounds"`
	P50       float64   `json:"p50_us"`
	P99       float64   `json:"p99_us"`
	// CPU seconds (utime+stime from /proc/PID/stat, the process and its children) per 10,000
	// requests: the proxy's, and the fake provider's.
	CPUPer10k         float64   `json:"proxy_cpu_s_per_10k"`
	CPURounds         []float64 `json:"proxy_cpu_s_per_10k_rounds"`
	UpstreamCPUPer10k float64   `json:"upstream_cpu_s_per_10k"`
	// Connections the fake provider accepted per 10,000 requests (0: all kept alive).
	UpConnsPer10k float64 `json:"upstream_conns_per_10k"`
	Requests      int64   `json:"requests"`
	Errors        int64   `json:"errors"`
}

func (r *L7Row) at(conc int) *LoadPoint {
	for _, l := range r.Load {
		if l.Conc == conc {
			return l
		}
	}
	return nil
}

type L7Section struct {
	Title string   `json:"title"`
	Rows  []*L7Row `json:"rows"`
}

type RelayRow struct {
	Target       string    `json:"target"`
	HandshakeP50 float64   `json:"handshake_p50_us"`
	HandshakeP99 float64   `json:"handshake_p99_us"`
	HandshakeAvg float64   `json:"handshake_mean_us"`
	Handshakes   int       `json:"handshakes"`
	MiBps        float64   `json:"download_mib_per_s"`
	MiBpsReps    []float64 `json:"download_mib_per_s_reps"`
	CPUPerGiB    float64   `json:"relay_cpu_s_per_gib"`
	Errors       int       `json:"errors"`
}

// LANSection is new connections to one airelay from the router's own address and from a
// device in the kernel's neighbour table, each decided on the MAC the kernel holds now.
type LANSection struct {
	Rows []*LANRow `json:"rows"`
}

type LANRow struct {
	From         string  `json:"from"`
	HandshakeP50 float64 `json:"relay_handshake_p50_us"`
	HandshakeP99 float64 `json:"relay_handshake_p99_us"`
	Handshakes   int     `json:"handshakes"`
	GatewayP50   float64 `json:"gateway_new_conn_p50_us"`
	GatewayP99   float64 `json:"gateway_new_conn_p99_us"`
	Requests     int     `json:"gateway_requests"`
	Errors       int     `json:"errors"`
}

// HomeSection is airelay as shipped beside airelay with every bench device under a schedule
// and daily quotas that never run out, in the same run (issue 16's hot-path cost).
type HomeSection struct {
	L7    *L7Section  `json:"gateway"`
	Relay []*RelayRow `json:"relay_handshakes"`
}

type RelaySection struct {
	Rows []*RelayRow `json:"rows"`
}

type MemRow struct {
	Program string `json:"program"`
	What    string `json:"what"`
	Before  mem    `json:"before"`
	Loaded  mem    `json:"loaded"`
	Opened  int    `json:"opened"`
	Errors  int    `json:"errors"`
	Note    string `json:"note,omitempty"`
}

// EventRow is CPU per streamed event with n streams open, each getting an event every tick.
type EventRow struct {
	Program    string  `json:"program"`
	Streams    int     `json:"streams"`
	Tick       string  `json:"tick"`
	Events     int64   `json:"events"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	USPerEvent float64 `json:"cpu_us_per_event"`
	Upstream   string  `json:"upstream,omitempty"` // "https": the provider over HTTPS (the fake's TLS port); "": plain HTTP
	GCs        int     `json:"gc_cycles"`          // airelay: GC cycles in the window (GODEBUG=gctrace=1); -1 unknown
	Goroutines int     `json:"goroutines"`         // airelay: goroutines with the streams open (SIGQUIT dump); -1 unknown
	Errors     int     `json:"errors"`
}

type MemorySection struct {
	Idle      map[string]mem `json:"idle"`
	IdleNote  string         `json:"idle_note"`
	Streams   []*MemRow      `json:"gateway_streams"`
	Events    []*EventRow    `json:"stream_events,omitempty"`
	RelayConn []*MemRow      `json:"relay_connections"`
	AfterLoad map[string]mem `json:"after_benchmarks,omitempty"`
}

type StartupRow struct {
	Program  string    `json:"program"`
	MedianMs float64   `json:"median_ms"`
	MinMs    float64   `json:"min_ms"`
	P90Ms    float64   `json:"p90_ms"`
	ReadyMs  float64   `json:"ready_log_median_ms,omitempty"`
	Runs     []float64 `json:"runs_ms"`
	Errors   int       `json:"errors"`
}

type StartupSection struct {
	Rows []*StartupRow `json:"rows"`
}

type DNSRow struct {
	Program      string    `json:"program"`
	QPS          float64   `json:"qps"`
	QPSRounds    []float64 `json:"qps_rounds"`
	AvgLatencyUs float64   `json:"avg_latency_loaded_us"`
	LatencyUs    float64   `json:"avg_latency_one_outstanding_us"`
	StdDevUs     float64   `json:"latency_stddev_one_outstanding_us"`
	Lost         int64     `json:"lost"`
	CPUPer100k   float64   `json:"cpu_s_per_100k_queries"`
}

type DNSSection struct {
	Names int       `json:"names"`
	Rows  []*DNSRow `json:"rows"`
}

type FileSize struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	Note  string `json:"note,omitempty"`
}

type FootprintSection struct {
	Binaries  []FileSize `json:"airelay_binaries"`
	IPKs      []FileSize `json:"ipks"`
	Reference []FileSize `json:"reference_debian_amd64"`
	// Packages: the mipsle binary by Go package (airbench size).
	Packages *SizeTable `json:"mipsle_by_package,omitempty"`
}

func machineInfo(repo string) Machine {
	m := Machine{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), CPUs: onlineCPUs(), Go: runtime.Version(),
		Versions: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if v := kbField("/proc/meminfo", "MemTotal:"); v > 0 {
		m.MemTotal = strings.TrimSpace(strings.TrimSuffix(fmtMiB(float64(v)), " MiB")) + " MiB"
	}
	benchOutput := map[string]bool{"BENCHMARKS.md": true, "bench/results.json": true, "bench/chart.svg": true}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	m.Commit = git("rev-parse", "HEAD")
	m.Describe = git("describe", "--tags", "--always")
	for _, l := range strings.Split(git("status", "--porcelain", "--untracked-files=no"), "\n") {
		l = strings.TrimSpace(l)
		if f := strings.Fields(l); len(f) < 2 || benchOutput[f[len(f)-1]] {
			continue // the bench's own output from an earlier run says nothing about the code
		}
		m.DirtyFiles = append(m.DirtyFiles, l)
	}
	if len(m.DirtyFiles) > 0 {
		m.Describe += "-dirty"
	}
	slices.Sort(m.DirtyFiles)
	ver := func(name string, argv ...string) {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimSpace(l); l != "" && strings.Contains(strings.ToLower(l), "version") {
				m.Versions[name] = l
				return
			}
		}
	}
	if p, ok := lookPath("nginx"); ok {
		ver("nginx", p, "-v")
	}
	if p, ok := lookPath("haproxy"); ok {
		ver("haproxy", p, "-v")
	}
	if p, ok := lookPath("dnsmasq"); ok {
		ver("dnsmasq", p, "--version")
	}
	if p, ok := lookPath("wrk"); ok {
		out, _ := exec.Command(p, "-v").CombinedOutput()
		m.Versions["wrk"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if p, ok := lookPath("dnsperf"); ok {
		ver("dnsperf", p, "-h")
	}
	return m
}
