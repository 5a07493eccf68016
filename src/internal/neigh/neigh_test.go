package neigh

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fake is a Table over a canned dump and a hand-moved clock.
type fake struct {
	t     *Table
	dumps int
	raw   []byte
	err   error
	clock time.Time
}

func newFake(maxAge time.Duration, raw []byte) *fake {
	f := &fake{raw: raw, clock: time.Unix(1000, 0)}
	f.t = New(maxAge)
	f.t.dump = func() ([]byte, error) { f.dumps++; return f.raw, f.err }
	f.t.now = func() time.Time { return f.clock }
	return f
}

func TestLookup(t *testing.T) {
	f := newFake(30*time.Second, concat(
		neighMsg(afInet, nudReachable, "192.168.1.7", mac7),
		neighMsg(afInet6, nudReachable, "fe80::8", mac8), done))
	tb := f.t
	for _, tc := range []struct {
		ip   string
		want net.HardwareAddr
	}{
		{"192.168.1.7", mac7},
		{"::ffff:192.168.1.7", mac7},
		{"fe80::8", mac8},
		{"fe80::8%br-lan", mac8},
		{"192.168.1.9", nil},
	} {
		if got := tb.Lookup(netip.MustParseAddr(tc.ip)); !bytes.Equal(got, tc.want) {
			t.Errorf("Lookup(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if f.dumps != 1 {
		t.Errorf("dumps = %d, want 1 (misses within a second of a dump do not dump again)", f.dumps)
	}
	if tb.Lookup(netip.Addr{}) != nil || (*Table)(nil).Lookup(netip.MustParseAddr("192.168.1.7")) != nil {
		t.Error("zero address or nil table found something")
	}
}

func TestRefreshPolicy(t *testing.T) {
	f := newFake(30*time.Second, concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	known, unknown := netip.MustParseAddr("192.168.1.7"), netip.MustParseAddr("192.168.1.9")
	step := func(d time.Duration, ip netip.Addr, wantDumps int) {
		t.Helper()
		f.clock = f.clock.Add(d)
		f.t.Lookup(ip)
		if f.dumps != wantDumps {
			t.Fatalf("after +%v lookup %s: dumps = %d, want %d", d, ip, f.dumps, wantDumps)
		}
	}
	step(0, known, 1)                      // first use dumps
	step(10*time.Second, known, 1)         // fresh hit
	step(0, unknown, 2)                    // a miss 10s after the dump dumps again
	step(500*time.Millisecond, unknown, 2) // ...but not twice in a second
	step(600*time.Millisecond, unknown, 3)
	step(29*time.Second, known, 3) // hits never dump before maxAge
	step(time.Second, known, 4)    // maxAge passed

	// A device that appears is found at the next miss-driven dump.
	f.raw = concat(neighMsg(afInet, nudReachable, "192.168.1.9", mac8), done)
	f.clock = f.clock.Add(2 * time.Second)
	if got := f.t.Lookup(unknown); !bytes.Equal(got, mac8) {
		t.Fatalf("new neighbour not found after a miss: %v", got)
	}

	// A failed dump keeps what the last good one read and says why.
	f.err = errors.New("netlink: EPERM")
	f.clock = f.clock.Add(time.Minute)
	if got := f.t.Lookup(unknown); !bytes.Equal(got, mac8) || f.t.Err() == nil {
		t.Fatalf("after a failed dump: Lookup = %v, Err = %v", got, f.t.Err())
	}
}

func TestLookupHitDoesNotAllocate(t *testing.T) {
	f := newFake(time.Hour, concat(
		neighMsg(afInet, nudReachable, "192.168.1.7", mac7),
		neighMsg(afInet6, nudReachable, "2001:db8::8", mac8), done))
	v4, v6 := netip.MustParseAddr("192.168.1.7"), netip.MustParseAddr("2001:db8::8")
	f.t.Lookup(v4)
	if n := testing.AllocsPerRun(1000, func() { f.t.Lookup(v4); f.t.Lookup(v6) }); n != 0 {
		t.Errorf("Lookup on a hit allocates %v times", n)
	}
}

func TestDuplicatePrefersConfirmed(t *testing.T) {
	m := index([]entry{
		{ip: netip.MustParseAddr("192.168.1.7"), mac: [6]byte(mac7), state: 0x04}, // stale
		{ip: netip.MustParseAddr("192.168.1.7"), mac: [6]byte(mac8), state: nudReachable},
		{ip: netip.MustParseAddr("192.168.1.7"), mac: [6]byte{2, 0, 0, 0, 0, 9}, state: 0x04},
	})
	if got := m[netip.MustParseAddr("192.168.1.7")]; !bytes.Equal(got, mac8) {
		t.Errorf("duplicate resolved to %v, want the reachable %v", got, net.HardwareAddr(mac8))
	}
}

func BenchmarkLookupHit(b *testing.B) {
	f := newFake(time.Hour, concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	ip := netip.MustParseAddr("192.168.1.7")
	b.ReportAllocs()
	for b.Loop() {
		f.t.Lookup(ip)
	}
}
