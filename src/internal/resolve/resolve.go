// Package resolve finds the providers' real addresses by asking upstream DNS servers directly.
//
// It must not use the system resolver: on the router that is dnsmasq, which forwards the AI
// names to airelay itself and would answer with the router's own address (a loop). Answers are
// cached by their TTL (bounded), and concurrent lookups of one name share one query. This package
// decides nothing about which addresses are acceptable; the egress dialer does.
package resolve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Files read, in order, for upstream servers when none are configured: OpenWrt's WAN resolvers,
// then the system's.
var DefaultFiles = []string{"/tmp/resolv.conf.d/resolv.conf.auto", "/tmp/resolv.conf.auto", "/etc/resolv.conf"}

const (
	minTTL     = 5 * time.Second
	maxTTL     = 10 * time.Minute
	negTTL     = 5 * time.Second
	maxEntries = 1024
	rescan     = 5 * time.Second // how often the resolv.conf files are looked at again
)

// ErrNoServers means no upstream server is configured or discovered.
var ErrNoServers = errors.New("no upstream DNS server: set 'list resolver' in the main section (the system's resolvers are loopback or missing)")

// Resolver looks up A and AAAA records on upstream servers.
type Resolver struct {
	// Servers returns the configured servers (host:port); empty means discover from Files.
	Servers func() []string
	Files   []string
	Timeout time.Duration // per query; 0 → 2s

	mu       sync.Mutex
	cache    map[string]*entry
	disc     []string
	discAt   time.Time
	discStat []fileStamp
}

type entry struct {
	addrs   []netip.Addr
	err     error
	expires time.Time
	done    chan struct{} // closed when the lookup finished
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// LookupNetIP returns host's addresses, IPv4 first. It allocates only on a cache miss.
func (r *Resolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	now := time.Now()
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]*entry{}
	}
	e := r.cache[host]
	if e != nil && e.done != nil {
		select {
		case <-e.done:
			if now.After(e.expires) {
				e = nil
			}
		default: // in flight: wait for it below
		}
	}
	if e == nil {
		if len(r.cache) >= maxEntries {
			r.evictLocked(now)
		}
		e = &entry{done: make(chan struct{})}
		r.cache[host] = e
		r.mu.Unlock()
		// The query runs on its own so that this caller, like the others waiting for the same
		// name, can give up when its context ends while the answer still lands in the cache.
		go func() {
			var ttl time.Duration
			e.addrs, ttl, e.err = r.lookup(host)
			if e.err != nil {
				ttl = negTTL
			}
			e.expires = time.Now().Add(ttl)
			close(e.done)
		}()
	} else {
		r.mu.Unlock()
	}
	select {
	case <-e.done:
		return e.addrs, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Resolver) evictLocked(now time.Time) {
	for k, e := range r.cache {
		select {
		case <-e.done:
			if now.After(e.expires) {
				delete(r.cache, k)
			}
		default:
		}
	}
	if len(r.cache) >= maxEntries { // still full: names chosen by clients (wildcards) can do that
		for k, e := range r.cache {
			select {
			case <-e.done:
				delete(r.cache, k)
			default:
			}
		}
	}
}

// lookup queries A and AAAA at once and returns the addresses with how long to cache them.
func (r *Resolver) lookup(host string) ([]netip.Addr, time.Duration, error) {
	servers := r.servers()
	if len(servers) == 0 {
		return nil, 0, ErrNoServers
	}
	type result struct {
		addrs []netip.Addr
		ttl   uint32
		err   error
	}
	var v4, v6 result
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); v4.addrs, v4.ttl, v4.err = r.query(servers, host, dns.TypeA) }()
	go func() { defer wg.Done(); v6.addrs, v6.ttl, v6.err = r.query(servers, host, dns.TypeAAAA) }()
	wg.Wait()
	addrs := append(v4.addrs, v6.addrs...)
	if len(addrs) == 0 {
		err := v4.err
		if err == nil {
			err = v6.err
		}
		if err == nil {
			err = fmt.Errorf("%s: no address", host)
		}
		return nil, 0, err
	}
	ttl := v4.ttl
	if ttl == 0 || v6.ttl != 0 && v6.ttl < ttl {
		ttl = v6.ttl
	}
	return addrs, min(max(time.Duration(ttl)*time.Second, minTTL), maxTTL), nil
}

// query asks each server in turn until one gives a usable answer.
func (r *Resolver) query(servers []string, host string, qtype uint16) ([]netip.Addr, uint32, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), qtype)
	m.SetEdns0(1232, false)
	var lastErr error
	for _, s := range servers {
		c := &dns.Client{Net: "udp", Timeout: timeout}
		in, _, err := c.Exchange(m, s)
		if err == nil && in.Truncated {
			c.Net = "tcp"
			in, _, err = c.Exchange(m, s)
		}
		if err != nil {
			lastErr = fmt.Errorf("%s: asking %s: %w", host, s, err)
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, 0, fmt.Errorf("%s: no such name (NXDOMAIN from %s)", host, s)
		default:
			lastErr = fmt.Errorf("%s: %s answered %s", host, s, dns.RcodeToString[in.Rcode])
			continue
		}
		var addrs []netip.Addr
		var ttl uint32
		for _, rr := range in.Answer {
			var a netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(v.A.To4())
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(v.AAAA)
			default:
				continue // CNAME chain: the addresses of its target follow
			}
			if !a.IsValid() || rr.Header().Rrtype != qtype {
				continue
			}
			if ttl == 0 || rr.Header().Ttl < ttl {
				ttl = rr.Header().Ttl
			}
			addrs = append(addrs, a)
		}
		return addrs, ttl, nil
	}
	return nil, 0, lastErr
}

// Upstreams returns the servers lookups use: the configured ones, or those discovered.
func (r *Resolver) Upstreams() []string { return r.servers() }

// servers returns the configured servers, or those discovered from the files.
func (r *Resolver) servers() []string {
	if r.Servers != nil {
		if s := r.Servers(); len(s) > 0 {
			return s
		}
	}
	files := r.Files
	if files == nil {
		files = DefaultFiles
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.discAt) < rescan && r.discAt != (time.Time{}) {
		return r.disc
	}
	r.discAt = time.Now()
	stamps := make([]fileStamp, len(files))
	for i, f := range files {
		if st, err := os.Stat(f); err == nil {
			stamps[i] = fileStamp{st.ModTime(), st.Size()}
		}
	}
	if r.disc != nil && equalStamps(stamps, r.discStat) {
		return r.disc
	}
	r.discStat = stamps
	r.disc = nil
	for _, f := range files {
		if s := readServers(f); len(s) > 0 {
			r.disc = s
			break
		}
	}
	return r.disc
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// readServers returns the non-loopback nameservers of a resolv.conf file, as host:port.
func readServers(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil || a.IsLoopback() || a.IsUnspecified() {
			continue // loopback is the router's own dnsmasq: asking it would loop
		}
		out = append(out, net.JoinHostPort(a.String(), "53"))
	}
	return out
}
