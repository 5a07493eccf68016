package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

// relayTarget is one way to the fake's HTTPS port with SNI api.openai.com.
type relayTarget struct {
	name  string
	addr  string
	proxy *proc
}

func (e *env) relayTargets() []relayTarget {
	ts := []relayTarget{{name: "direct", addr: e.addr("tls")}, {name: "airelay", addr: e.addr("air_tls"), proxy: e.air}}
	if e.ngx != nil {
		ts = append(ts, relayTarget{name: "nginx stream", addr: e.addr("ngx_relay"), proxy: e.ngx})
	}
	if e.hap != nil {
		ts = append(ts, relayTarget{name: "haproxy", addr: e.addr("hap_relay"), proxy: e.hap})
	}
	return ts
}

func (e *env) tlsConfig() *tls.Config {
	// No session cache: every handshake is a full one, as a device's first connection is.
	return &tls.Config{ServerName: "api.openai.com", RootCAs: e.pool, NextProtos: []string{"http/1.1"}}
}

// handshake connects and completes a TLS handshake through addr; it returns the time from the
// start of the TCP connect to the end of the handshake.
func handshake(addr string, cfg *tls.Config) (*tls.Conn, time.Duration, error) {
	return handshakeVia(func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 10*time.Second) }, addr, cfg)
}

// handshakeVia is handshake over a connection made by dial (lan.go's from a namespace).
func handshakeVia(dial func(addr string) (net.Conn, error), addr string, cfg *tls.Config) (*tls.Conn, time.Duration, error) {
	t0 := time.Now()
	c, err := dial(addr)
	if err != nil {
		return nil, 0, err
	}
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, 0, err
	}
	d := time.Since(t0)
	tc.SetDeadline(time.Time{})
	return tc, d, nil
}

// download fetches n bytes over one TLS connection through addr and returns MiB/s, counted
// from the request to the last byte (the handshake is not in it).
func download(addr string, cfg *tls.Config, n int64) (float64, error) {
	tc, _, err := handshake(addr, cfg)
	if err != nil {
		return 0, err
	}
	defer tc.Close()
	t0 := time.Now()
	fmt.Fprintf(tc, "GET /bytes?n=%d HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n", n)
	res, err := http.ReadResponse(bufio.NewReaderSize(tc, 64<<10), nil)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 256<<10)
	got, err := io.CopyBuffer(io.Discard, res.Body, buf)
	res.Body.Close()
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("got %d bytes of %d", got, n)
	}
	return float64(n) / (1 << 20) / time.Since(t0).Seconds(), nil
}

func (e *env) runRelay() error {
	ts := e.relayTargets()
	cfg := e.tlsConfig()
	rows := e.handshakes(ts, e.p.Rounds)
	var cpu [][]float64 = make([][]float64, len(ts))
	for rep := range e.p.DownloadReps {
		for k := range ts {
			i := (k + rep) % len(ts)
			var c0 float64
			if ts[i].proxy != nil {
				c0 = cpuSeconds(ts[i].proxy.pid())
			}
			v, err := download(ts[i].addr, cfg, e.p.Download)
			if err != nil {
				log.Printf("%s download: %v", ts[i].name, err)
				rows[i].Errors++
				continue
			}
			if ts[i].proxy != nil {
				cpu[i] = append(cpu[i], (cpuSeconds(ts[i].proxy.pid())-c0)/(float64(e.p.Download)/(1<<30)))
			}
			rows[i].MiBpsReps = append(rows[i].MiBpsReps, v)
			log.Printf("%-14s %d MiB download: %.0f MiB/s", ts[i].name, e.p.Download>>20, v)
		}
	}
	for i, r := range rows {
		r.MiBps = median(r.MiBpsReps)
		r.CPUPerGiB = median(cpu[i])
	}
	e.res.Relay = &RelaySection{Rows: rows}
	return nil
}

// handshakes measures full TLS handshakes through each target, rounds × e.p.Handshakes each,
// the targets' order rotated per round.
func (e *env) handshakes(ts []relayTarget, rounds int) []*RelayRow {
	cfg := e.tlsConfig()
	rows := make([]*RelayRow, len(ts))
	samples := make([][]float64, len(ts))
	for i, t := range ts {
		rows[i] = &RelayRow{Target: t.name}
		for range 20 { // warm-up
			if c, _, err := handshake(t.addr, cfg); err == nil {
				c.Close()
			}
		}
	}
	for round := range rounds {
		for k := range ts {
			i := (k + round) % len(ts)
			for range e.p.Handshakes {
				c, d, err := handshake(ts[i].addr, cfg)
				if err != nil {
					rows[i].Errors++
					continue
				}
				c.Close()
				samples[i] = append(samples[i], float64(d.Nanoseconds())/1e3)
			}
		}
	}
	for i, r := range rows {
		r.HandshakeP50, r.HandshakeP99, r.HandshakeAvg = pct(samples[i], .5), pct(samples[i], .99), mean(samples[i])
		r.Handshakes = len(samples[i])
		log.Printf("%-14s TLS handshake p50 %6.0fµs p99 %6.0fµs (%d, %d errors)", r.Target, r.HandshakeP50, r.HandshakeP99, r.Handshakes, r.Errors)
	}
	return rows
}
