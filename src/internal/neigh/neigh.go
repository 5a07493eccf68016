// Package neigh owns reading the kernel's neighbour table (ARP and IPv6 ND) to tell which MAC
// address a LAN client's IP currently has, so access rules can name devices by MAC.
//
//	macs := neigh.New(30 * time.Second) // once, at start
//	mac := macs.Lookup(clientIP)        // per connection; nil when the router does not know it
//
// It must not decide anything from the MAC (that is access's job), trust it as an identity
// beyond the LAN segment, send packets to provoke ARP/ND, or read the table on every lookup:
// a dump is taken at most once per maxAge, and on a miss at most once per second.
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

	mu  sync.Mutex // serialises dumps; Lookup on a fresh hit never takes it
	cur atomic.Pointer[snapshot]
}

type snapshot struct {
	at   time.Time
	macs map[netip.Addr]net.HardwareAddr
	err  error // of the dump that made it, when it failed and kept the previous macs
}

// missInterval bounds the dumps a stream of unknown addresses can cause.
const missInterval = time.Second

// New returns a table that dumps the kernel's at most once per maxAge (at least a second), and
// on a miss at most once per second. Nothing is read until the first Lookup.
func New(maxAge time.Duration) *Table {
	if maxAge < missInterval {
		maxAge = missInterval
	}
	return &Table{maxAge: maxAge, dump: dumpNeighbours, now: time.Now}
}

// Lookup returns the MAC address the kernel holds for ip (IPv4, IPv4-mapped IPv6 or IPv6; an
// IPv6 zone is ignored), or nil when it holds none. The returned slice is shared: do not
// modify it. A hit on a fresh table does not allocate. A nil *Table knows nothing.
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
	if now.Sub(s.at) < missInterval {
		return nil
	}
	return t.refresh(now, s).macs[ip]
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
