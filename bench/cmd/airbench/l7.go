package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// l7Target is one way to the fake provider's chat completions.
type l7Target struct {
	name  string
	base  string   // URL up to and including /v1
	base2 string   // the same for the highest concurrency, through its own upstream port
	auth  bool     // the client sends the key itself (direct); proxies inject it
	hdr   []string // more request headers ("Name: value"), e.g. Portkey's
	hdr2  []string // the same for base2
	proxy *proc    // whose CPU is counted; nil for direct
	note  string
}

type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUs int64   `json:"duration_us"`
	P50        float64 `json:"p50_us"`
	P90        float64 `json:"p90_us"`
	P99        float64 `json:"p99_us"`
	Max        float64 `json:"max_us"`
	Mean       float64 `json:"mean_us"`
	ErrConnect int64   `json:"err_connect"`
	ErrRead    int64   `json:"err_read"`
	ErrWrite   int64   `json:"err_write"`
	ErrStatus  int64   `json:"err_status"`
	ErrTimeout int64   `json:"err_timeout"`
}

func (w wrkResult) errors() int64 {
	return w.ErrConnect + w.ErrRead + w.ErrWrite + w.ErrStatus + w.ErrTimeout
}

// wrk runs wrk on the load CPUs against t with conns connections for secs seconds.
func (e *env) wrk(t l7Target, conns int, secs float64) (wrkResult, error) {
	args := []string{"wrk", "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(secs+0.5)), "--latency",
		"--timeout", "5s", "-s", filepath.Join(e.o.conf, "wrk-chat.lua")}
	if t.auth {
		args = append(args, "-H", "Authorization: Bearer "+benchKey)
	}
	for _, h := range t.hdr {
		args = append(args, "-H", h)
	}
	args = append(args, t.base+"/chat/completions")
	out, err := runOut(nil, args...)
	var r wrkResult
	for _, l := range strings.Split(out, "\n") {
		if j, ok := strings.CutPrefix(l, "WRKJSON "); ok {
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				return r, fmt.Errorf("wrk output: %v: %s", err, j)
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("wrk %s: %v: %s", t.name, err, out)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pct is the p-th percentile (0–1) of sorted-or-not samples, nearest rank.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var t float64
	for _, x := range v {
		t += x
	}
	return t / float64(len(v))
}

const chatStreamBody = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello."}]}`

// ttfe sends n streamed requests one after another on one kept-alive connection and returns
// each one's time to the first SSE event, in microseconds.
func (e *env) ttfe(t l7Target, n int) ([]float64, int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true,
		TLSClientConfig: &tls.Config{RootCAs: e.pool, NextProtos: []string{"http/1.1"}}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var out []float64
	errs := 0
	for range n {
		req, _ := http.NewRequest("POST", t.base+"/chat/completions", strings.NewReader(chatStreamBody))
		req.Header.Set("Content-Type", "application/json")
		if t.auth {
			req.Header.Set("Authorization", "Bearer "+benchKey)
		}
		setHeaders(req.Header, t.hdr)
		t0 := time.Now()
		res, err := c.Do(req)
		if err != nil {
			errs++
			continue
		}
		br := bufio.NewReaderSize(res.Body, 4096)
		got := false
		for {
			line, err := br.ReadSlice('\n')
			if bytes.HasPrefix(line, []byte("data:")) {
				got = true
				break
			}
			if err != nil {
				break
			}
		}
		d := time.Since(t0)
		io.Copy(io.Discard, br)
		res.Body.Close()
		if !got || res.StatusCode != 200 {
			errs++
			continue
		}
		out = append(out, float64(d.Nanoseconds())/1e3)
	}
	return out, errs
}

// l7 compares targets: per round and target, a latency run (one connection), the TTFE run and
// throughput runs at each concurrency with CPU read from /proc around them. Targets are rotated
// every round so that slow drift of the machine hits all alike.
func (e *env) l7(title string, targets []l7Target, withTTFE bool, concs []int, rounds int) *L7Section {
	sec := &L7Section{Title: title}
	rows := make([]*L7Row, len(targets))
	type acc struct{ p50, p99, tt []float64 }
	type lacc struct{ p50, p99, upcpu, conns []float64 }
	accs := make([]acc, len(targets))
	laccs := make([][]lacc, len(targets))
	for i, t := range targets {
		rows[i] = &L7Row{Target: t.name, Note: t.note}
		laccs[i] = make([]lacc, len(concs))
		for _, c := range concs {
			rows[i].Load = append(rows[i].Load, &LoadPoint{Conc: c})
		}
		// Warm-up: connection pools, Go heaps, nginx's upstream keepalive cache.
		if _, err := e.wrk(t, concs[0], e.p.WarmSeconds); err != nil {
			log.Printf("warm-up %s: %v", t.name, err)
		}
	}
	for round := range rounds {
		for k := range targets {
			i := (k + round) % len(targets)
			t, row, a := targets[i], rows[i], &accs[i]
			lat, err := e.wrk(t, 1, e.p.LatSeconds)
			if err != nil {
				log.Print(err)
				row.Errors++
			} else {
				row.Errors += lat.errors()
				a.p50, a.p99 = append(a.p50, lat.P50), append(a.p99, lat.P99)
			}
			if withTTFE {
				tt, errs := e.ttfe(t, e.p.TTFERequests)
				a.tt = append(a.tt, tt...)
				row.Errors += int64(errs)
			}
			msg := fmt.Sprintf("%-22s round %d: c=1 p50 %5.0fµs p99 %5.0fµs", t.name, round+1, lat.P50, lat.P99)
			for j, c := range concs {
				lp, la := row.Load[j], &laccs[i][j]
				tt := t
				if j == len(concs)-1 && t.base2 != "" {
					tt.base, tt.hdr = t.base2, t.hdr2
				}
				var cpu0 float64
				if t.proxy != nil {
					cpu0 = cpuSeconds(t.proxy.pid())
				}
				up0 := cpuSeconds(e.up.pid())
				pc0, tc0 := upstreamConns(e.addr("plain"))
				wait := func() {}
				if round == 0 && t.proxy != nil && t.proxy == e.air {
					wait = cpuProfileAsync(fmt.Sprintf("cpu-%s-c%d.prof", slug(title), c), int(e.p.RPSSeconds)-1)
				}
				r, err := e.wrk(tt, c, e.p.RPSSeconds)
				wait()
				if err != nil {
					log.Print(err)
					lp.Errors++
					continue
				}
				upCPU := cpuSeconds(e.up.pid()) - up0
				var cpu float64
				if t.proxy != nil {
					cpu = cpuSeconds(t.proxy.pid()) - cpu0
				}
				pc1, tc1 := upstreamConns(e.addr("plain"))
				lp.Errors += r.errors()
				lp.Requests += r.Requests
				rps := float64(r.Requests) / (float64(r.DurationUs) / 1e6)
				lp.RPSRounds = append(lp.RPSRounds, rps)
				la.p50, la.p99 = append(la.p50, r.P50), append(la.p99, r.P99)
				if r.Requests > 0 {
					if t.proxy != nil {
						lp.CPURounds = append(lp.CPURounds, cpu/float64(r.Requests)*1e4)
					}
					la.upcpu = append(la.upcpu, upCPU/float64(r.Requests)*1e4)
					la.conns = append(la.conns, float64((pc1-pc0)+(tc1-tc0)-1)/float64(r.Requests)*1e4)
				}
				msg += fmt.Sprintf(" | c=%d %6.0f req/s CPU %.2fs/10k up-conns %4.0f/10k err %d", c, rps,
					cpu/float64(max(r.Requests, 1))*1e4, la.conns[len(la.conns)-1], r.errors())
			}
			log.Print(msg)
		}
	}
	for i, row := range rows {
		a := accs[i]
		row.LatP50, row.LatP99 = median(a.p50), median(a.p99)
		if len(a.tt) > 0 {
			row.TTFEP50, row.TTFEP99 = pct(a.tt, .5), pct(a.tt, .99)
		}
		for j, lp := range row.Load {
			la := laccs[i][j]
			lp.RPS, lp.P50, lp.P99 = median(lp.RPSRounds), median(la.p50), median(la.p99)
			lp.CPUPer10k, lp.UpstreamCPUPer10k, lp.UpConnsPer10k = median(lp.CPURounds), median(la.upcpu), median(la.conns)
		}
	}
	sec.Rows = rows
	return sec
}

func (e *env) runL7Plain() error {
	ts := []l7Target{{name: "direct", base: "http://" + e.addr("plain") + "/v1", base2: "http://" + e.addr("plain32") + "/v1", auth: true}}
	ts = append(ts, l7Target{name: "airelay", base: "http://" + e.addr("air_http") + "/openai/v1",
		base2: "http://" + e.addr("air_http") + "/openai32/v1", proxy: e.air})
	if e.ngx != nil {
		ts = append(ts, l7Target{name: "nginx", base: "http://" + e.addr("ngx_http") + "/openai/v1",
			base2: "http://" + e.addr("ngx_http") + "/openai32/v1", proxy: e.ngx})
	}
	if e.pk != nil {
		// Portkey keeps no key: the client sends it, with Portkey's provider headers.
		ts = append(ts, l7Target{name: "portkey", base: "http://" + e.addr("pk_http") + "/v1", base2: "http://" + e.addr("pk_http") + "/v1",
			hdr: portkeyHeaders(e.addr("plain"), ""), hdr2: portkeyHeaders(e.addr("plain32"), ""), proxy: e.pk,
			note: "the client sends the key with x-portkey-provider and x-portkey-custom-host, as Portkey's docs say; Portkey keeps no keys"})
	}
	e.res.L7 = e.l7("gateway, plain HTTP/1.1 upstream", ts, true, e.p.Concurrency, e.p.Rounds)
	return nil
}

func (e *env) runL7TLS() error {
	ts := []l7Target{{name: "direct (HTTPS)", base: "https://" + e.addr("tls") + "/v1", auth: true,
		note: "the client speaks HTTPS/1.1 to the fake itself"}}
	ts = append(ts, l7Target{name: "airelay", base: "http://" + e.addr("air_http") + "/openai-tls/v1", proxy: e.air,
		note: "HTTP/1.1 over TLS to the fake (ALPN http/1.1), its own keep-alive pool"})
	if e.ngx != nil {
		ts = append(ts, l7Target{name: "nginx", base: "http://" + e.addr("ngx_http") + "/openai-tls/v1", proxy: e.ngx,
			note: "HTTP/1.1 over TLS to the fake, keepalive pool"})
	}
	e.res.L7TLS = e.l7("gateway, HTTPS upstream", ts, false, e.p.Concurrency, min(e.p.Rounds, 2))
	return nil
}

// runL7Two: airelay with GOMAXPROCS=2 and nginx with 2 workers, both allowed on every CPU (the
// load generator shares CPU 1 with them), throughput only.
func (e *env) runL7Two() error {
	all := []int{}
	for i := range e.res.Machine.CPUs {
		all = append(all, i)
	}
	air, err := e.startAirelay("airelay2", "s_", 2, all)
	if err != nil {
		return err
	}
	defer air.stop()
	ts := []l7Target{{name: "airelay GOMAXPROCS=2", base: "http://" + e.addr("s_air_http") + "/openai/v1", proxy: air}}
	if e.hasNgx {
		ngx, err := e.startNginx("nginx2", "s_", 2, all)
		if err != nil {
			return err
		}
		defer ngx.stop()
		ts = append(ts, l7Target{name: "nginx 2 workers", base: "http://" + e.addr("s_ngx_http") + "/openai/v1", proxy: ngx})
	}
	e.res.L7Two = e.l7("gateway, plain upstream, 2 CPUs for the proxy", ts, false, e.p.Concurrency[:1], min(e.p.Rounds, 2))
	return nil
}

// setHeaders adds "Name: value" headers to h.
func setHeaders(h http.Header, hdr []string) {
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ":")
		h.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
}

// slug makes a file name part of a title.
func slug(s string) string {
	b := []byte{}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		case r >= 'A' && r <= 'Z':
			b = append(b, byte(r+'a'-'A'))
		case len(b) > 0 && b[len(b)-1] != '-':
			b = append(b, '-')
		}
	}
	return string(b)
}
