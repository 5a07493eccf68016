package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const banner = "hi\n" // the target speaks first, so a proxy can send it in the same write as its reply

// serve accepts on a fresh loopback listener and runs handle for each connection until the
// test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoTarget is the provider: it sends the banner, then echoes until EOF.
func echoTarget(t *testing.T) string {
	return serve(t, func(c net.Conn) {
		c.Write([]byte(banner))
		io.Copy(c, c)
	})
}

// checkConn asserts c is an unwrapped *net.TCPConn that reads the banner and echoes both ways.
func checkConn(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("conn is %T, want *net.TCPConn (so the relay splices)", c)
	}
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(banner))
	if _, err := io.ReadFull(tc, got); err != nil || string(got) != banner {
		t.Fatalf("banner = %q, %v; want %q (a handshake that over-reads loses it)", got, err, banner)
	}
	msg := []byte("ping through the egress")
	if _, err := tc.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(tc)
	if err != nil || string(back) != string(msg) {
		t.Fatalf("echo = %q, %v; want %q then EOF", back, err, msg)
	}
}

func noResolve(t *testing.T) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		t.Errorf("Resolve(%q) called; this egress must not resolve locally", host)
		return nil, errors.New("no")
	}
}

func fixed(ips ...string) func(context.Context, string) ([]netip.Addr, error) {
	return func(context.Context, string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, s := range ips {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func TestDirectLiteralIsTrusted(t *testing.T) {
	target := echoTarget(t)
	d := Dialer{Resolve: noResolve(t)}
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	checkConn(t, c)
}

func TestDirectName(t *testing.T) {
	target := echoTarget(t)
	_, port, _ := net.SplitHostPort(target)
	name := net.JoinHostPort("api.example.com", port)

	d := Dialer{Resolve: fixed("127.0.0.1")}
	_, err := d.DialContext(context.Background(), "tcp", name)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "api.example.com resolved to 127.0.0.1 (loopback)") {
		t.Fatalf("err = %v, want ErrRefused naming the host and 127.0.0.1", err)
	}

	d.AllowPrivate = true
	c, err := d.DialContext(context.Background(), "tcp", name)
	if err != nil {
		t.Fatal(err)
	}
	checkConn(t, c)

	// In order: a dead address first, then the live one.
	d.Resolve = fixed("127.0.0.2", "127.0.0.1")
	if ln, err := net.Listen("tcp", "127.0.0.2:"+port); err == nil {
		ln.Close() // the same port on 127.0.0.2 exists and now refuses
	}
	c, err = d.DialContext(context.Background(), "tcp4", name)
	if err != nil {
		t.Fatalf("second address not tried: %v", err)
	}
	checkConn(t, c)
}

func TestDirectErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		d    Dialer
		net  string
		addr string
		want string
	}{
		{"no resolver", Dialer{}, "tcp", "api.example.com:443", "cannot resolve api.example.com"},
		{"resolver fails", Dialer{Resolve: func(context.Context, string) ([]netip.Addr, error) {
			return nil, errors.New("SERVFAIL")
		}}, "tcp", "api.example.com:443", "resolve api.example.com: SERVFAIL"},
		{"not tcp", Dialer{}, "udp", "127.0.0.1:53", `network "udp" is not TCP`},
		{"no port", Dialer{}, "tcp", "api.example.com", "missing port"},
		{"named port", Dialer{}, "tcp", "api.example.com:https", "numeric port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.d.DialContext(ctx, tc.net, tc.addr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestIface(t *testing.T) {
	target := echoTarget(t)
	d := Dialer{Spec: Spec{Kind: Iface, Iface: "lo"}}
	c, err := d.DialContext(context.Background(), "tcp", target)
	if errors.Is(err, syscall.EPERM) {
		t.Skip("SO_BINDTODEVICE needs CAP_NET_RAW:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkConn(t, c)

	d.Spec.Iface = "airelay-nope0"
	_, err = d.DialContext(context.Background(), "tcp", target)
	if err == nil || !strings.Contains(err.Error(), `interface "airelay-nope0" does not exist`) {
		t.Fatalf("err = %v, want one naming the missing interface", err)
	}
}

// silent accepts connections and never answers.
func silent(t *testing.T) string {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	return serve(t, func(c net.Conn) { <-done })
}

func TestProxyTimeout(t *testing.T) {
	addr := silent(t)
	for _, kind := range []Kind{SOCKS5, Connect} {
		t.Run(kind.String(), func(t *testing.T) {
			d := Dialer{Spec: Spec{Kind: kind, Addr: addr}, Timeout: 200 * time.Millisecond}
			start := time.Now()
			_, err := d.DialContext(context.Background(), "tcp", "api.example.com:443")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("dial took %v with a 200ms timeout", took)
			}
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("err = %v, want a deadline error", err)
			}
		})
	}
}

func TestProxyParentCancelled(t *testing.T) {
	addr := silent(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	d := Dialer{Spec: Spec{Kind: Connect, Addr: addr}, Timeout: time.Minute}
	start := time.Now()
	_, err := d.DialContext(ctx, "tcp", "api.example.com:443")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("dial took %v after its context was cancelled", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestProxyUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	d := Dialer{Spec: Spec{Kind: SOCKS5, Addr: addr}}
	_, err := d.DialContext(context.Background(), "tcp", "api.example.com:443")
	if err == nil || !strings.Contains(err.Error(), "socks5://"+addr) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v, want one naming the proxy and the refusal", err)
	}
}
