package neigh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// errSkip carries a reason to skip out of the namespaced goroutine, which may not call t.Skip.
type errSkip struct{ why string }

func (e errSkip) Error() string { return e.why }

// inFreshNetns runs fn on a thread of its own in a new, empty network namespace. The thread is
// never unlocked, so when fn returns the runtime ends it and the kernel frees the namespace
// with everything fn created in it — even when fn fails or panics halfway.
func inFreshNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("panic: %v", p)
			}
		}()
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			errc <- errSkip{"cannot create a network namespace: " + err.Error()}
			return
		}
		errc <- fn()
	}()
	return <-errc
}

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
	err = inFreshNetns(func() error {
		// A dummy link where the module exists, else a veth pair; both die with the namespace.
		if err := run("link", "add", "airelay0", "type", "dummy"); err != nil {
			if err2 := run("link", "add", "airelay0", "type", "veth", "peer", "name", "airelay1"); err2 != nil {
				return errSkip{fmt.Sprintf("cannot create a link to hang neighbours on: %v; %v", err, err2)}
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
		tb := New(time.Minute)
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
		// Found without a second dump: the table is cached.
		tb.dump = func() ([]byte, error) { return nil, errors.New("dumped again within maxAge") }
		if got := tb.Lookup(v4); !bytes.Equal(got, net.HardwareAddr{2, 0, 0, 0, 0, 7}) {
			errs = append(errs, fmt.Errorf("cached Lookup(%s) = %v", v4, got))
		}
		// Devices the kernel learns after the dump are found at once by a targeted get,
		// both families, while the dump stays forbidden.
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
				errs = append(errs, fmt.Errorf("Lookup(%s) right after the dump = %v, want %q", ip, got, want))
			}
		}
		return errors.Join(errs...)
	})
	var skip errSkip
	if errors.As(err, &skip) {
		t.Skip(skip.why)
	}
	if err != nil {
		t.Fatal(err)
	}
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
