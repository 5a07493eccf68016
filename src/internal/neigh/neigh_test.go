package neigh

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fake is a Table over a canned dump, canned targeted gets and a hand-moved clock.
type fake struct {
	t     *Table
	dumps int
	raw   []byte
	err   error
	gets  int
	one   map[netip.Addr][]byte // what a targeted get answers; missing: ENOENT
	clock time.Time
}

func newFake(maxAge time.Duration, raw []byte) *fake {
	f := &fake{raw: raw, clock: time.Unix(1000, 0), one: map[netip.Addr][]byte{}}
	f.t = New(maxAge)
	f.t.dump = func() ([]byte, error) { f.dumps++; return f.raw, f.err }
	f.t.get = func(ip netip.Addr) ([]byte, error) {
		f.gets++
		if r, ok := f.one[ip]; ok {
			return r, nil
		}
		return errMsg(2), nil // what the kernel sends for a missing entry: NLMSG_ERROR -ENOENT
	}
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
	step := func(d time.Duration, ip netip.Addr, wantDumps, wantGets int) {
		t.Helper()
		f.clock = f.clock.Add(d)
		f.t.Lookup(ip)
		if f.dumps != wantDumps || f.gets != wantGets {
			t.Fatalf("after +%v lookup %s: dumps, gets = %d, %d; want %d, %d", d, ip, f.dumps, f.gets, wantDumps, wantGets)
		}
	}
	step(0, known, 1, 0)                      // first use dumps
	step(10*time.Second, known, 1, 0)         // fresh hit
	step(0, unknown, 1, 1)                    // a miss asks for that address alone, no dump
	step(500*time.Millisecond, unknown, 1, 1) // ...and believes "none" for a second
	step(600*time.Millisecond, unknown, 1, 2)
	step(18*time.Second, known, 1, 2) // hits never dump before maxAge (29.1s)
	step(time.Second, known, 2, 2)    // maxAge passed

	// A device that appears is found by the next get, and then without another one.
	f.one[unknown] = concat(neighMsg(afInet, nudStale, "192.168.1.9", mac8), done)
	f.clock = f.clock.Add(2 * time.Second)
	if got := f.t.Lookup(unknown); !bytes.Equal(got, mac8) {
		t.Fatalf("new neighbour not found after a miss: %v", got)
	}
	if got := f.t.Lookup(unknown); !bytes.Equal(got, mac8) || f.gets != 3 {
		t.Fatalf("learned neighbour: Lookup = %v after %d gets, want %v after 3", got, f.gets, net.HardwareAddr(mac8))
	}

	// A failed dump keeps what the last good one read and says why.
	f.err = errors.New("netlink: EPERM")
	f.clock = f.clock.Add(time.Minute)
	if got := f.t.Lookup(known); !bytes.Equal(got, mac7) || f.t.Err() == nil {
		t.Fatalf("after a failed dump: Lookup = %v, Err = %v", got, f.t.Err())
	}
}

// TestMissRightAfterDump is issue 13's fail-open: one device's lookup dumps the table, and a
// second device whose entry the kernel made a moment later connects within the same second.
// Its MAC must be found (so a rule naming it applies), not answered "unknown" from the dump.
func TestMissRightAfterDump(t *testing.T) {
	other, kid := netip.MustParseAddr("192.168.1.7"), netip.MustParseAddr("192.168.1.66")
	f := newFake(30*time.Second, concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	if got := f.t.Lookup(other); !bytes.Equal(got, mac7) {
		t.Fatalf("Lookup(other) = %v", got)
	}
	f.one[kid] = concat(neighMsg(afInet, nudReachable, "192.168.1.66", mac8), done) // the kernel learns the kid now
	f.clock = f.clock.Add(100 * time.Millisecond)
	if got := f.t.Lookup(kid); !bytes.Equal(got, mac8) {
		t.Fatalf("kid's first connection 100ms after another device's dump: Lookup = %v, want %v", got, net.HardwareAddr(mac8))
	}
	if f.dumps != 1 || f.gets != 1 {
		t.Errorf("dumps, gets = %d, %d; want 1, 1 (a targeted get, not a second dump)", f.dumps, f.gets)
	}
}

// TestGetFailureFallsBackToDump: where the kernel cannot answer a targeted get (older than
// Linux 5.0, or refused), a dump at most once a second answers instead of "unknown".
func TestGetFailureFallsBackToDump(t *testing.T) {
	kid := netip.MustParseAddr("192.168.1.66")
	f := newFake(30*time.Second, concat(neighMsg(afInet, nudReachable, "192.168.1.7", mac7), done))
	f.t.get = func(netip.Addr) ([]byte, error) { f.gets++; return errMsg(95), nil } // EOPNOTSUPP
	f.t.Lookup(netip.MustParseAddr("192.168.1.7"))
	f.raw = concat(neighMsg(afInet, nudReachable, "192.168.1.66", mac8), done)
	f.clock = f.clock.Add(1500 * time.Millisecond)
	if got := f.t.Lookup(kid); !bytes.Equal(got, mac8) || f.dumps != 2 {
		t.Fatalf("Lookup = %v after %d dumps, want %v after 2", got, f.dumps, net.HardwareAddr(mac8))
	}
}

// TestUnknownFlood: many unknown sources cost one get each per second, and the maps that
// remember them stay bounded.
func TestUnknownFlood(t *testing.T) {
	f := newFake(30*time.Second, done)
	for round := range 2 {
		for i := range 3 * maxRemembered {
			ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if f.t.Lookup(ip) != nil {
				t.Fatal("found an address the kernel does not have")
			}
		}
		if want := (round + 1) * 3 * maxRemembered; f.gets != want {
			t.Fatalf("round %d: %d gets, want %d", round, f.gets, want)
		}
	}
	if n := len(f.t.failed); n > maxRemembered {
		t.Errorf("failed map holds %d addresses, more than %d", n, maxRemembered)
	}
	if f.t.Lookup(netip.MustParseAddr("127.0.0.1")) != nil || f.gets != 6*maxRemembered {
		t.Error("a loopback address was asked for")
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
	b.ResetTimer()
	for range b.N {
		f.t.Lookup(ip)
	}
}
