package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// warm sends one gateway request and one relayed handshake through each program, so that
// "idle" means started and used once, not untouched.
func (e *env) warm() {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, t := range []struct {
		base string
		hdr  []string
	}{{"http://" + e.addr("air_http") + "/openai/v1", nil}, {"http://" + e.addr("ngx_http") + "/openai/v1", nil},
		{"http://" + e.addr("pk_http") + "/v1", portkeyHeaders(e.addr("plain"), "")}} {
		req, _ := http.NewRequest("POST", t.base+"/chat/completions", strings.NewReader(chatStreamBody))
		req.Header.Set("Content-Type", "application/json")
		setHeaders(req.Header, t.hdr)
		if res, err := c.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	for _, t := range e.relayTargets() {
		if tc, _, err := handshake(t.addr, e.tlsConfig()); err == nil {
			tc.Close()
		}
	}
}

func (e *env) idleMemory() {
	e.warm()
	time.Sleep(2 * time.Second)
	m := e.res.Memory
	m.Idle = map[string]mem{}
	m.IdleNote = "started, one gateway request and one relayed TLS connection served, 2 s quiet"
	m.Idle["airelay"] = memOf(e.air.pid())
	if e.ngx != nil {
		m.Idle["nginx"] = memOf(e.ngx.pid())
	}
	if e.hap != nil {
		m.Idle["haproxy"] = memOf(e.hap.pid())
	}
	if e.pk != nil {
		m.Idle["portkey"] = memOf(e.pk.pid())
	}
	for k, v := range m.Idle {
		log.Printf("idle %-8s RSS %s  PSS %s (%d processes)", k, fmtMiB(float64(v.RSS)), fmtMiB(float64(v.PSS)), v.Procs)
	}
}

func fmtMiB(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// holdStreams opens n SSE streams through base (with the headers hdr) that the fake holds open
// after the first event, samples the proxy's memory, then closes them.
func (e *env) holdStreams(name, base string, hdr []string, p *proc, n int) *MemRow {
	row := &MemRow{Program: name, What: fmt.Sprintf("%d open SSE streams through the gateway", n)}
	row.Before = memOf(p.pid())
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	c := &http.Client{Transport: tr}
	var opened, failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // opening, not open: keep the accept queues short
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/chat/completions?hold=1", strings.NewReader(chatStreamBody))
			req.Header.Set("Content-Type", "application/json")
			setHeaders(req.Header, hdr)
			res, err := c.Do(req)
			if err != nil {
				<-sem
				failed.Add(1)
				return
			}
			br := bufio.NewReaderSize(res.Body, 512)
			line, err := br.ReadSlice('\n')
			<-sem
			if err != nil || !bytes.HasPrefix(line, []byte("data:")) {
				failed.Add(1)
				res.Body.Close()
				return
			}
			opened.Add(1)
			<-ctx.Done()
			res.Body.Close()
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for opened.Load()+failed.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	row.Loaded = memOf(p.pid())
	row.Opened, row.Errors = int(opened.Load()), int(failed.Load())
	if p == e.air {
		saveProfile("heap", "heap-"+slug(base)+".prof")
		saveProfile("goroutine?debug=1", "goroutines-"+slug(base)+".txt")
	}
	cancel()
	wg.Wait()
	tr.CloseIdleConnections()
	log.Printf("%-8s %d streams open (%d failed): RSS %s → %s, PSS %s → %s", name, row.Opened, row.Errors,
		fmtMiB(float64(row.Before.RSS)), fmtMiB(float64(row.Loaded.RSS)), fmtMiB(float64(row.Before.PSS)), fmtMiB(float64(row.Loaded.PSS)))
	time.Sleep(time.Second)
	return row
}

// holdConns opens n TLS connections through the relay at addr (handshake complete, so both
// sides are spliced) and samples the relay's memory.
func (e *env) holdConns(name, addr string, p *proc, n int) *MemRow {
	row := &MemRow{Program: name, What: fmt.Sprintf("%d open connections through the TLS relay", n)}
	row.Before = memOf(p.pid())
	cfg := e.tlsConfig()
	conns := make([]*tls.Conn, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tc, _, err := handshake(addr, cfg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				row.Errors++
				return
			}
			conns = append(conns, tc)
		}()
	}
	wg.Wait()
	time.Sleep(time.Second)
	row.Loaded = memOf(p.pid())
	row.Opened = len(conns)
	if p == e.air {
		saveProfile("heap", "heap-relay-conns.prof")
		saveProfile("goroutine?debug=1", "goroutines-relay-conns.txt")
	}
	for _, c := range conns {
		c.Close()
	}
	log.Printf("%-8s %d relay connections open (%d failed): RSS %s → %s, PSS %s → %s", name, row.Opened, row.Errors,
		fmtMiB(float64(row.Before.RSS)), fmtMiB(float64(row.Loaded.RSS)), fmtMiB(float64(row.Before.PSS)), fmtMiB(float64(row.Loaded.PSS)))
	time.Sleep(2 * time.Second)
	return row
}

func (e *env) runMemory() error {
	m := e.res.Memory
	n := e.p.Streams
	// Each scenario starts from freshly started, warmed programs (restartProxies), so "before"
	// is the idle process and "loaded" holds only this scenario's connections.
	type scenario struct {
		name, path string
		note       string
	}
	for _, sc := range []scenario{
		{"airelay", "/openai/v1", ""},
		{"nginx", "/openai/v1", ""},
		{"portkey", "/v1", ""},
		// The HTTPS upstream: both open one TLS connection per stream (HTTP/1.1).
		{"airelay", "/openai-tls/v1", "HTTPS upstream (HTTP/1.1, a TLS connection per stream)"},
		{"nginx", "/openai-tls/v1", "HTTPS upstream (HTTP/1.1, a TLS connection per stream)"},
	} {
		if sc.name == "nginx" && !e.hasNgx || sc.name == "portkey" && !e.hasPK {
			continue
		}
		if err := e.restartProxies(); err != nil {
			return err
		}
		p, base, hdr := e.gatewayOf(sc.name, sc.path)
		r := e.holdStreams(sc.name, base, hdr("0"), p, n)
		r.Note = sc.note
		m.Streams = append(m.Streams, r)
	}
	// CPU per streamed event, with few and with many streams open, at the same rate of events in
	// all: the cost of an event must not grow with the streams held (GC running back to back under memory_limit would show here).
	// Then the same over HTTPS to the provider, as every real provider is spoken to (crypto/tls
	// on airelay's side, OpenSSL on nginx's); Portkey only on plain HTTP (see holdStreams).
	for _, up := range []string{"", "https"} {
		for _, n := range []int{10, n} {
			for _, name := range []string{"airelay", "nginx", "portkey"} {
				if name == "nginx" && !e.hasNgx || name == "portkey" && (!e.hasPK || up != "") {
					continue
				}
				if err := e.restartProxies(); err != nil {
					return err
				}
				path := "/openai/v1"
				if up == "https" {
					path = "/openai-tls/v1"
				}
				p, base, hdr := e.gatewayOf(name, path)
				row := e.streamEvents(name, base, hdr, p, n)
				row.Upstream = up
				m.Events = append(m.Events, row)
			}
		}
	}
	if err := e.restartProxies(); err != nil {
		return err
	}
	for _, t := range e.relayTargets() {
		if t.proxy == nil {
			continue
		}
		m.RelayConn = append(m.RelayConn, e.holdConns(t.name, t.addr, t.proxy, n))
	}
	// AfterLoad: the relay runs' processes once their connections closed.
	m.AfterLoad = map[string]mem{"airelay": memOf(e.air.pid())}
	if e.ngx != nil {
		m.AfterLoad["nginx"] = memOf(e.ngx.pid())
	}
	if e.hap != nil {
		m.AfterLoad["haproxy"] = memOf(e.hap.pid())
	}
	return nil
}

// gatewayOf is the process, base URL and headers of a gateway program (airelay, nginx,
// portkey) for a path under airelay's and nginx's /openai prefixes; hdr(hold) gives the headers
// (Portkey's: the fake's hold and tick options go in its custom host, see portkey.go).
func (e *env) gatewayOf(name, path string) (p *proc, base string, hdr func(hold string) []string) {
	none := func(string) []string { return nil }
	switch name {
	case "nginx":
		return e.ngx, "http://" + e.addr("ngx_http") + path, none
	case "portkey":
		return e.pk, "http://" + e.addr("pk_http") + "/v1", func(hold string) []string { return portkeyHeaders(e.addr("plain"), hold) }
	}
	return e.air, "http://" + e.addr("air_http") + path, none
}

// eventRate is the events per second the fake sends in all in streamEvents, however many
// streams are open: each of n streams gets one every n/eventRate s.
const eventRate = 10000

// streamEvents opens n SSE streams through base on which the fake sends eventRate events per
// second in all, then measures the proxy's CPU time per event delivered over a window. For airelay
// it also counts GC cycles in the window (its log, GODEBUG=gctrace=1) and, at the end, its
// goroutines (a SIGQUIT dump, GOTRACEBACK=all; the process is restarted for the next run).
func (e *env) streamEvents(name, base string, hdr func(hold string) []string, p *proc, n int) *EventRow {
	eventTick := time.Duration(n) * time.Second / eventRate
	row := &EventRow{Program: name, Streams: n, Tick: eventTick.String(), GCs: -1, Goroutines: -1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var opened, failed, events atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/chat/completions?hold=1&tick="+eventTick.String(), strings.NewReader(chatStreamBody))
			req.Header.Set("Content-Type", "application/json")
			setHeaders(req.Header, hdr(eventTick.String()))
			res, err := c.Do(req)
			if err != nil {
				<-sem
				failed.Add(1)
				return
			}
			defer res.Body.Close()
			br := bufio.NewReaderSize(res.Body, 512)
			first := true
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					if first {
						<-sem
						failed.Add(1)
					}
					return
				}
				if bytes.HasPrefix(line, []byte("data:")) {
					events.Add(1)
					if first {
						first = false
						<-sem
						opened.Add(1)
					}
				}
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for opened.Load()+failed.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	window := 6 * time.Second
	if e.p.Quick {
		window = 3 * time.Second
	}
	ev0, cpu0, gc0, t0 := events.Load(), cpuSeconds(p.pid()), countGC(p), time.Now()
	time.Sleep(window)
	ev1, cpu1, gc1 := events.Load(), cpuSeconds(p.pid()), countGC(p)
	row.Seconds = time.Since(t0).Seconds()
	row.Events, row.CPUSeconds = ev1-ev0, cpu1-cpu0
	row.Errors = int(failed.Load())
	if row.Events > 0 {
		row.USPerEvent = row.CPUSeconds * 1e6 / float64(row.Events)
	}
	if p == e.air {
		if gc0 >= 0 {
			row.GCs = gc1 - gc0
		}
		row.Goroutines = dumpGoroutines(p)
	}
	cancel()
	wg.Wait()
	log.Printf("%-8s %4d streams, an event each per %v: %.0f events/s, CPU %.1f µs/event, GC cycles %d, goroutines %d (%d failed)",
		name, int(opened.Load()), eventTick, float64(row.Events)/row.Seconds, row.USPerEvent, row.GCs, row.Goroutines, row.Errors)
	return row
}

// countGC counts the gctrace lines in p's log so far; -1 when it cannot be read.
func countGC(p *proc) int {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("gc ")) {
			n++
		}
	}
	return n
}

// dumpGoroutines makes p (a Go program run with GOTRACEBACK=all) print every goroutine and exit,
// and counts them; -1 when it did not.
func dumpGoroutines(p *proc) int {
	p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return -1
	}
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("goroutine ")) && bytes.HasSuffix(l, []byte("]:")) {
			n++
		}
	}
	return n
}
