package egress

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClass(t *testing.T) {
	for _, tc := range []struct {
		ip, want string
	}{
		{"8.8.8.8", ""},
		{"2606:4700::1111", ""},
		{"203.0.113.5", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.32.0.1", ""},
		{"64:ff9b::808:808", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "private"},
		{"fd00::1", "private"},
		{"fc00::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%br-lan", "link-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::c0a8:101", "private"},
	} {
		if got := class(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("class(%s) = %q, want %q", tc.ip, got, tc.want)
		}
	}
	if got := class(netip.Addr{}); got != "invalid" {
		t.Errorf("class(zero Addr) = %q, want invalid", got)
	}
}

// fakeLocal swaps the package's local-address cache for one that reports addrs.
func fakeLocal(t *testing.T, addrs ...string) *int {
	t.Helper()
	loads := new(int)
	var list []netip.Addr
	for _, a := range addrs {
		list = append(list, netip.MustParseAddr(a))
	}
	old := local
	local = &localCache{ttl: time.Minute, load: func() ([]netip.Addr, error) { *loads++; return list, nil }}
	t.Cleanup(func() { local = old })
	return loads
}

func TestLocalCache(t *testing.T) {
	loads := 0
	fail := false
	l := &localCache{ttl: 30 * time.Second, load: func() ([]netip.Addr, error) {
		loads++
		if fail {
			return nil, errors.New("netlink is down")
		}
		return []netip.Addr{netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("2001:db8::9")}, nil
	}}
	t0 := time.Unix(1000, 0)
	mine, other := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.10")
	if !l.has(mine, t0) || l.has(other, t0) || !l.has(netip.MustParseAddr("2001:db8::9"), t0) {
		t.Fatal("has() disagrees with the loaded addresses")
	}
	l.has(other, t0.Add(29*time.Second))
	if loads != 1 {
		t.Fatalf("loads within ttl = %d, want 1", loads)
	}
	l.has(other, t0.Add(31*time.Second))
	if loads != 2 {
		t.Fatalf("loads after ttl = %d, want 2", loads)
	}
	fail = true
	if !l.has(mine, t0.Add(62*time.Second)) {
		t.Error("a failed refresh dropped the addresses it knew")
	}
	l.has(mine, t0.Add(63*time.Second))
	if loads != 3 {
		t.Errorf("a failed refresh was retried before ttl: loads = %d, want 3", loads)
	}
}

func TestInterfaceAddrsHasLoopback(t *testing.T) {
	as, err := interfaceAddrs()
	if err != nil {
		t.Skip("no interface addresses here:", err)
	}
	for _, a := range as {
		if a.IsLoopback() {
			return
		}
	}
	t.Errorf("interfaceAddrs() = %v, want 127.0.0.1 or ::1 among them", as)
}

func TestRefusedNames(t *testing.T) {
	fakeLocal(t, "203.0.113.9")
	for _, tc := range []struct {
		name    string
		ips     []string
		network string
		why     string // substring of the error, "" for accepted
	}{
		{"loopback", []string{"127.0.0.1"}, "tcp", "127.0.0.1 (loopback)"},
		{"mapped", []string{"::ffff:10.0.0.1"}, "tcp", "10.0.0.1 (private)"},
		{"router's own WAN address", []string{"203.0.113.9"}, "tcp", "203.0.113.9 (an address of this router)"},
		{"all refused names the first", []string{"192.168.1.1", "127.0.0.1"}, "tcp", "192.168.1.1 (private)"},
		{"family filter leaves nothing", []string{"2606:4700::1111"}, "tcp4", "has no tcp4 address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Dialer{Resolve: func(context.Context, string) ([]netip.Addr, error) {
				var out []netip.Addr
				for _, s := range tc.ips {
					out = append(out, netip.MustParseAddr(s))
				}
				return out, nil
			}}
			_, err := d.DialContext(context.Background(), tc.network, "api.example.com:443")
			if err == nil || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "api.example.com") {
				t.Fatalf("err = %v, want one naming api.example.com and %q", err, tc.why)
			}
			if strings.Contains(tc.why, "(") && !errors.Is(err, ErrRefused) {
				t.Errorf("errors.Is(%v, ErrRefused) = false", err)
			}
		})
	}
}
