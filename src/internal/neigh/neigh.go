// Package neigh owns reading the kernel's neighbour table (ARP and IPv6 ND) to tell which MAC
// address a LAN client's IP currently has, so access rules can name devices by MAC.
//
//	macs := neigh.New(30 * time.Second) // once, at start
//	mac := macs.Lookup(clientIP)        // per connection; nil when the kernel does not know it
//
// The whole table is dumped at most once per maxAge. An address the last dump did not hold is
// asked of the kernel on its own (one route get and one neighbour get, not a dump) before
// Lookup answers nil: a device that appeared after the dump is always found when the kernel
// knows it, so a rule naming its MAC cannot be missed because the snapshot was older than the
// device. A failed get is remembered for a second per address, so a flood of unknown sources
// costs at most one get per address per second, one at a time.
//
// It must not decide anything from the MAC (that is access's job), trust it as an identity
// beyond the LAN segment, or send packets to provoke ARP/ND.
package neigh

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Table is a cached copy of the kernel's neighbour table. It is safe for concurrent use.
type Table struct {
	maxAge time.Duration
	dump   func() ([]byte, error) // a raw RTM_GETNEIGH dump; replaced in tests
	now    func() time.Time

	get func(netip.Addr) ([]byte, error) // the raw reply to a targeted RTM_GETNEIGH; replaced in tests

	mu  sync.Mutex // serialises dumps; Lookup on a fresh hit never takes it
	cur atomic.Pointer[snapshot]

	gmu     sync.Mutex // serialises targeted gets; guards learned and failed
	learned map[netip.Addr]learnt
	failed  map[netip.Addr]time.Time // when a get last found nothing
}

// learnt is a MAC found by a targeted get, good until the next dump or maxAge.
type learnt struct {
	mac net.HardwareAddr
	at  time.Time
}

type snapshot struct {
	at   time.Time
	macs map[netip.Addr]net.HardwareAddr
	err  error // of the dump that made it, when it failed and kept the previous macs
}

// missInterval is how long a get that found nothing is believed for that address.
const missInterval = time.Second

// maxRemembered bounds the learned and failed maps against a flood of source addresses.
const maxRemembered = 4096

// New returns a table that dumps the kernel's at most once per maxAge (at least a second), and
// asks for a missing address on its own at most once per second. Nothing is read until the
// first Lookup.
func New(maxAge time.Duration) *Table {
	if maxAge < missInterval {
		maxAge = missInterval
	}
	return &Table{maxAge: maxAge, dump: dumpNeighbours, get: getNeighbour, now: time.Now}
}

// Lookup returns the MAC address the kernel holds for ip (IPv4, IPv4-mapped IPv6 or IPv6; an
// IPv6 zone is ignored), or nil when it holds none: nil means the kernel was asked for this
// address within the last second and had no usable entry, never only that a cached dump
// lacked it. The returned slice is shared: do not modify it. A hit on a fresh table does not
// allocate. A nil *Table knows nothing.
func (t *Table) Lookup(ip netip.Addr) net.HardwareAddr {
	if t == nil || !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap().WithZone("")
	now := t.now()
	s := t.cur.Load()
	if s == nil || now.Sub(s.at) >= t.maxAge {
		s = t.refresh(now, s)
	}
	if mac, ok := s.macs[ip]; ok {
		return mac
	}
	return t.miss(now, ip, s)
}

// miss asks the kernel for ip alone. Loopback and other addresses that have no neighbour
// entry by nature are not asked. When the kernel cannot answer a targeted get (an old kernel,
// no rtnetlink), a dump taken at most once per second stands in for it.
func (t *Table) miss(now time.Time, ip netip.Addr, s *snapshot) net.HardwareAddr {
	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
		return nil
	}
	t.gmu.Lock()
	defer t.gmu.Unlock()
	if e, ok := t.learned[ip]; ok && now.Sub(e.at) < t.maxAge && !e.at.Before(s.at) {
		return e.mac
	}
	if at, ok := t.failed[ip]; ok && now.Sub(at) < missInterval {
		return nil
	}
	raw, err := t.get(ip)
	var es []entry
	if err == nil {
		es, err = parseDump(raw, nil)
	}
	if err != nil && !isNotFound(err) {
		if now.Sub(s.at) >= missInterval {
			s = t.refresh(now, s)
		}
		if mac, ok := s.macs[ip]; ok {
			return mac
		}
	}
	for _, e := range es {
		if e.ip == ip {
			mac := net.HardwareAddr(e.mac[:])
			remember(&t.learned, ip, learnt{mac: mac, at: now})
			delete(t.failed, ip)
			return mac
		}
	}
	remember(&t.failed, ip, now)
	return nil
}

// remember puts v under ip in *m, making the map on first use and emptying it when it is full.
func remember[V any](m *map[netip.Addr]V, ip netip.Addr, v V) {
	if *m == nil || len(*m) >= maxRemembered {
		*m = make(map[netip.Addr]V)
	}
	(*m)[ip] = v
}

// Err is the error of the last dump, nil when it succeeded. A failed dump keeps serving what
// the previous one read.
func (t *Table) Err() error {
	if s := t.cur.Load(); s != nil {
		return s.err
	}
	return nil
}

// refresh dumps the kernel's table unless another caller replaced seen while we waited.
func (t *Table) refresh(now time.Time, seen *snapshot) *snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.cur.Load(); s != seen {
		return s
	}
	s := &snapshot{at: now}
	raw, err := t.dump()
	var es []entry
	if err == nil {
		es, err = parseDump(raw, nil)
	}
	if err != nil {
		s.err = err
		if seen != nil {
			s.macs = seen.macs
		}
	} else {
		s.macs = index(es)
	}
	t.cur.Store(s)
	return s
}

// index builds the lookup map, all MACs in one backing array. When an address appears on two
// interfaces, a confirmed entry (reachable, permanent, no-ARP) beats an unconfirmed one.
func index(es []entry) map[netip.Addr]net.HardwareAddr {
	macs := make(map[netip.Addr]net.HardwareAddr, len(es))
	confirmed := make(map[netip.Addr]bool, len(es))
	back := make([]byte, 6*len(es))
	for i, e := range es {
		if _, dup := macs[e.ip]; dup && (confirmed[e.ip] || !e.confirmed()) {
			continue
		}
		mac := back[6*i : 6*i+6 : 6*i+6]
		copy(mac, e.mac[:])
		macs[e.ip] = mac
		confirmed[e.ip] = e.confirmed()
	}
	return macs
}
