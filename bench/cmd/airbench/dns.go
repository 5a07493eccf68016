package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// dnsperf output lines we read.
var (
	reQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reAvg  = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	reSD   = regexp.MustCompile(`Latency StdDev \(s\):\s+([0-9.]+)`)
	reLost = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	reDone = regexp.MustCompile(`Queries completed:\s+([0-9]+)`)
)

type dnsperfResult struct {
	qps, avg, sd float64
	lost, done   int64
}

func (e *env) dnsperf(port int, queries string, secs float64, outstanding int) (dnsperfResult, error) {
	out, err := runOut(nil, "dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries,
		"-l", strconv.Itoa(int(secs+0.5)), "-q", strconv.Itoa(outstanding), "-c", "1", "-T", "1", "-t", "2")
	var r dnsperfResult
	m := reQPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("dnsperf: %v: %s", err, out)
	}
	r.qps, _ = strconv.ParseFloat(m[1], 64)
	if m := reAvg.FindStringSubmatch(out); m != nil {
		r.avg, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reSD.FindStringSubmatch(out); m != nil {
		r.sd, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reLost.FindStringSubmatch(out); m != nil {
		r.lost, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reDone.FindStringSubmatch(out); m != nil {
		r.done, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

// runDNS: dnsperf against airelay's DNS listener and against dnsmasq answering the same names
// from address= lines, both on the proxy CPU; A queries for every exact name of the shipped
// config, in a loop. A saturating run (100 queries outstanding) gives queries/s; a run with one
// outstanding gives the latency of a lone query.
func (e *env) runDNS() error {
	if _, ok := lookPath("dnsperf"); !ok {
		return fmt.Errorf("dnsperf is not installed")
	}
	qf := filepath.Join(e.dir, "queries.txt")
	var b strings.Builder
	for _, n := range e.names {
		fmt.Fprintf(&b, "%s A\n", n)
	}
	if err := os.WriteFile(qf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	type server struct {
		name string
		port int
		p    *proc
	}
	servers := []server{{"airelay", e.port["air_dns"], e.air}}
	if bin, ok := lookPath("dnsmasq"); ok {
		conf, err := e.render("dnsmasq.conf.tmpl", "dnsmasq.conf", map[string]any{
			"Port": e.port["dnsmasq"], "Names": e.names, "Addr": "192.168.1.1"})
		if err != nil {
			return err
		}
		p, err := start(e.dir, "dnsmasq", e.p.ProxyCPUs, nil, bin, "-k", "-C", conf)
		if err != nil {
			return err
		}
		defer p.stop()
		time.Sleep(300 * time.Millisecond)
		if !p.alive() {
			return fmt.Errorf("dnsmasq exited: %s", p.logTail())
		}
		servers = append(servers, server{"dnsmasq", e.port["dnsmasq"], p})
		e.res.Memory.Idle["dnsmasq"] = memOf(p.pid())
	} else {
		e.note("dnsmasq is not installed: no DNS comparison")
	}
	rows := make([]*DNSRow, len(servers))
	cpu := make([][]float64, len(servers))
	for i, s := range servers {
		rows[i] = &DNSRow{Program: s.name}
		if _, err := e.dnsperf(s.port, qf, 1, 100); err != nil { // warm-up
			return err
		}
	}
	for round := range e.p.Rounds {
		for k := range servers {
			i := (k + round) % len(servers)
			c0 := cpuSeconds(servers[i].p.pid())
			r, err := e.dnsperf(servers[i].port, qf, e.p.DNSSeconds, 100)
			if err != nil {
				return err
			}
			c := cpuSeconds(servers[i].p.pid()) - c0
			rows[i].QPSRounds = append(rows[i].QPSRounds, r.qps)
			rows[i].AvgLatencyUs = r.avg * 1e6
			rows[i].Lost += r.lost
			if r.done > 0 {
				cpu[i] = append(cpu[i], c/float64(r.done)*1e5)
			}
			log.Printf("%-8s %8.0f queries/s, avg latency %.0fµs (100 outstanding), lost %d", servers[i].name, r.qps, r.avg*1e6, r.lost)
		}
	}
	for i, s := range servers {
		r, err := e.dnsperf(s.port, qf, e.p.DNSSeconds, 1)
		if err != nil {
			return err
		}
		rows[i].LatencyUs, rows[i].StdDevUs = r.avg*1e6, r.sd*1e6
		rows[i].QPS = median(rows[i].QPSRounds)
		rows[i].CPUPer100k = median(cpu[i])
		log.Printf("%-8s one outstanding: avg %.0fµs sd %.0fµs", s.name, r.avg*1e6, r.sd*1e6)
	}
	e.res.DNS = &DNSSection{Names: len(e.names), Rows: rows}
	return nil
}
