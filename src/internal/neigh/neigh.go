// Package neigh owns reading the kernel's neighbour table (ARP and IPv6 ND) to tell which MAC
// address a LAN client's IP has now, so access rules can name devices by MAC.
//
//	macs := neigh.New()          // once, at start
//	mac := macs.Lookup(clientIP) // per new connection; nil when the kernel holds no MAC for it
//
// The table mirrors the kernel's and follows the kernel's own announcements: at first use it
// joins rtnetlink's neighbour group (RTNLGRP_NEIGH) and then dumps the table once. Every
// Lookup first reads what the kernel announced since the one before (a non-blocking read that
// usually finds nothing), so it answers with the MAC the kernel holds at that moment. When an
// address changes hands, the kernel cannot complete a TCP handshake with the new holder before
// its entry holds the new holder's MAC (the SYN-ACK goes to that MAC), and it announces the
// change as it makes it: a new connection is decided on its own device's MAC, never on the
// previous holder's. When announcements were lost (the socket's buffer overflowed while no
// connection came), the table is dumped again before the next answer.
//
// Where the kernel cannot be followed (no subscription, or a dump failed), each Lookup asks it
// for that address alone: a route get and a neighbour get. Only where that fails too (kernels
// without single gets) does a dump taken at most once a second answer.
//
// It must not decide anything from the MAC (that is access's job), trust it as an identity
// beyond the LAN segment, or send packets to provoke ARP/ND.
package neigh

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Table is the kernel's neighbour table as of the last Lookup. It is safe for concurrent use.
type Table struct {
	open func() (events, error)           // joins the neighbour group; replaced in tests
	dump func() ([]byte, error)           // a raw RTM_GETNEIGH dump; replaced in tests
	get  func(netip.Addr) ([]byte, error) // the raw reply to a targeted RTM_GETNEIGH; replaced in tests
	now  func() time.Time

	mu      sync.Mutex // one Lookup at a time: it reads the socket and changes the mirror
	ev      events     // nil: not following the kernel
	closed  bool
	exact   bool                  // macs holds the kernel's table up to the last message read
	macs    map[netip.Addr][]held // the mirror: an address's entries, one per interface
	buf     []byte                // one announcement
	parsed  []entry               // reused by every parse
	retryAt time.Time             // not before then: join again (ev nil) or dump again (not exact)
	err     error

	last snapshot // the last resort's dump, for kernels that answer no targeted get
}

// held is the kernel's entry for an address on one interface. mac is never changed in place:
// a Lookup's caller may keep it.
type held struct {
	ifindex int32
	state   uint16
	mac     net.HardwareAddr
}

func (h held) confirmed() bool { return h.state&(nudReachable|nudPermanent|nudNoARP) != 0 }

type snapshot struct {
	at   time.Time
	macs map[netip.Addr][]held
}

// events is a subscription to the kernel's neighbour changes.
type events interface {
	// read copies the next queued message into b without waiting: errWouldBlock when none
	// is queued, errOverrun when some were lost.
	read(b []byte) (int, error)
	close() error
}

var (
	errWouldBlock = errors.New("netlink: no neighbour change queued")
	errOverrun    = errors.New("netlink: neighbour changes lost (receive buffer full)")
)

const (
	// retryJoin is how long the table asks address by address after joining the neighbour
	// group failed, before it tries again.
	retryJoin = 10 * time.Second
	// retryDump is how long after a failed dump the table asks address by address, and how
	// old the last resort's dump may be.
	retryDump = time.Second
	// maxDrain bounds the changes one Lookup reads; past it, that Lookup asks for its
	// address alone and leaves the rest to the next.
	maxDrain = 1024
	// msgBuf holds any one announcement (a neighbour message is about 100 bytes); a read
	// that fills it may have been cut, and is treated as lost.
	msgBuf = 4096
)

// New returns a table that follows the kernel's. Nothing is read until the first Lookup.
func New() *Table {
	return &Table{open: openEvents, dump: dumpNeighbours, get: getNeighbour, now: time.Now}
}

// Lookup returns the MAC address the kernel holds now for ip (IPv4, IPv4-mapped IPv6 or
// IPv6; an IPv6 zone is ignored), or nil when it holds none. The returned slice is shared: do
// not modify it. A Lookup costs one non-blocking read of the subscription and does not
// allocate unless the kernel announced a new MAC since the one before. A nil *Table knows
// nothing.
func (t *Table) Lookup(ip netip.Addr) net.HardwareAddr {
	if t == nil || !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
		return nil // never in the neighbour table
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.sync(now) {
		return pick(t.macs[ip])
	}
	return t.ask(now, ip)
}

// Err is why the table last could not follow the kernel (joining, reading or dumping
// failed), nil while it does.
func (t *Table) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Close leaves the neighbour group. Lookups after Close ask the kernel address by address.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed, t.exact, t.macs = true, false, nil
	if t.ev == nil {
		return nil
	}
	err := t.ev.close()
	t.ev = nil
	return err
}

// sync reads every change the kernel announced since the last call into the mirror, and
// reports whether the mirror now is the kernel's table. It joins the neighbour group on first
// use, and dumps the table after joining and whenever announcements were lost: the dump is
// taken after every change read before it was discarded, and changes read after it are
// applied on top, so the mirror ends at the kernel's latest state whatever the order.
func (t *Table) sync(now time.Time) bool {
	if t.ev == nil {
		if t.closed || now.Before(t.retryAt) {
			return false
		}
		ev, err := t.open()
		if err != nil {
			t.err, t.retryAt = err, now.Add(retryJoin)
			return false
		}
		if t.buf == nil {
			t.buf = make([]byte, msgBuf)
		}
		t.ev, t.exact = ev, false
	}
	for range maxDrain {
		n, err := t.ev.read(t.buf)
		switch {
		case err == nil && n < len(t.buf):
			if t.exact && !t.apply(t.buf[:n]) {
				t.exact = false
			}
			continue
		case err == nil || err == errOverrun:
			t.exact = false // cut or lost: only a dump can tell what changed
			continue
		case err != errWouldBlock:
			t.ev.close()
			t.ev, t.exact, t.macs = nil, false, nil
			t.err, t.retryAt = err, now.Add(retryJoin)
			return false
		}
		// Nothing more is queued.
		if t.exact {
			return true
		}
		if now.Before(t.retryAt) {
			return false // a dump failed within the second
		}
		macs, err := t.load()
		if err != nil {
			t.err, t.retryAt = err, now.Add(retryDump)
			return false
		}
		t.macs, t.exact, t.err = macs, true, nil
		// What the kernel announced while it was dumping is read on the next turn.
	}
	return false
}

// apply puts the announced changes in b into the mirror; false when b does not parse.
func (t *Table) apply(b []byte) bool {
	es, err := parseMessages(b, t.parsed[:0])
	t.parsed = es[:0]
	if err != nil {
		return false
	}
	for _, e := range es {
		t.set(e)
	}
	return true
}

// set records one entry's new state: gone removes it; a new MAC gets a new slice.
func (t *Table) set(e entry) {
	hs := t.macs[e.ip]
	i := 0
	for i < len(hs) && hs[i].ifindex != e.ifindex {
		i++
	}
	switch {
	case e.gone && i == len(hs):
	case e.gone && len(hs) == 1:
		delete(t.macs, e.ip)
	case e.gone:
		t.macs[e.ip] = append(hs[:i:i], hs[i+1:]...)
	case i == len(hs):
		t.macs[e.ip] = append(hs, held{ifindex: e.ifindex, state: e.state, mac: newMAC(e.mac)})
	default:
		if [6]byte(hs[i].mac) != e.mac {
			hs[i].mac = newMAC(e.mac)
		}
		hs[i].state = e.state
	}
}

func newMAC(m [6]byte) net.HardwareAddr {
	b := make(net.HardwareAddr, 6)
	copy(b, m[:])
	return b
}

// load dumps the kernel's table into a new mirror.
func (t *Table) load() (map[netip.Addr][]held, error) {
	raw, err := t.dump()
	if err != nil {
		return nil, err
	}
	es, err := parseDump(raw, t.parsed[:0])
	t.parsed = es[:0]
	if err != nil {
		return nil, err
	}
	return build(es), nil
}

// build indexes a dump's entries, all MACs in one backing array.
func build(es []entry) map[netip.Addr][]held {
	macs := make(map[netip.Addr][]held, len(es))
	back := make([]byte, 6*len(es))
	for i, e := range es {
		mac := back[6*i : 6*i+6 : 6*i+6]
		copy(mac, e.mac[:])
		macs[e.ip] = append(macs[e.ip], held{ifindex: e.ifindex, state: e.state, mac: mac})
	}
	return macs
}

// pick chooses among an address's entries on several interfaces: a confirmed one (reachable,
// permanent, no-ARP) before an unconfirmed one.
func pick(hs []held) net.HardwareAddr {
	for _, h := range hs {
		if h.confirmed() {
			return h.mac
		}
	}
	if len(hs) > 0 {
		return hs[0].mac
	}
	return nil
}

// ask answers for ip alone while the mirror cannot: a targeted get, or where the kernel
// cannot answer one (an old kernel, no rtnetlink), a dump at most retryDump old.
func (t *Table) ask(now time.Time, ip netip.Addr) net.HardwareAddr {
	raw, err := t.get(ip)
	var es []entry
	if err == nil {
		es, err = parseDump(raw, t.parsed[:0])
		t.parsed = es[:0]
	}
	if err == nil || isNotFound(err) {
		for _, e := range es {
			if e.ip == ip {
				return newMAC(e.mac)
			}
		}
		return nil
	}
	if t.last.at.IsZero() || now.Sub(t.last.at) >= retryDump {
		macs, err := t.load()
		if err != nil {
			t.err = err // and no MAC for a second: a stale one could be the previous holder's
		}
		t.last = snapshot{at: now, macs: macs}
	}
	return pick(t.last.macs[ip])
}
