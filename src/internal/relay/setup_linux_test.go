//go:build linux && !386

package relay

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestZoneIndex(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo:", err)
	}
	for zone, want := range map[string]uint32{"": 0, "lo": uint32(lo.Index), "7": 7, "no-such-if0": 0} {
		if got := zoneIndex(zone); got != want {
			t.Errorf("zoneIndex(%q) = %d, want %d", zone, got, want)
		}
	}
}

// TestServeEndsWithItsListener: Serve on raw sockets returns when its listener is closed by its
// owner (the service, at a reload that moves the listener) and at once at Shutdown; the port
// is free again.
func TestServeEndsWithItsListener(t *testing.T) {
	for _, how := range []string{"listener closed", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, "")
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- e.relay.Serve(ln) }()
			// A connection through it first, so that Serve waits in the poller's set.
			c := mustDial(t, ln.Addr().String())
			c.Close()
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			if how == "shutdown" {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				e.relay.Shutdown(ctx)
			} else {
				ln.Close()
			}
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
				if took := time.Since(start); how == "shutdown" && took > 500*time.Millisecond {
					t.Errorf("Serve returned %v after Shutdown", took)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Serve did not return")
			}
			again, err := net.Listen("tcp", ln.Addr().String())
			if err != nil {
				t.Fatalf("the port is not free: %v", err)
			}
			again.Close()
		})
	}
}
