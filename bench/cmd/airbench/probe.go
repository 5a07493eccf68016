package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// `airbench probe`: one program under one steady load, and what it costs per unit of work, for
// finding where the CPU goes (bench/PROFILE.md) on a machine too busy for timings:
//
//	airbench probe -what events -n 10 -tick 1ms -secs 5
//	airbench probe -what requests -count 20000 -c 32 -target nginx
//	airbench probe -what handshakes -count 300 -target nginx
//
// The load is SSE events (-what events: n streams through the gateway, the fake sending one
// event per stream per tick), small JSON requests (-what requests: count of them from c
// kept-alive connections, as wrk sends them in the l7 section) or relay handshakes (-what
// handshakes: full TLS handshakes one after another through the relay). Over the window it reads, per event or handshake, the CPU
// time (/proc) and the voluntary and involuntary context switches of all its threads, and with
// perf the system calls by kind, the ones that returned EAGAIN and the scheduler's switches.
// -strace takes strace -c's table instead of perf's counts (and slows the program); -record FILE
// adds a perf record -g of the window (perf report -i FILE); -wrap 'valgrind --tool=callgrind …'
// runs airelay under it, its counts zeroed before the window and dumped after.
func runProbe(args []string) {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	var o options
	what := fs.String("what", "events", "events, requests or handshakes")
	target := fs.String("target", "airelay", "airelay, nginx, haproxy (handshakes) or portkey (events)")
	n := fs.Int("n", 10, "events: open streams")
	tick := fs.Duration("tick", time.Millisecond, "events: an event per stream every tick")
	secs := fs.Float64("secs", 5, "the measured window, seconds")
	count := fs.Int("count", 300, "handshakes, requests: how many in the window (it ends when they are done)")
	conc := fs.Int("c", 8, "requests: kept-alive connections sending them")
	path := fs.String("path", "/openai/v1", "events, requests: the gateway's prefix (/openai-tls/v1: the provider over HTTPS)")
	wrap := fs.String("wrap", "", "command line put before airelay's (e.g. 'valgrind --tool=callgrind --callgrind-out-file=cg.out')")
	record := fs.String("record", "", "perf record -g of the window into this file")
	straceC := fs.Bool("strace", false, "strace -c -f over the window (slows the program) instead of perf stat")
	fs.StringVar(&o.airelay, "airelay", "build/bench/airelay", "the airelay binary")
	fs.StringVar(&o.conf, "conf", "bench/conf", "the other programs' config templates")
	fs.StringVar(&o.repo, "repo", ".", "the airelay repository")
	fs.StringVar(&o.portkey, "portkey", "build/bench/portkey", "Portkey's gateway (bench/deps.sh)")
	fs.StringVar(&o.work, "work", "", "scratch directory (default: a new temporary one)")
	fs.Parse(args)
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("airbench probe: ")

	e := &env{o: o, port: map[string]int{}, p: paramsFor(true)}
	e.res = &Results{Machine: Machine{Versions: map[string]string{}}, Durations: map[string]float64{}}
	if *wrap != "" {
		e.wrap = strings.Fields(*wrap)
	}
	raiseNofile()
	cleanup, err := e.prepare()
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	defer stopAll()
	if err := e.startFake(); err != nil {
		log.Fatal(err)
	}
	var p *proc
	switch *target {
	case "airelay":
		p, err = e.startAirelay("airelay", "", 1, e.p.ProxyCPUs)
		e.air = p
	case "nginx":
		p, err = e.startNginx("nginx", "", 1, e.p.ProxyCPUs)
		e.ngx = p
	case "haproxy":
		p, err = e.startHAProxy()
		e.hap = p
	case "portkey":
		p, err = e.startPortkey("portkey", "pk_http")
		e.pk = p
	default:
		err = fmt.Errorf("unknown -target %q", *target)
	}
	if err != nil {
		log.Fatal(err)
	}
	window := time.Duration(*secs * float64(time.Second))
	var units int64
	var took time.Duration
	callgrind := strings.Contains(*wrap, "callgrind")
	measure := func(work func()) probeCounts {
		if callgrind { // count the window's instructions only: zero before, dump after
			run := func(arg string) {
				if out, err := exec.Command("callgrind_control", arg, strconv.Itoa(p.pid())).CombinedOutput(); err != nil {
					log.Printf("callgrind_control %s: %v %s", arg, err, out)
				}
			}
			run("-z")
			defer run("-d")
		}
		return probeWindow(p.pid(), *straceC, *record, window, work)
	}
	var c probeCounts
	switch *what {
	case "events":
		_, base, hdr := e.gatewayOf(*target, *path)
		var events atomic.Int64
		stop := openStreams(base, hdr(tick.String()), *n, *tick, &events)
		defer stop()
		time.Sleep(time.Second)
		c = measure(func() {
			ev0, t0 := events.Load(), time.Now()
			time.Sleep(window)
			units, took = events.Load()-ev0, time.Since(t0)
		})
	case "requests":
		_, base, hdr := e.gatewayOf(*target, *path)
		send := requestSender(base, hdr(""), *conc)
		send(200) // warm: every connection open
		c = measure(func() {
			t0 := time.Now()
			units = send(*count)
			took = time.Since(t0)
		})
	case "handshakes":
		var addr string
		for _, t := range e.relayTargets() {
			if t.proxy == p {
				addr = t.addr
			}
		}
		if addr == "" {
			log.Fatalf("-target %s has no relay", *target)
		}
		cfg := e.tlsConfig()
		for range 20 { // warm
			if tc, _, err := handshake(addr, cfg); err == nil {
				tc.Close()
			}
		}
		window = 0 // the handshakes' own time
		c = measure(func() {
			t0 := time.Now()
			for range *count {
				if tc, _, err := handshake(addr, cfg); err == nil {
					tc.Close()
					units++
				}
			}
			took = time.Since(t0)
		})
	default:
		log.Fatalf("unknown -what %q", *what)
	}
	c.print(os.Stdout, *target, *what, units, took)
}

// requestSender returns a function that sends n small JSON chat requests (not streamed)
// through base from c kept-alive connections and returns how many got a 200.
func requestSender(base string, hdr []string, c int) func(n int) int64 {
	tr := &http.Transport{MaxIdleConnsPerHost: c, DisableCompression: true}
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	body := strings.Replace(chatStreamBody, `"stream":true`, `"stream":false`, 1)
	return func(n int) int64 {
		var next, ok atomic.Int64
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					req, _ := http.NewRequest("POST", base+"/chat/completions", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					setHeaders(req.Header, hdr)
					res, err := cl.Do(req)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode == 200 {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return ok.Load()
	}
}

// probeCounts is what one window cost.
type probeCounts struct {
	cpu              float64          // seconds
	vol, invol       int64            // context switches
	perf             map[string]int64 // perf stat's counts
	strace, recorded string
}

// threadSwitches sums voluntary and involuntary context switches over the threads of pid and
// its children (nginx's workers).
func threadSwitches(pid int) (vol, invol int64) {
	var tasks []string
	for _, p := range treePIDs(pid) {
		t, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", p))
		tasks = append(tasks, t...)
	}
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				vol += n
			} else if v, ok := strings.CutPrefix(l, "nonvoluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				invol += n
			}
		}
	}
	return vol, invol
}

// perfEvents are the tracepoints perf stat counts: every system call, the ones the paths use,
// reads and receives that returned EAGAIN, and the scheduler's switches.
var perfEvents = []string{"raw_syscalls:sys_enter", "syscalls:sys_enter_read", "syscalls:sys_enter_write",
	"syscalls:sys_enter_writev", "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendto",
	"syscalls:sys_enter_epoll_pwait", "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_futex", "syscalls:sys_enter_nanosleep",
	"syscalls:sys_enter_accept4", "syscalls:sys_enter_connect", "syscalls:sys_enter_socket",
	"syscalls:sys_enter_setsockopt", "syscalls:sys_enter_getsockopt", "syscalls:sys_enter_epoll_ctl",
	"syscalls:sys_enter_close", "syscalls:sys_enter_splice", "syscalls:sys_enter_pipe2", "syscalls:sys_enter_getsockname",
	"syscalls:sys_enter_tgkill", "syscalls:sys_enter_madvise", "sched:sched_switch"}

// probeWindow runs work while counting what pid does.
func probeWindow(pid int, useStrace bool, record string, window time.Duration, work func()) probeCounts {
	var c probeCounts
	var wg sync.WaitGroup
	var tools []*exec.Cmd
	var out []*bytes.Buffer
	add := func(argv ...string) *bytes.Buffer {
		cmd := exec.Command(argv[0], argv[1:]...)
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		if err := cmd.Start(); err != nil {
			log.Printf("%s: %v", argv[0], err)
			return &b
		}
		tools = append(tools, cmd)
		out = append(out, &b)
		return &b
	}
	var pids []string
	for _, p := range treePIDs(pid) {
		pids = append(pids, strconv.Itoa(p))
	}
	pidS := strings.Join(pids, ",")
	var perfOut, straceOut, recOut *bytes.Buffer
	if _, ok := lookPath("perf"); ok && !useStrace && record == "" { // counting would weigh on the profile
		args := []string{"perf", "stat", "-x", ",", "-p", pidS}
		for _, ev := range perfEvents {
			args = append(args, "-e", ev)
		}
		args = append(args, "-e", "raw_syscalls:sys_exit", "--filter", "ret == -11")
		perfOut = add(args...)
	}
	if useStrace {
		args := []string{"strace", "-c", "-f"}
		for _, p := range pids {
			args = append(args, "-p", p)
		}
		straceOut = add(args...)
	}
	if record != "" {
		recOut = add("perf", "record", "-e", "cpu-clock", "-F", "4999", "-g", "-p", pidS, "-o", record)
	}
	time.Sleep(300 * time.Millisecond) // attached
	cpu0 := cpuSeconds(pid)
	v0, i0 := threadSwitches(pid)
	work()
	c.cpu = cpuSeconds(pid) - cpu0
	v1, i1 := threadSwitches(pid)
	c.vol, c.invol = v1-v0, i1-i0
	for _, t := range tools {
		t.Process.Signal(syscall.SIGINT)
		wg.Add(1)
		go func() { defer wg.Done(); t.Wait() }()
	}
	wg.Wait()
	if perfOut != nil {
		c.perf = map[string]int64{}
		sc := bufio.NewScanner(perfOut)
		exits := 0
		for sc.Scan() {
			f := strings.Split(sc.Text(), ",")
			if len(f) < 3 {
				continue
			}
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			name := f[2]
			if name == "raw_syscalls:sys_exit" {
				name = "EAGAIN returns"
				exits++
			}
			c.perf[name] = v
		}
	}
	if straceOut != nil {
		c.strace = straceOut.String()
	}
	if recOut != nil {
		c.recorded = record
	}
	return c
}

func (c probeCounts) print(w *os.File, target, what string, units int64, took time.Duration) {
	unit := strings.TrimSuffix(what, "s")
	fmt.Fprintf(w, "%s, %s: %d %ss in %.2f s (%.0f/s)\n", target, what, units, unit, took.Seconds(), float64(units)/took.Seconds())
	if units == 0 {
		return
	}
	per := func(v float64) float64 { return v / float64(units) }
	fmt.Fprintf(w, "  CPU                     %8.1f µs per %s\n", per(c.cpu*1e6), unit)
	fmt.Fprintf(w, "  context switches        %8.2f voluntary, %.2f involuntary per %s\n", per(float64(c.vol)), per(float64(c.invol)), unit)
	if c.perf != nil {
		keys := make([]string, 0, len(c.perf))
		for k := range c.perf {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return c.perf[keys[i]] > c.perf[keys[j]] })
		for _, k := range keys {
			if c.perf[k] == 0 {
				continue
			}
			name := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(k, "syscalls:sys_enter_"), "raw_syscalls:sys_enter"), "sched:")
			if name == "" {
				name = "system calls, all"
			}
			fmt.Fprintf(w, "  %-22s  %8.2f per %s\n", name, per(float64(c.perf[k])), unit)
		}
	}
	if c.strace != "" {
		fmt.Fprintf(w, "  strace -c over the window (divide by %d):\n%s\n", units, c.strace)
	}
	if c.recorded != "" {
		fmt.Fprintf(w, "  perf record: perf report -i %s --no-children --sort sym\n", c.recorded)
	}
}

// openStreams opens n SSE streams through base with the fake sending an event on each every
// tick, counting the events the client gets; stop closes them.
func openStreams(base string, hdr []string, n int, tick time.Duration, events *atomic.Int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	c := &http.Client{Transport: tr}
	var opened atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/chat/completions?hold=1&tick="+tick.String(), strings.NewReader(chatStreamBody))
			req.Header.Set("Content-Type", "application/json")
			setHeaders(req.Header, hdr)
			res, err := c.Do(req)
			if err != nil {
				return
			}
			defer res.Body.Close()
			br := bufio.NewReaderSize(res.Body, 512)
			first := true
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if bytes.HasPrefix(line, []byte("data:")) {
					events.Add(1)
					if first {
						first = false
						opened.Add(1)
					}
				}
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for opened.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	log.Printf("%d of %d streams open", opened.Load(), n)
	return func() {
		cancel()
		wg.Wait()
		tr.CloseIdleConnections()
	}
}
