package neigh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/airelay/airelay/src/internal/testnet"
)

// TestKernelTable adds permanent neighbours in a namespace of its own and finds them through
// a real rtnetlink dump. Processes started from the locked thread inherit its namespace.
func TestKernelTable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates a network namespace and adds neighbour entries")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs the ip command (iproute2) to set up the namespace")
	}
	run := func(args ...string) error {
		out, err := exec.Command(ip, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	v4, v6, stale := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("192.0.2.8")
	testnet.InFreshNetns(t, func() error {
		// A dummy link where the module exists, else a veth pair; both die with the namespace.
		if err := run("link", "add", "airelay0", "type", "dummy"); err != nil {
			if err2 := run("link", "add", "airelay0", "type", "veth", "peer", "name", "airelay1"); err2 != nil {
				return testnet.Skip(fmt.Sprintf("cannot create a link to hang neighbours on: %v; %v", err, err2))
			}
		}
		for _, args := range [][]string{
			{"link", "set", "airelay0", "up"},
			{"addr", "add", "192.0.2.1/24", "dev", "airelay0"}, // routes, so targeted gets find the device
			{"-6", "addr", "add", "2001:db8::1/64", "dev", "airelay0", "nodad"},
			{"neigh", "add", "192.0.2.7", "lladdr", "02:00:00:00:00:07", "dev", "airelay0", "nud", "permanent"},
			{"-6", "neigh", "add", "2001:db8::7", "lladdr", "02:00:00:00:00:08", "dev", "airelay0", "nud", "permanent"},
			{"neigh", "add", "192.0.2.8", "lladdr", "02:00:00:00:00:09", "dev", "airelay0", "nud", "stale"},
		} {
			if err := run(args...); err != nil {
				return err
			}
		}
		tb := New()
		defer tb.Close()
		var errs []error
		for _, c := range []struct {
			ip   netip.Addr
			want string
		}{
			{v4, "02:00:00:00:00:07"},
			{v6, "02:00:00:00:00:08"},
			{stale, "02:00:00:00:00:09"},
			{netip.MustParseAddr("192.0.2.99"), ""},
		} {
			got := tb.Lookup(c.ip)
			if c.want == "" && got != nil || c.want != "" && got.String() != c.want {
				errs = append(errs, fmt.Errorf("Lookup(%s) = %v, want %q", c.ip, got, c.want))
			}
		}
		if err := tb.Err(); err != nil {
			errs = append(errs, err)
		}
		// From here on the kernel's announcements alone keep the table: no dump, no get.
		tb.mu.Lock()
		tb.dump = func() ([]byte, error) { return nil, errors.New("dumped again") }
		tb.get = func(netip.Addr) ([]byte, error) { return nil, errors.New("asked for one address") }
		tb.mu.Unlock()
		if got := tb.Lookup(v4); !bytes.Equal(got, net.HardwareAddr{2, 0, 0, 0, 0, 7}) {
			errs = append(errs, fmt.Errorf("second Lookup(%s) = %v", v4, got))
		}
		// Devices the kernel learns after the dump are found at once, both families.
		for _, args := range [][]string{
			{"neigh", "add", "192.0.2.66", "lladdr", "02:00:00:00:00:66", "dev", "airelay0", "nud", "reachable"},
			{"-6", "neigh", "add", "2001:db8::66", "lladdr", "02:00:00:00:00:67", "dev", "airelay0", "nud", "reachable"},
		} {
			if err := run(args...); err != nil {
				return err
			}
		}
		for ip, want := range map[string]string{"192.0.2.66": "02:00:00:00:00:66", "2001:db8::66": "02:00:00:00:00:67", "192.0.2.67": "", "198.51.100.1": ""} {
			if got := tb.Lookup(netip.MustParseAddr(ip)); want == "" && got != nil || want != "" && got.String() != want {
				errs = append(errs, fmt.Errorf("Lookup(%s) right after the kernel learnt it = %v, want %q", ip, got, want))
			}
		}
		if err := tb.Err(); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// TestHostTable dumps this host's own table: whatever it holds must parse.
func TestHostTable(t *testing.T) {
	raw, err := dumpNeighbours()
	if err != nil {
		t.Skip("no rtnetlink here:", err)
	}
	if _, err := parseDump(raw, nil); err != nil {
		t.Fatalf("the host's neighbour dump does not parse: %v", err)
	}
}

// TestKernelAddressChangesHands is issue 19's point 4: an address the table has already
// answered for moves to another device (DHCP gives it to someone else, or a device takes it),
// and the kernel's entry changes the way ARP/ND change it. The very next Lookup must return
// the MAC the kernel holds now, in both directions — a denied device on the address an allowed
// one just used, and back — and nil once the kernel drops the entry.
func TestKernelAddressChangesHands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates a network namespace and changes neighbour entries")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs the ip command (iproute2) to set up the namespace")
	}
	run := func(args ...string) error {
		out, err := exec.Command(ip, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	const allowed, denied = "02:00:00:00:00:0a", "02:00:00:00:00:0d"
	testnet.InFreshNetns(t, func() error {
		if err := run("link", "add", "airelay0", "type", "dummy"); err != nil {
			if err2 := run("link", "add", "airelay0", "type", "veth", "peer", "name", "airelay1"); err2 != nil {
				return testnet.Skip(fmt.Sprintf("cannot create a link to hang neighbours on: %v; %v", err, err2))
			}
		}
		for _, args := range [][]string{
			{"link", "set", "airelay0", "up"},
			{"addr", "add", "192.0.2.1/24", "dev", "airelay0"},
			{"-6", "addr", "add", "2001:db8::1/64", "dev", "airelay0", "nodad"},
			// a bystander, so that the table has been read in full before the move
			{"neigh", "add", "192.0.2.9", "lladdr", "02:00:00:00:00:09", "dev", "airelay0", "nud", "reachable"},
		} {
			if err := run(args...); err != nil {
				return err
			}
		}
		tb := New()
		defer tb.Close()
		var errs []error
		for _, addr := range []string{"192.0.2.50", "2001:db8::50"} {
			a := netip.MustParseAddr(addr)
			v6 := a.Is6()
			neigh := func(verb string, args ...string) error {
				base := []string{"neigh", verb, addr, "dev", "airelay0"}
				if v6 {
					base = append([]string{"-6"}, base...)
				}
				return run(append(base, args...)...)
			}
			check := func(when, want string) {
				got := tb.Lookup(a)
				if want == "" && got != nil || want != "" && got.String() != want {
					errs = append(errs, fmt.Errorf("%s: Lookup(%s) = %v, want %q", when, addr, got, want))
				}
			}
			// The allowed device holds the address and has been looked up: the table knows it.
			if err := neigh("add", "lladdr", allowed, "nud", "reachable"); err != nil {
				return err
			}
			check("allowed device on the address", allowed)
			check("allowed device, looked up again", allowed)
			// The denied device takes the address: the kernel learns its MAC from its ARP
			// request or ND solicitation (an override to STALE).
			if err := neigh("replace", "lladdr", denied, "nud", "stale"); err != nil {
				return err
			}
			check("denied device took the address the allowed one just used", denied)
			// And back: the allowed device gets the address the denied one just used.
			if err := neigh("replace", "lladdr", allowed, "nud", "reachable"); err != nil {
				return err
			}
			check("allowed device took the address the denied one just used", allowed)
			// The kernel forgets the address: no MAC, not the last one seen.
			if err := neigh("del"); err != nil {
				return err
			}
			check("entry deleted", "")
		}
		if got := tb.Lookup(netip.MustParseAddr("192.0.2.9")); got.String() != "02:00:00:00:00:09" {
			errs = append(errs, fmt.Errorf("bystander: Lookup = %v", got))
		}
		return errors.Join(errs...)
	})
}

// BenchmarkKernelLookup measures a Lookup against the real kernel in a namespace of its own
// holding 250 neighbours, with nothing announced between lookups (the common case: a new
// connection from a device whose entry did not change): "hit" and "miss" follow the kernel
// (one non-blocking read each); "get" is the cost of asking for one address alone (a route
// get and a neighbour get), what each Lookup would cost without following, and does when the
// table cannot follow.
func BenchmarkKernelLookup(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: it creates a network namespace and adds neighbour entries")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		b.Skip("needs the ip command (iproute2)")
	}
	for _, mode := range []string{"hit", "miss", "get"} {
		b.Run(mode, func(b *testing.B) {
			testnet.InFreshNetns(b, func() error {
				if exec.Command(ip, "link", "add", "airelay0", "type", "dummy").Run() != nil {
					if out, err := exec.Command(ip, "link", "add", "airelay0", "type", "veth", "peer", "name", "airelay1").CombinedOutput(); err != nil {
						return testnet.Skip(fmt.Sprintf("cannot create a link: %v: %s", err, out))
					}
				}
				batch := "link set airelay0 up\naddr add 192.0.2.1/24 dev airelay0\n"
				for i := 2; i < 252; i++ {
					batch += fmt.Sprintf("neigh add 192.0.2.%d lladdr 02:00:00:00:01:%02x dev airelay0 nud reachable\n", i, i)
				}
				cmd := exec.Command(ip, "-batch", "-")
				cmd.Stdin = strings.NewReader(batch)
				if out, err := cmd.CombinedOutput(); err != nil {
					return testnet.Skip(fmt.Sprintf("ip -batch: %v: %s", err, out))
				}
				tb := New()
				defer tb.Close()
				a := netip.MustParseAddr("192.0.2.7")
				if mode == "miss" {
					a = netip.MustParseAddr("192.0.2.254")
				}
				if mode == "get" {
					tb.mu.Lock()
					tb.closed = true // ask address by address
					tb.mu.Unlock()
				}
				if got := tb.Lookup(a); (got == nil) != (mode == "miss") {
					return fmt.Errorf("Lookup(%s) = %v", a, got)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					tb.Lookup(a)
				}
				b.StopTimer()
				return tb.Err()
			})
		})
	}
}
