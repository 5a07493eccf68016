package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/access"
	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/egress"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/internal/testnet"
	"github.com/airelay/airelay/src/testca"
)

type env struct {
	t        *testing.T
	ca       *testca.CA
	provider *httptest.Server // TLS, cert for api.openai.com
	router   *httptest.Server // TLS, cert for router.lan: the fallback
	table    atomic.Pointer[config.Table]
	relay    *Relay
	addr     string // relay listen address
	stats    *stats.Registry
	logs     *bytes.Buffer
}

// netConnPath, set by TestNetConnPath, makes newEnv's relay set connections up on net.Conns
// (no Direct), as it does on 386 and elsewhere than Linux.
var netConnPath bool

// newEnv starts a relay with the fake provider and the router UI; opts set its fields before it
// serves (they are not to change after: the raw setup path reads them with no lock).
func newEnv(t *testing.T, extra string, opts ...func(*Relay)) *env {
	t.Helper()
	ca, err := testca.New("airelay test CA")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, stats: stats.New(), logs: new(bytes.Buffer)}
	e.provider = tlsServer(t, ca, "api.openai.com", "provider")
	e.router = tlsServer(t, ca, "router.lan", "router ui")
	e.load(extra)
	e.relay = &Relay{
		Table: e.table.Load,
		Stats: e.stats,
		Dial: func(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error) {
			d := net.Dialer{KeepAlive: -1} // as the service's: the relay turns it on itself
			return d.DialContext(ctx, network, addr)
		},
		Direct: func(ctx context.Context, p *config.Provider, network, addr string) ([]netip.AddrPort, string, bool, error) {
			d := egress.Dialer{AllowPrivate: true}
			return d.DirectAddrs(ctx, network, addr)
		},
		Log: logging.Text(syncWriter{e.logs}, logging.NewLevel(logging.LevelDebug)),
	}
	for _, o := range opts {
		o(e.relay)
	}
	if netConnPath {
		e.relay.Direct = nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go e.relay.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = e.relay.Shutdown(ctx)
	})
	return e
}

type syncWriter struct{ b *bytes.Buffer }

var logMu = make(chan struct{}, 1)

// logText is what was logged so far, read under the writers' lock.
func (e *env) logText() string {
	logMu <- struct{}{}
	defer func() { <-logMu }()
	return e.logs.String()
}

func (w syncWriter) Write(p []byte) (int, error) {
	logMu <- struct{}{}
	defer func() { <-logMu }()
	return w.b.Write(p)
}

// load installs a config: the fake provider as openai (reached through connect), the router
// UI as fallback, plus extra lines.
func (e *env) load(extra string) {
	e.t.Helper()
	text := fmt.Sprintf(`
config airelay 'main'
	option tls_fallback '%s'
	option hello_timeout '1s'
	option idle_timeout '2s'
%s
config provider 'openai'
	list host 'api.openai.com'
	option connect '%s'
`, e.router.Listener.Addr(), extra, e.provider.Listener.Addr())
	tb, err := config.LoadBytes("test", []byte(text))
	if err != nil {
		e.t.Fatal(err)
	}
	e.table.Store(tb)
}

func tlsServer(t *testing.T, ca *testca.CA, name, body string) *httptest.Server {
	t.Helper()
	leaf, err := ca.Leaf(name)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", body, r.TLS.ServerName, r.URL.Path)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// get makes an HTTPS request for name through the relay.
func (e *env) get(name, path string) (string, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: name},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", e.addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get("https://" + name + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestRelayWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (.ci/deps installs it)")
	}
	e := newEnv(t, "")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	leaf, _ := e.ca.Leaf("unused")
	if _, _, _, err := e.ca.WriteFiles(dir, leaf); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(e.addr)
	out, err := exec.Command("curl", "-sS", "--max-time", "5", "--cacert", caFile,
		"--connect-to", "api.openai.com:443:127.0.0.1:"+port, "https://api.openai.com/v1/models").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if string(out) != "provider api.openai.com /v1/models" {
		t.Fatalf("curl got %q", out)
	}
	waitFor(t, func() bool { return e.relay.Active() == 0 })
	_, devs := e.stats.Snapshot([]stats.ProviderInfo{{ID: "openai", Enabled: true}}, nil)
	if len(devs) != 1 || devs[0].Addr != "127.0.0.1" {
		t.Fatalf("devices %+v", devs)
	}
	v := devs[0].Providers["openai"]
	if v.Conns != 1 || v.BytesUp < 200 || v.BytesDown < 500 || v.Active != 0 {
		t.Fatalf("counters for 127.0.0.1/openai: %+v", v)
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t, "")
	if got, err := e.get("api.openai.com", "/v1/chat"); err != nil || got != "provider api.openai.com /v1/chat" {
		t.Fatalf("provider: %q %v", got, err)
	}
	if got, err := e.get("API.OpenAI.com", "/"); err != nil || !strings.HasPrefix(got, "provider") {
		t.Fatalf("mixed-case SNI: %q %v", got, err)
	}
	// Unknown name → the router's own server, which presents its own certificate.
	if got, err := e.get("router.lan", "/cgi-bin/luci"); err != nil || got != "router ui router.lan /cgi-bin/luci" {
		t.Fatalf("fallback: %q %v", got, err)
	}
	// No SNI at all (a client connecting to an IP address) → fallback too.
	raw, _ := net.Dial("tcp", e.addr)
	cl := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // no ServerName: no SNI sent
	if err := cl.Handshake(); err != nil {
		t.Fatalf("no SNI did not reach the fallback: %v", err)
	}
	if cn := cl.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "router.lan" {
		t.Fatalf("no SNI reached %q, want the fallback", cn)
	}
	cl.Close()
}

func TestNoFallbackCloses(t *testing.T) {
	e := newEnv(t, "")
	e.load("")
	tb := *e.table.Load()
	tb.Main.TLSFallback = ""
	e.table.Store(&tb)
	if _, err := e.get("unknown.example", "/"); err == nil {
		t.Fatal("unknown SNI without fallback was served")
	}
	if got, err := e.get("api.openai.com", "/"); err != nil || !strings.HasPrefix(got, "provider") {
		t.Fatalf("provider after unknown: %q %v", got, err)
	}
}

func TestDenied(t *testing.T) {
	e := newEnv(t, "")
	e.load("\nconfig client 'kid'\n\tlist ip '127.0.0.0/8'\n\toption access 'deny'\n")
	_, err := e.get("api.openai.com", "/")
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("denied client: err = %v, want a TLS access_denied alert", err)
	}
	// The fallback (the router's own UI) is not an AI provider and stays reachable.
	if got, err := e.get("router.lan", "/"); err != nil || !strings.HasPrefix(got, "router ui") {
		t.Fatalf("fallback for denied client: %q %v", got, err)
	}
	waitFor(t, func() bool { return e.stats.Provider("openai").Denied.Load() == 1 })
	if !strings.Contains(e.logText(), "relay: denied") {
		t.Fatal("denial not logged")
	}
	// default_access deny with a client section that allows this device.
	e.load("\toption default_access 'deny'\nconfig client 'me'\n\tlist ip '127.0.0.1'\n\tlist provider 'openai'\n")
	if got, err := e.get("api.openai.com", "/"); err != nil || !strings.HasPrefix(got, "provider") {
		t.Fatalf("allowed client under default deny: %q %v", got, err)
	}
}

// A raw TCP upstream that counts bytes until EOF, then answers: the answer must reach a client
// that has already shut down its sending side.
func TestHalfClose(t *testing.T) {
	e := newEnv(t, "")
	e.table.Store(withConnect(t, countingProvider(t)))

	hello := testnet.ClientHello(t, "api.openai.com")
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("x"), 100000)
	if _, err := c.Write(append(hello, payload...)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("got %d bytes", len(hello)+len(payload)); string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// The other order: the provider ends its side first, the device sends on and then closes. The
// device's last bytes must reach the provider whole and end with a FIN, not a reset: that last
// end is passed on by closing the provider's socket, not by a shutdown.
func TestHalfCloseFromProvider(t *testing.T) {
	e := newEnv(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hello := testnet.ClientHello(t, "api.openai.com")
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, len(hello))); err != nil {
			got <- result{err: err}
			return
		}
		if _, err := c.Write([]byte("bye")); err != nil {
			got <- result{err: err}
			return
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			got <- result{err: err}
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.Copy(io.Discard, c)
		got <- result{int(n), err}
	}()
	e.table.Store(withConnect(t, ln.Addr().String()))

	c := mustDial(t, e.addr)
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
		t.Fatalf("device read %q, %v; want the provider's bye and its end", b, err)
	}
	payload := bytes.Repeat([]byte("y"), 200000)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case r := <-got:
		if r.err != nil || r.n != len(payload) {
			t.Fatalf("provider got %d bytes, %v; want %d and a clean end", r.n, r.err, len(payload))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the provider never saw the device's end")
	}
}

// countingProvider is a raw TCP provider for one connection: it counts the bytes it gets until
// EOF, then answers "got N bytes" and closes. Its address is returned; it ends with the test.
func countingProvider(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d bytes", n)
		c.Close()
	}()
	return ln.Addr().String()
}

func withConnect(t *testing.T, addr string) *config.Table {
	text := "config airelay 'main'\n\toption idle_timeout '300ms'\n\toption hello_timeout '300ms'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption connect '" + addr + "'\n"
	tb, err := config.LoadBytes("test", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestTimeouts(t *testing.T) {
	e := newEnv(t, "")
	// An upstream that accepts and never says a word.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	e.table.Store(withConnect(t, ln.Addr().String())) // idle and hello timeouts 300ms

	closedWithin := func(c net.Conn, limit time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(limit))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || err != nil && !isTimeout(err)
	}
	// Silent client: closed after hello_timeout.
	c1, _ := net.Dial("tcp", e.addr)
	defer c1.Close()
	if !closedWithin(c1, 3*time.Second) {
		t.Fatal("a client that sends nothing was not closed after hello_timeout")
	}
	// Idle both ways after the hello: closed after idle_timeout.
	c2, _ := net.Dial("tcp", e.addr)
	defer c2.Close()
	_, _ = c2.Write(testnet.ClientHello(t, "api.openai.com"))
	if !closedWithin(c2, 3*time.Second) {
		t.Fatal("an idle relayed connection was not closed after idle_timeout")
	}
	// Traffic one way keeps the connection open past idle_timeout.
	c3, _ := net.Dial("tcp", e.addr)
	defer c3.Close()
	_, _ = c3.Write(testnet.ClientHello(t, "api.openai.com"))
	for range 8 {
		time.Sleep(100 * time.Millisecond)
		if _, err := c3.Write([]byte("ping")); err != nil {
			t.Fatalf("active connection closed: %v", err)
		}
	}
	// Not TLS: closed at once.
	c4, _ := net.Dial("tcp", e.addr)
	defer c4.Close()
	_, _ = c4.Write([]byte("GET / HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"))
	if !closedWithin(c4, time.Second) {
		t.Fatal("plain HTTP on the TLS port was not closed")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestMaxConnsAndDrain(t *testing.T) {
	e := newEnv(t, "\toption max_conns '1'")
	hold := func() *tls.Conn {
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Client(raw, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "api.openai.com"})
	}
	first := hold()
	if err := first.Handshake(); err != nil {
		t.Fatal(err)
	}
	second := hold()
	done := make(chan error, 1)
	go func() { done <- second.Handshake() }()
	select {
	case err := <-done:
		t.Fatalf("second connection served while max_conns=1 was in use (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	first.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second connection after the first closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second connection never served after the first closed")
	}

	// Drain: Shutdown waits for the open connection, which still works meanwhile.
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- e.relay.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
	req := "GET /during-drain HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n"
	if _, err := second.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(second)
	if !strings.Contains(string(b), "/during-drain") {
		t.Fatalf("in-flight connection broken by drain: %q", b)
	}
	second.Close()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last connection closed")
	}
}

func TestDrainDeadlineCutsConnections(t *testing.T) {
	e := newEnv(t, "")
	c := tls.Client(mustDial(t, e.addr), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "api.openai.com"})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.relay.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a connection still open at the deadline")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection not cut at the drain deadline: %v", err)
	}
}

func mustDial(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A reload (a new table) applies to new connections; an open one keeps its upstream.
func TestReloadKeepsOpenConnections(t *testing.T) {
	e := newEnv(t, "")
	open := tls.Client(mustDial(t, e.addr), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "api.openai.com"})
	if err := open.Handshake(); err != nil {
		t.Fatal(err)
	}
	e.load("\nconfig client 'all'\n\tlist ip '127.0.0.1'\n\toption access 'deny'\n")
	if _, err := e.get("api.openai.com", "/"); err == nil {
		t.Fatal("new connection not denied after reload")
	}
	if _, err := open.Write([]byte("GET /still HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(open)
	if !strings.Contains(string(b), "/still") {
		t.Fatalf("open connection broken by reload: %q", b)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 2s")
}

// TestOpenConnectionsHoldNoGoroutine: once set up, a relayed connection is watched by the
// poller, not by goroutines of its own, and bytes still pass both ways afterwards.
func TestOpenConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux only; elsewhere two goroutines copy")
	}
	e := newEnv(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 64)
	go func() { // the provider: one goroutine, holding what it accepts
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	tb, err := config.LoadBytes("test", []byte("config airelay 'main'\n\toption idle_timeout '30s'\nconfig provider 'openai'\n"+
		"\tlist host 'api.openai.com'\n\toption connect '"+ln.Addr().String()+"'\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.table.Store(tb)
	hello := testnet.ClientHello(t, "api.openai.com")
	const n = 20
	var clients, providers []net.Conn
	before := runtime.NumGoroutine()
	for range n {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		p := <-accepted
		defer p.Close()
		got := make([]byte, len(hello))
		p.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p, got); err != nil || !bytes.Equal(got, hello) {
			t.Fatalf("the provider got %d bytes of the hello: %v", len(got), err)
		}
		// The provider's first answer goes through the goroutine that set the connection up;
		// after it, that goroutine ends.
		p.Write([]byte("server hello"))
		got = make([]byte, len("server hello"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "server hello" {
			t.Fatalf("the device got %q: %v", got, err)
		}
		clients, providers = append(clients, c), append(providers, p)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() < before+n })
	for i := range n {
		msg := []byte(fmt.Sprintf("up %d", i))
		clients[i].Write(msg)
		got := make([]byte, len(msg))
		providers[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(providers[i], got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("conn %d up: %q %v", i, got, err)
		}
		providers[i].Write([]byte("down"))
		got = make([]byte, 4)
		clients[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(clients[i], got); err != nil || string(got) != "down" {
			t.Fatalf("conn %d down: %q %v", i, got, err)
		}
	}
	if g := runtime.NumGoroutine(); g >= before+n {
		t.Errorf("%d goroutines with %d connections open, %d before", g, n, before)
	}
	if a := e.relay.Active(); a != n {
		t.Errorf("%d active, want %d", a, n)
	}
}

// TestScheduleCut: a relayed connection still open when its client's schedule closes is cut
// schedule_cut after, even once the poller holds its sockets; the provider keeps talking all
// along, so neither side's idle timeout could have ended it.
func TestScheduleCut(t *testing.T) {
	start := time.Now()
	clock := time.Date(2026, 12, 7, 11, 59, 59, 0, time.UTC) // the window closes in 1s
	g := &access.Guard{Clock: func() time.Time { return clock.Add(time.Since(start)) }}
	g.SetZone(time.UTC)
	e := newEnv(t, "", func(r *Relay) { r.Guard = g })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Read(make([]byte, 4096)) // the ClientHello
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	tb, err := config.LoadBytes("test", []byte("config airelay 'main'\n\toption idle_timeout '2s'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption connect '"+ln.Addr().String()+"'\n"+
		"config client 'kid'\n\tlist ip '127.0.0.1'\n\tlist schedule 'daily 00:00-12:00'\n\toption schedule_cut '1s'\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.table.Store(tb)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(testnet.ClientHello(t, "api.openai.com"))
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if n < 5 {
		t.Errorf("only %d bytes came through before the cut", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection was not cut (read until the deadline, %d bytes)", n)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("cut after %v, before the window even closed", took)
	}
}

// TestCutWhileHandedOver: a schedule_cut or a Shutdown past its deadline that comes while the
// poller takes a connection's sockets (its net.Conns closed, the duplicates not yet watched)
// still ends the connection; before, it closed only the net.Conns, which the duplicates
// outlived, and the connection went on until idle_timeout.
func TestCutWhileHandedOver(t *testing.T) {
	if getPoller() == nil {
		t.Skip("no epoll")
	}
	for _, tc := range []struct {
		name string
		cut  func(e *env, rc *relayed)
	}{
		{"schedule_cut", func(_ *env, rc *relayed) { rc.cutNow() }},
		{"shutdown deadline", func(e *env, _ *relayed) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			e.relay.Shutdown(ctx)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			tb := *e.table.Load()
			tb.Main.IdleTimeout = time.Hour // only the cut can end it within the test's deadline
			e.table.Store(&tb)
			var once sync.Once
			hook := func(rc *relayed) { once.Do(func() { tc.cut(e, rc) }) }
			testHookHandOver.Store(&hook)
			t.Cleanup(func() { testHookHandOver.Store(nil) })
			c := tls.Client(mustDial(t, e.addr), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "api.openai.com"})
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			err := c.Handshake()
			if err == nil {
				_, err = c.Read(make([]byte, 1))
			}
			if err == nil || isTimeout(err) {
				t.Fatalf("the connection outlived its cut: %v", err)
			}
			waitFor(t, func() bool { return e.relay.Active() == 0 })
		})
	}
}
