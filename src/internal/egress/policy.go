package egress

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRefused is wrapped by the error for a name that resolved only to addresses a provider must
// not have: loopback, private (RFC 1918, fc00::/7), link-local, CGNAT (100.64.0.0/10),
// unspecified, multicast or broadcast, or an address of this router. Dialing those would loop
// back into the relay or open a proxy into the LAN. Dialer.AllowPrivate lifts the check.
var ErrRefused = errors.New("address refused (a loop or a way into the LAN; allow_private permits it)")

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8") // Linux connects 0.x.x.x to the host itself
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	nat64       = netip.MustParsePrefix("64:ff9b::/96") // well-known prefix; judge the IPv4 inside
	broadcast   = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// refusal says why a resolved address must not be dialed, or "" when it may be.
func refusal(ip netip.Addr) string {
	if why := class(ip); why != "" {
		return why
	}
	if local.has(ip.Unmap(), time.Now()) {
		return "an address of this router"
	}
	return ""
}

// class is the fixed part of the policy: it depends on the address alone.
func class(ip netip.Addr) string {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast():
		return "multicast"
	case ip == broadcast:
		return "broadcast"
	case cgnat.Contains(ip):
		return "CGNAT"
	}
	return ""
}

// localCache is the router's own addresses (its WAN address included: dialing it would reach
// the relay again), refreshed at most once per ttl by whichever dial finds it stale.
type localCache struct {
	ttl  time.Duration
	load func() ([]netip.Addr, error)

	mu  sync.Mutex // serialises refreshes; readers never take it
	cur atomic.Pointer[localSnap]
}

type localSnap struct {
	at    time.Time
	addrs []netip.Addr
}

var local = &localCache{ttl: 30 * time.Second, load: interfaceAddrs}

func (l *localCache) has(ip netip.Addr, now time.Time) bool {
	s := l.cur.Load()
	if s == nil || now.Sub(s.at) > l.ttl {
		s = l.refresh(now)
	}
	for _, a := range s.addrs {
		if a == ip {
			return true
		}
	}
	return false
}

func (l *localCache) refresh(now time.Time) *localSnap {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur.Load()
	if old != nil && now.Sub(old.at) <= l.ttl {
		return old // another dial refreshed it while we waited
	}
	addrs, err := l.load()
	if err != nil && old != nil {
		addrs = old.addrs // keep what we knew; try again after ttl
	}
	s := &localSnap{at: now, addrs: addrs}
	l.cur.Store(s)
	return s
}

func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}
