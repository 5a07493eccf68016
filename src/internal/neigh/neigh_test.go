package neigh

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fake is a Table over a canned dump, canned targeted gets, a queue of announcements and a
// hand-moved clock.
type fake struct {
	t       *Table
	dumps   int
	raw     []byte
	err     error
	gets    int
	getErr  []byte                // what every targeted get answers when set
	one     map[netip.Addr][]byte // what a targeted get answers; missing: ENOENT
	joins   int
	joinErr error
	q       *queue
	clock   time.Time
}

// queue is a fake subscription: the messages the kernel announced, not yet read.
type queue struct {
	msgs    [][]byte
	overrun bool  // the next read reports lost messages
	err     error // every read fails so
	reads   int
	closed  bool
}

func (q *queue) read(b []byte) (int, error) {
	q.reads++
	switch {
	case q.err != nil:
		return 0, q.err
	case q.overrun:
		q.overrun = false
		return 0, errOverrun
	case len(q.msgs) == 0:
		return 0, errWouldBlock
	}
	n := copy(b, q.msgs[0])
	q.msgs = q.msgs[1:]
	return n, nil
}

func (q *queue) close() error { q.closed = true; return nil }

// announce queues one message per argument, as the kernel sends them: one change per read.
func (f *fake) announce(msgs ...[]byte) { f.q.msgs = append(f.q.msgs, msgs...) }

func newFake(raw []byte) *fake {
	f := &fake{raw: raw, clock: time.Unix(1000, 0), one: map[netip.Addr][]byte{}}
	f.t = New()
	f.t.open = func() (events, error) {
		f.joins++
		if f.joinErr != nil {
			return nil, f.joinErr
		}
		f.q = &queue{}
		return f.q, nil
	}
	f.t.dump = func() ([]byte, error) { f.dumps++; return f.raw, f.err }
	f.t.get = func(ip netip.Addr) ([]byte, error) {
		f.gets++
		if f.getErr != nil {
			return f.getErr, nil
		}
		if r, ok := f.one[ip]; ok {
			return r, nil
		}
		return errMsg(2), nil // what the kernel sends for a missing entry: NLMSG_ERROR -ENOENT
	}
	f.t.now = func() time.Time { return f.clock }
	return f
}

// lookup looks ip up and fails unless the answer is want (nil: no MAC).
func (f *fake) lookup(t *testing.T, ip string, want []byte) {
	t.Helper()
	if got := f.t.Lookup(netip.MustParseAddr(ip)); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
		t.Fatalf("Lookup(%s) = %v, want %v", ip, got, net.HardwareAddr(want))
	}
}

func (f *fake) counts(t *testing.T, when string, dumps, gets int) {
	t.Helper()
	if f.dumps != dumps || f.gets != gets {
		t.Fatalf("%s: dumps, gets = %d, %d; want %d, %d", when, f.dumps, f.gets, dumps, gets)
	}
}

var mac9 = []byte{2, 0, 0, 0, 0, 9}

func TestLookup(t *testing.T) {
	f := newFake(concat(
		neighMsg(afInet, nudReachable, "192.168.1.7", mac7),
		neighMsg(afInet6, nudReachable, "fe80::8", mac8), done))
	for _, tc := range []struct {
		ip   string
		want []byte
	}{
		{"192.168.1.7", mac7},
		{"::ffff:192.168.1.7", mac7},
		{"fe80::8", mac8},
		{"fe80::8%br-lan", mac8},
		{"192.168.1.9", nil},
		{"127.0.0.1", nil},
	} {
		f.lookup(t, tc.ip, tc.want)
	}
	// The mirror is the kernel's table: a miss asks nothing more of the kernel.
	f.counts(t, "after six lookups", 1, 0)
	if f.joins != 1 || f.q.reads != 6 {
		t.Errorf("joins, reads = %d, %d; want 1, 6 (two around the first lookup's dump, one per later lookup, none for loopback)", f.joins, f.q.reads)
	}
	if f.t.Lookup(netip.Addr{}) != nil || (*Table)(nil).Lookup(netip.MustParseAddr("192.168.1.7")) != nil {
		t.Error("zero address or nil table found something")
	}
}

// TestAddressChangesHands is issue 19's point 4: the address an allowed device used is taken
// by a denied one (and back). The kernel announces the new MAC when it learns it; the very
// next Lookup answers with it, however fresh the mirror was, without a dump or a get.
func TestAddressChangesHands(t *testing.T) {
	allowed, denied := mac7, mac8
	f := newFake(concat(neighMsg(afInet, nudReachable, "192.168.1.100", allowed), done))
	f.lookup(t, "192.168.1.100", allowed)
	f.clock = f.clock.Add(100 * time.Millisecond)

	f.announce(neighMsg(afInet, nudStale, "192.168.1.100", denied)) // the denied device's ARP request
	f.lookup(t, "192.168.1.100", denied)
	f.announce(neighMsg(afInet, nudReachable, "192.168.1.100", allowed))
	f.lookup(t, "192.168.1.100", allowed)

	// Through FAILED and gone, then a new holder: never the previous MAC.
	f.announce(neighMsg(afInet, nudFailed, "192.168.1.100", nil))
	f.lookup(t, "192.168.1.100", nil)
	f.announce(neighMsg(afInet, nudStale, "192.168.1.100", denied))
	f.lookup(t, "192.168.1.100", denied)
	f.announce(nlmsg(rtmDelNeigh, ndmsg(afInet, nudStale, rta(ndaDst, []byte{192, 168, 1, 100}), rta(ndaLLAddr, denied))))
	f.lookup(t, "192.168.1.100", nil)

	// IPv6 the same way, several changes queued between two lookups: the last one counts.
	f.announce(
		neighMsg(afInet6, nudReachable, "2001:db8::64", allowed),
		neighMsg(afInet6, nudStale, "2001:db8::64", denied),
		neighMsg(afInet6, nudDelay, "2001:db8::64", denied))
	f.lookup(t, "2001:db8::64", denied)
	f.counts(t, "after the changes", 1, 0)
}

// TestAnnouncementsIgnored: a bridge's forwarding database shares the group, and proxy
// entries carry no device: neither changes an answer. An entry on another interface is its
// own; a confirmed one is preferred.
func TestAnnouncementsIgnored(t *testing.T) {
	f := newFake(concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	f.lookup(t, "192.168.1.7", mac7)
	fdb := nlmsg(rtmNewNeigh, ndmsg(7 /* AF_BRIDGE */, nudReachable, rta(ndaLLAddr, mac8)))
	proxy := nlmsg(rtmDelNeigh, ndmsgFlags(afInet, 0, ntfProxy, rta(ndaDst, []byte{192, 168, 1, 7})))
	other := nlmsg(rtmNewNeigh, ndmsgIf(afInet, nudStale, 9, rta(ndaDst, []byte{192, 168, 1, 7}), rta(ndaLLAddr, mac9)))
	f.announce(fdb, proxy, other)
	f.lookup(t, "192.168.1.7", mac7) // reachable on ifindex 3 beats stale on 9
	f.announce(nlmsg(rtmDelNeigh, ndmsg(afInet, nudReachable, rta(ndaDst, []byte{192, 168, 1, 7}))))
	f.lookup(t, "192.168.1.7", mac9) // ifindex 3's entry went; 9's stays
	f.counts(t, "after the announcements", 1, 0)
}

// TestMACNotChangedInPlace: a caller keeps the slice Lookup returned; a later change of the
// address's MAC must not rewrite it.
func TestMACNotChangedInPlace(t *testing.T) {
	f := newFake(concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	kept := f.t.Lookup(netip.MustParseAddr("192.168.1.7"))
	f.announce(neighMsg(afInet, nudStale, "192.168.1.7", mac8))
	f.lookup(t, "192.168.1.7", mac8)
	kept2 := f.t.Lookup(netip.MustParseAddr("192.168.1.7"))
	f.announce(neighMsg(afInet, nudStale, "192.168.1.7", mac9))
	f.lookup(t, "192.168.1.7", mac9)
	if !bytes.Equal(kept, mac7) || !bytes.Equal(kept2, mac8) {
		t.Errorf("returned MACs changed under their holders: %v, %v", kept, kept2)
	}
}

// TestLostAnnouncementsDumpAgain: when the kernel could not queue a change (the socket's
// buffer was full, or a read was cut), the next Lookup dumps before it answers; changes read
// before that dump are dropped (the dump holds them), changes after it are applied.
func TestLostAnnouncementsDumpAgain(t *testing.T) {
	f := newFake(concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	f.lookup(t, "192.168.1.7", mac7)
	f.announce(neighMsg(afInet, nudStale, "192.168.1.7", mac9)) // before the loss: older than the dump
	f.q.overrun = true
	f.raw = concat(neighMsg(afInet, nudStale, "192.168.1.7", mac8), done)
	f.lookup(t, "192.168.1.7", mac8)
	f.counts(t, "after an overrun", 2, 0)

	// A read that fills the buffer may have been cut: the same.
	f.announce(make([]byte, msgBuf))
	f.raw = concat(neighMsg(afInet, nudStale, "192.168.1.7", mac9), done)
	f.lookup(t, "192.168.1.7", mac9)
	f.counts(t, "after a cut read", 3, 0)

	// A message that does not parse: the same.
	f.announce([]byte{1, 2, 3})
	f.raw = concat(neighMsg(afInet, nudStale, "192.168.1.7", mac7), done)
	f.lookup(t, "192.168.1.7", mac7)
	f.counts(t, "after a bad message", 4, 0)
}

// TestCannotFollow: where the table cannot join the group, or a dump fails, each Lookup asks
// the kernel for its address alone, so the answer is still the kernel's MAC of now; it
// tries again later.
func TestCannotFollow(t *testing.T) {
	f := newFake(concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	f.joinErr = errors.New("netlink: EPERM")
	f.one[netip.MustParseAddr("192.168.1.7")] = concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done)
	f.lookup(t, "192.168.1.7", mac7)
	f.one[netip.MustParseAddr("192.168.1.7")] = concat(neighMsg(afInet, nudStale, "192.168.1.7", mac8), done)
	f.lookup(t, "192.168.1.7", mac8)
	f.lookup(t, "192.168.1.9", nil)
	f.counts(t, "not joined", 0, 3)
	if f.joins != 1 || f.t.Err() == nil {
		t.Fatalf("joins = %d, Err = %v; want 1 attempt within %v and the error", f.joins, f.t.Err(), retryJoin)
	}

	// Joined later; the dump fails: still asked address by address, the dump retried after a second.
	f.joinErr, f.err = nil, errors.New("netlink: dump interrupted")
	f.clock = f.clock.Add(retryJoin)
	f.lookup(t, "192.168.1.7", mac8)
	f.lookup(t, "192.168.1.7", mac8)
	f.counts(t, "joined, dump failing", 1, 5)
	f.err = nil
	f.clock = f.clock.Add(retryDump)
	f.lookup(t, "192.168.1.7", mac7) // the dump's answer now
	f.counts(t, "joined, dump done", 2, 5)
	if f.t.Err() != nil {
		t.Errorf("Err after a good dump = %v", f.t.Err())
	}

	// A read that fails otherwise: the socket is closed and joined again later.
	f.q.err = errors.New("netlink: EBADF")
	old := f.q
	f.lookup(t, "192.168.1.7", mac8)
	if !old.closed || f.gets != 6 {
		t.Fatalf("after a failed read: closed %v, gets %d", old.closed, f.gets)
	}
	f.clock = f.clock.Add(retryJoin)
	f.lookup(t, "192.168.1.7", mac7)
	if f.joins != 3 || f.dumps != 3 {
		t.Errorf("joins, dumps = %d, %d; want 3, 3", f.joins, f.dumps)
	}

	if err := f.t.Close(); err != nil || !f.q.closed {
		t.Fatalf("Close = %v, closed %v", err, f.q.closed)
	}
	f.lookup(t, "192.168.1.7", mac8) // asked alone after Close
}

// TestGetFailureFallsBackToDump: where the kernel answers neither a subscription nor a
// targeted get, a dump at most a second old answers instead of "unknown".
func TestGetFailureFallsBackToDump(t *testing.T) {
	f := newFake(concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	f.joinErr = errors.New("no netlink groups here")
	f.getErr = errMsg(95) // EOPNOTSUPP
	f.lookup(t, "192.168.1.7", mac7)
	f.raw = concat(neighMsg(afInet, nudReachable, "192.168.1.66", mac8), done)
	f.lookup(t, "192.168.1.66", nil) // the dump is less than a second old
	f.clock = f.clock.Add(retryDump)
	f.lookup(t, "192.168.1.66", mac8)
	f.counts(t, "last resort", 2, 3)
}

func TestLookupDoesNotAllocate(t *testing.T) {
	f := newFake(concat(
		neighMsg(afInet, nudReachable, "192.168.1.7", mac7),
		neighMsg(afInet6, nudReachable, "2001:db8::8", mac8), done))
	v4, v6, unknown := netip.MustParseAddr("192.168.1.7"), netip.MustParseAddr("2001:db8::8"), netip.MustParseAddr("192.168.1.9")
	f.t.Lookup(v4)
	if n := testing.AllocsPerRun(1000, func() { f.t.Lookup(v4); f.t.Lookup(v6); f.t.Lookup(unknown) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
	// A change of state that keeps the MAC allocates nothing either.
	stale, reachable := neighMsg(afInet, nudStale, "192.168.1.7", mac7), neighMsg(afInet, nudReachable, "192.168.1.7", mac7)
	queued := make([][]byte, 2)
	if n := testing.AllocsPerRun(1000, func() {
		queued[0], queued[1] = stale, reachable
		f.q.msgs = queued
		f.t.Lookup(v4)
	}); n != 0 {
		t.Errorf("Lookup after a state change allocates %v times", n)
	}
}

func TestDuplicatePrefersConfirmed(t *testing.T) {
	ip := netip.MustParseAddr("192.168.1.7")
	m := build([]entry{
		{ip: ip, ifindex: 3, mac: [6]byte(mac7), state: nudStale},
		{ip: ip, ifindex: 4, mac: [6]byte(mac8), state: nudReachable},
		{ip: ip, ifindex: 5, mac: [6]byte(mac9), state: nudStale},
	})
	if got := pick(m[ip]); !bytes.Equal(got, mac8) {
		t.Errorf("duplicate resolved to %v, want the reachable %v", got, net.HardwareAddr(mac8))
	}
	if got := pick(m[ip][:1]); !bytes.Equal(got, mac7) || pick(nil) != nil {
		t.Errorf("single entry resolved to %v", got)
	}
}

// BenchmarkLookup is a Lookup with nothing announced since the one before: a map hit and the
// fake's read. BenchmarkKernelLookup measures the real read.
func BenchmarkLookup(b *testing.B) {
	f := newFake(concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	ip := netip.MustParseAddr("192.168.1.7")
	f.t.Lookup(ip)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.t.Lookup(ip)
	}
}
