// Package dnsserver answers DNS for the intercepted AI API names.
//
// dnsmasq stays the LAN's resolver and forwards only the configured names here. For those names
// the answer is the router's own address (A → lan_ipv4, AAAA → lan_ipv6), and every other type,
// HTTPS and SVCB above all, is NODATA: an HTTPS record would hand the device ECH keys or other
// endpoints that bypass the relay. Other names are REFUSED, so airelay is never an open resolver,
// unless dns_forward makes it forward them upstream (a standalone box). When airelay is disabled
// it forwards everything, so DNS keeps working while dnsmasq still points here.
//
// This package only answers; listening and lifecycle belong to the service.
package dnsserver

import (
	"net"
	"time"

	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/logging"
)

// Handler is the miekg/dns handler.
type Handler struct {
	Table   func() *config.Table
	Servers func() []string // upstream servers for forwarding (resolve's discovery)
	Log     *logging.Logger
	Timeout time.Duration // forwarding timeout per server; 0 → 2s
}

// ServeDNS answers one query.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	t := h.Table()
	m := h.answer(t, r, w.RemoteAddr())
	if m == nil {
		return
	}
	if err := w.WriteMsg(m); err != nil {
		h.Log.Debug("dns write failed", "client", w.RemoteAddr().String(), "err", err)
	}
}

func (h *Handler) answer(t *config.Table, r *dns.Msg, from net.Addr) *dns.Msg {
	m := new(dns.Msg)
	if r.Response || r.Opcode != dns.OpcodeQuery {
		m.SetRcode(r, dns.RcodeNotImplemented)
		return m
	}
	if len(r.Question) != 1 {
		m.SetRcode(r, dns.RcodeFormatError)
		return m
	}
	if bad := checkEDNS(m, r); bad {
		return m
	}
	q := r.Question[0]
	var p *config.Provider
	if t.Main.Enabled && q.Qclass == dns.ClassINET {
		p = t.MatchHost(q.Name)
	}
	if p == nil {
		if t.Main.DNSForward || !t.Main.Enabled {
			return h.forward(r, from)
		}
		m.SetRcode(r, dns.RcodeRefused)
		return m
	}
	m.SetReply(r)
	m.RecursionAvailable = true
	ttl := t.Main.DNSTTL
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}
	switch {
	case q.Qtype == dns.TypeA && t.Main.LANv4.IsValid():
		hdr.Rrtype = dns.TypeA
		a := t.Main.LANv4.As4()
		m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IP(a[:])}}
	case q.Qtype == dns.TypeAAAA && t.Main.LANv6.IsValid():
		hdr.Rrtype = dns.TypeAAAA
		a := t.Main.LANv6.As16()
		m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.IP(a[:])}}
	default:
		// NODATA with a SOA, so resolvers cache the absence for the same short TTL.
		hdr.Rrtype = dns.TypeSOA
		m.Ns = []dns.RR{&dns.SOA{Hdr: hdr, Ns: "airelay.invalid.", Mbox: "hostmaster.airelay.invalid.",
			Serial: 1, Refresh: ttl, Retry: ttl, Expire: ttl, Minttl: ttl}}
	}
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(1232, false)
	}
	if h.Log.Enabled(logging.LevelDebug) { // the arguments cost allocations
		h.Log.Debug("dns intercepted", "name", q.Name, "type", dns.TypeToString[q.Qtype], "provider", p.ID, "client", from.String())
	}
	return m
}

// checkEDNS answers, in m, a query whose EDNS is wrong (RFC 6891 6.1.1, 6.1.3): more than one
// OPT record is FORMERR; an OPT of a version other than 0, the only one there is, is BADVERS
// with an OPT of version 0. It reports whether it did.
func checkEDNS(m, r *dns.Msg) bool {
	var opt *dns.OPT
	for _, rr := range r.Extra {
		o, ok := rr.(*dns.OPT)
		if !ok {
			continue
		}
		if opt != nil {
			m.SetRcode(r, dns.RcodeFormatError)
			return true
		}
		opt = o
	}
	if opt != nil && opt.Version() != 0 {
		m.SetRcode(r, dns.RcodeBadVers) // 16: its upper bits travel in the OPT record
		m.SetEdns0(1232, false)
		return true
	}
	return false
}

// forward relays a query to the upstream servers and returns their answer, or SERVFAIL.
func (h *Handler) forward(r *dns.Msg, from net.Addr) *dns.Msg {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	network := "udp"
	if _, ok := from.(*net.TCPAddr); ok {
		network = "tcp"
	}
	for _, s := range h.Servers() {
		c := &dns.Client{Net: network, Timeout: timeout}
		in, _, err := c.Exchange(r, s)
		if err != nil {
			h.Log.Debug("dns forward failed", "server", s, "err", err)
			continue
		}
		in.Id = r.Id
		return in
	}
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	return m
}
