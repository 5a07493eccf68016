package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The chart: a grid of small horizontal bar panels, one figure each, every program in the same
// colour everywhere. Plain SVG, written by hand: no dependency.

var colours = map[string]string{
	"airelay": "#1f6feb",
	"nginx":   "#2da44e",
	"haproxy": "#cf222e",
	"dnsmasq": "#8250df",
	"direct":  "#8c959f",
}

func colourOf(label string) string {
	l := strings.ToLower(label)
	for _, k := range []string{"airelay", "nginx", "haproxy", "dnsmasq", "direct"} {
		if strings.HasPrefix(l, k) {
			return colours[k]
		}
	}
	return "#57606a"
}

type bar struct {
	label string
	value float64
	text  string // shown after the bar; default: the value
}

type panel struct {
	title string
	note  string // e.g. "higher is better"
	bars  []bar
}

func chart(r *Results) string {
	panels := chartPanels(r)
	// Portkey's bars would be 10–60 times the others' and flatten them: it is in the tables only.
	for i := range panels {
		bars := panels[i].bars[:0]
		for _, br := range panels[i].bars {
			if !strings.HasPrefix(br.label, "portkey") {
				bars = append(bars, br)
			}
		}
		panels[i].bars = bars
	}
	const w, h, cols, pad = 330, 190, 3, 14
	rows := (len(panels) + cols - 1) / cols
	W, H := cols*w+pad, rows*h+60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	title := fmt.Sprintf("airelay vs nginx, HAProxy, dnsmasq and direct: %s, %d CPUs, %s", r.Machine.CPUModel, r.Machine.CPUs, r.Machine.Date)
	if r.Params.Quick {
		title += " (QUICK MODE)"
	}
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", pad, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="42" font-size="11" fill="#57606a">%s</text>`+"\n", pad,
		html.EscapeString("loopback, one fake provider; proxy and fake on CPU 0, load generator on CPU 1; one worker each. Portkey's AI gateway is in BENCHMARKS.md's tables, not drawn. Raw numbers: bench/results.json"))
	for i, p := range panels {
		x, y := pad+(i%cols)*w, 56+(i/cols)*h
		drawPanel(&b, p, x, y, w-pad, h-12)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func drawPanel(b *strings.Builder, p panel, x, y, w, h int) {
	fmt.Fprintf(b, `<g transform="translate(%d,%d)">`+"\n", x, y)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#f6f8fa" stroke="#d0d7de" rx="4"/>`+"\n", w, h)
	fmt.Fprintf(b, `<text x="8" y="18" font-size="12" font-weight="bold">%s</text>`+"\n", html.EscapeString(p.title))
	fmt.Fprintf(b, `<text x="8" y="32" font-size="10" fill="#57606a">%s</text>`+"\n", html.EscapeString(p.note))
	maxV := 0.0
	for _, br := range p.bars {
		maxV = math.Max(maxV, br.value)
	}
	if maxV <= 0 {
		maxV = 1
	}
	const labelW, top = 92, 42
	barArea := float64(w - labelW - 70)
	n := max(len(p.bars), 1)
	step := math.Min(26, float64(h-top-6)/float64(n))
	for i, br := range p.bars {
		by := float64(top) + float64(i)*step
		bw := math.Max(1, br.value/maxV*barArea)
		text := br.text
		if text == "" {
			text = num(br.value)
		}
		fmt.Fprintf(b, `<text x="8" y="%.1f" font-size="11">%s</text>`+"\n", by+step*0.62, html.EscapeString(br.label))
		fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="%s" rx="2"/>`+"\n", labelW, by+2, bw, step-6, colourOf(br.label))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11">%s</text>`+"\n", float64(labelW)+bw+4, by+step*0.62, html.EscapeString(text))
	}
	b.WriteString("</g>\n")
}

// num prints a figure with about three significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func chartPanels(r *Results) []panel {
	var ps []panel
	if s := r.L7; s != nil {
		c := r.Params.Concurrency[0]
		p := panel{title: fmt.Sprintf("Gateway requests/s, c=%d", c), note: "small JSON, plain upstream; higher is better"}
		q := panel{title: fmt.Sprintf("Gateway CPU s per 10k requests, c=%d", c), note: "proxy process, /proc utime+stime; lower is better"}
		l := panel{title: "Gateway added latency p50 (µs)", note: "small JSON, one connection; lower is better"}
		var d *L7Row
		for _, row := range s.Rows {
			if row.Target == "direct" {
				d = row
			}
		}
		for _, row := range s.Rows {
			if lp := row.at(c); lp != nil {
				p.bars = append(p.bars, bar{label: row.Target, value: lp.RPS})
				if row.Target != "direct" {
					q.bars = append(q.bars, bar{label: row.Target, value: lp.CPUPer10k})
				}
			}
			if d != nil && row != d {
				l.bars = append(l.bars, bar{label: row.Target, value: math.Max(0, row.LatP50-d.LatP50), text: num(row.LatP50 - d.LatP50)})
			}
		}
		ps = append(ps, p, q, l)
	}
	if s := r.Relay; s != nil {
		p := panel{title: "TLS relay: 1 GiB download (MiB/s)", note: "one connection; higher is better"}
		q := panel{title: "TLS relay: handshake p50 (µs)", note: "TCP connect + full TLS 1.3 handshake; lower is better"}
		for _, row := range s.Rows {
			p.bars = append(p.bars, bar{label: row.Target, value: row.MiBps})
			q.bars = append(q.bars, bar{label: row.Target, value: row.HandshakeP50})
		}
		ps = append(ps, p, q)
	}
	if m := r.Memory; m != nil {
		p := panel{title: "RSS idle (MiB)", note: "VmRSS, all processes; lower is better"}
		for _, k := range []string{"airelay", "nginx", "haproxy", "dnsmasq"} {
			if v, ok := m.Idle[k]; ok {
				p.bars = append(p.bars, bar{label: k, value: float64(v.RSS) / (1 << 20)})
			}
		}
		ps = append(ps, p)
		q := panel{title: fmt.Sprintf("RSS growth, %d SSE streams (MiB)", r.Params.Streams), note: "gateway, plain upstream; lower is better"}
		for _, row := range m.Streams {
			if row.Note == "" {
				q.bars = append(q.bars, bar{label: row.Program, value: float64(row.Loaded.RSS-row.Before.RSS) / (1 << 20)})
			}
		}
		ps = append(ps, q)
		c := panel{title: fmt.Sprintf("RSS growth, %d relay conns (MiB)", r.Params.Streams), note: "TLS relay; lower is better"}
		for _, row := range m.RelayConn {
			c.bars = append(c.bars, bar{label: row.Program, value: math.Max(0, float64(row.Loaded.RSS-row.Before.RSS)/(1<<20)),
				text: num(float64(row.Loaded.RSS-row.Before.RSS) / (1 << 20))})
		}
		ps = append(ps, c)
	}
	if s := r.Startup; s != nil {
		p := panel{title: "Startup: exec → first answer (ms)", note: "median; lower is better"}
		for _, row := range s.Rows {
			p.bars = append(p.bars, bar{label: row.Program, value: row.MedianMs})
		}
		ps = append(ps, p)
	}
	if s := r.DNS; s != nil {
		p := panel{title: "DNS queries/s (thousands)", note: "dnsperf, intercepted names; higher is better"}
		for _, row := range s.Rows {
			p.bars = append(p.bars, bar{label: row.Program, value: row.QPS / 1000})
		}
		ps = append(ps, p)
	}
	if fp := r.Footprint; fp != nil {
		p := panel{title: "Binary size (MiB)", note: "airelay static; others Debian amd64 + stream module"}
		for _, bn := range fp.Binaries {
			if strings.HasSuffix(bn.Name, "amd64") || strings.HasSuffix(bn.Name, "mipsle") {
				p.bars = append(p.bars, bar{label: "airelay " + strings.TrimPrefix(bn.Name, "airelay-linux-"), value: float64(bn.Bytes) / (1 << 20)})
			}
		}
		var ngx float64
		for _, f := range fp.Reference {
			switch f.Name {
			case "nginx (binary)", "nginx stream module":
				ngx += float64(f.Bytes) / (1 << 20)
			case "haproxy (binary)":
				p.bars = append(p.bars, bar{label: "haproxy", value: float64(f.Bytes) / (1 << 20)})
			case "dnsmasq (binary)":
				p.bars = append(p.bars, bar{label: "dnsmasq", value: float64(f.Bytes) / (1 << 20)})
			}
		}
		if ngx > 0 {
			p.bars = append(p.bars, bar{label: "nginx", value: ngx})
		}
		ps = append(ps, p)
	}
	return ps
}
