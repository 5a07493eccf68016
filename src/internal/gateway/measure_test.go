package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/fakeprovider"
	"github.com/airelay/airelay/src/internal/stats"
)

// Measurements print numbers; they assert nothing about time or memory. Run them with
//
//	AIRELAY_MEASURE=1 go test -run Measure -v ./src/internal/gateway
//
// AIRELAY_MEASURE_STREAMS=n opens n streams instead of 200; AIRELAY_MEASURE_PLAIN=1 puts a
// plain-HTTP provider behind the gateway instead of an HTTPS one.
func skipUnlessMeasuring(t *testing.T) {
	if os.Getenv("AIRELAY_MEASURE") == "" {
		t.Skip("set AIRELAY_MEASURE=1 to measure")
	}
}

// TestMeasureAddedLatency compares small JSON requests sent straight to the fake (HTTPS, HTTP/2,
// kept alive) with the same requests through the gateway (HTTP/1.1 kept alive, then the
// gateway's pooled HTTPS/HTTP/2 connection).
func TestMeasureAddedLatency(t *testing.T) {
	skipUnlessMeasuring(t)
	up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Arrivals = nil })
	e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer"), quiet)
	direct := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: mustCA(t).Pool()}, ForceAttemptHTTP2: true}}
	run := func(url, auth string) []time.Duration {
		const n = 3000
		d := make([]time.Duration, 0, n)
		for i := range n + 200 {
			req, _ := http.NewRequest("POST", url, strings.NewReader(chatBody))
			req.Header.Set("Authorization", auth)
			start := time.Now()
			res, err := (map[bool]*http.Client{true: direct, false: e.client})[strings.HasPrefix(url, "https")].Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if i >= 200 { // warm-up done
				d = append(d, time.Since(start))
			}
		}
		slices.Sort(d)
		return d
	}
	pct := func(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }
	// Interleave rounds so that machine noise hits both alike.
	var dd, gd []time.Duration
	for range 2 {
		dd = append(dd, run(up.URL()+"/v1/chat/completions", "Bearer "+keyOpenAI)...)
		gd = append(gd, run(e.base+"/openai/v1/chat/completions", "Bearer sk-placeholder")...)
	}
	slices.Sort(dd)
	slices.Sort(gd)
	t.Logf("small JSON, %d requests each, GOMAXPROCS=%d", len(dd), runtime.GOMAXPROCS(0))
	t.Logf("direct:       p50 %v  p99 %v", pct(dd, .5), pct(dd, .99))
	t.Logf("via gateway:  p50 %v  p99 %v", pct(gd, .5), pct(gd, .99))
	t.Logf("added:        p50 %v  p99 %v", pct(gd, .5)-pct(dd, .5), pct(gd, .99)-pct(dd, .99))
}

// BenchmarkGatewayJSON and BenchmarkDirectJSON time one small JSON request (the fake, client
// and gateway share the process, so allocations include all three).
func BenchmarkGatewayJSON(b *testing.B) {
	up := startUpstream(b, keyOpenAI, func(f *fakeprovider.Server) { f.Arrivals = nil })
	e := startGateway(b, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer"), quiet)
	benchJSON(b, e.client, e.base+"/openai/v1/chat/completions", "Bearer sk-placeholder")
}

func BenchmarkDirectJSON(b *testing.B) {
	up := startUpstream(b, keyOpenAI, func(f *fakeprovider.Server) { f.Arrivals = nil })
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustCA(b).Pool()}, ForceAttemptHTTP2: true}}
	benchJSON(b, c, up.URL()+"/v1/chat/completions", "Bearer "+keyOpenAI)
}

func benchJSON(b *testing.B, c *http.Client, url, auth string) {
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest("POST", url, strings.NewReader(chatBody))
		req.Header.Set("Authorization", auth)
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatal(res.Status)
		}
	}
}

// TestMeasureStreamsMemory runs the gateway alone in a child process and opens 200 streams
// through it that the fake holds open, then reads the child's RSS and Go heap.
func TestMeasureStreamsMemory(t *testing.T) {
	skipUnlessMeasuring(t)
	streams := 200
	if n, err := strconv.Atoi(os.Getenv("AIRELAY_MEASURE_STREAMS")); err == nil && n > 0 {
		streams = n
	}
	up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}); f.Arrivals = nil })
	upURL := up.URL()
	if os.Getenv("AIRELAY_MEASURE_PLAIN") != "" { // a plain-HTTP provider, as in make bench
		f := fakeprovider.New(keyOpenAI)
		f.Step, f.Arrivals = make(chan struct{}), nil
		plain := httptest.NewServer(f)
		defer plain.Close()
		defer plain.CloseClientConnections()
		upURL = plain.URL
	}
	dir := t.TempDir()
	uci := mainSection() + provider("openai", upURL, keyOpenAI, "bearer")
	os.WriteFile(filepath.Join(dir, "airelay"), []byte(uci), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.pem"), mustCA(t).PEM, 0o600)

	cmd := exec.Command(os.Args[0], "-test.run=^TestGatewayChildProcess$")
	cmd.Env = append(os.Environ(), "AIRELAY_GATEWAY_CHILD="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	readLine := func(prefix string) []string {
		for lines.Scan() {
			if f := strings.Fields(lines.Text()); len(f) > 0 && f[0] == prefix {
				return f[1:]
			}
		}
		t.Fatalf("the child said no %s", prefix)
		return nil
	}
	base := "http://" + readLine("ADDR")[0]
	sample := func(label string) (rss, heap int64) {
		fmt.Fprintln(stdin, "mem")
		f := readLine("MEM")
		heap, _ = strconv.ParseInt(f[0], 10, 64)
		rss = vmRSS(t, cmd.Process.Pid)
		stack, _ := strconv.ParseInt(f[2], 10, 64)
		t.Logf("%-28s RSS %6.1f MiB  heap in use %6.1f MiB  stacks %6.1f MiB  goroutines %s", label, mib(rss), mib(heap), mib(stack), f[1])
		return rss, heap
	}
	// One request first, so that the baseline includes an upstream connection and warm pools.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: streams}}
	res, err := client.Get(base + "/openai/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	rss0, heap0 := sample("idle, one connection used")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var opened atomic.Int64
	errs := make(chan error, streams)
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
			res, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			br := bufio.NewReader(res.Body)
			if _, err := br.ReadString('\n'); err != nil { // the first event is through
				errs <- err
				return
			}
			opened.Add(1)
			<-ctx.Done()
			res.Body.Close()
		}()
	}
	eventually(t, "the streams to open", func() bool { return opened.Load() == int64(streams) || len(errs) > 0 })
	if len(errs) > 0 {
		t.Fatal(<-errs)
	}
	rss1, heap1 := sample(fmt.Sprintf("%d streams open", streams))
	if p := os.Getenv("AIRELAY_MEASURE_HEAP"); p != "" {
		fmt.Fprintln(stdin, "heap "+p)
		readLine("HEAP")
	}
	t.Logf("per open stream: RSS %.1f KiB, heap %.1f KiB", float64(rss1-rss0)/1024/float64(streams), float64(heap1-heap0)/1024/float64(streams))
	cancel()
	wg.Wait()
}

func quiet(o *Options) { o.Log = nil }

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func vmRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skip("no /proc: cannot read RSS")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestGatewayChildProcess is the gateway process of TestMeasureStreamsMemory; it does nothing
// unless that test started it.
func TestGatewayChildProcess(t *testing.T) {
	dir := os.Getenv("AIRELAY_GATEWAY_CHILD")
	if dir == "" {
		t.Skip("only run by TestMeasureStreamsMemory")
	}
	tab, err := config.Load(filepath.Join(dir, "airelay"))
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	debug.SetMemoryLimit(tab.Main.MemoryLimit) // as the daemon runs (memory_limit)
	g := New(Options{Table: func() *config.Table { return tab }, Stats: stats.New(), RootCAs: pool})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	fmt.Println("ADDR", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if p, ok := strings.CutPrefix(in.Text(), "heap "); ok {
			f, err := os.Create(p)
			if err == nil {
				err = pprof.WriteHeapProfile(f)
				f.Close()
			}
			if g, gerr := os.Create(p + ".goroutines"); gerr == nil {
				pprof.Lookup("goroutine").WriteTo(g, 1)
				g.Close()
			}
			fmt.Println("HEAP", err)
			continue
		}
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		fmt.Println("MEM", m.HeapInuse, runtime.NumGoroutine(), m.StackInuse, m.Sys)
	}
	os.Exit(0)
}
