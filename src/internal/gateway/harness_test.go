package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/fakeprovider"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/internal/testnet"
	"github.com/airelay/airelay/src/testca"
)

// The routers' keys; every test checks that none of them leaks.
const (
	keyOpenAI    = "sk-router-openai-5EcReT"
	keyAnthropic = "sk-ant-router-anthropic-5EcReT"
	keyGemini    = "AIza-router-gemini-5EcReT"
	keyBackup    = "sk-router-backup-5EcReT"
)

var allKeys = []string{keyOpenAI, keyAnthropic, keyGemini, keyBackup}

// upstream is a fake provider served over HTTPS (HTTP/2 offered) with a test CA leaf, and on
// demand over plain HTTP too (PlainURL).
type upstream struct {
	*fakeprovider.Server
	t        testing.TB
	srv      *httptest.Server
	plain    *httptest.Server
	newConns atomic.Int64
	closed   atomic.Int64
}

func (u *upstream) URL() string { return u.srv.URL }

// PlainURL is the same fake over plain HTTP, which the gateway reads with its own raw reads
// (passRaw) rather than through crypto/tls.
func (u *upstream) PlainURL() string {
	if u.plain == nil {
		u.plain = httptest.NewServer(u.Server)
		u.plain.Config.ErrorLog = log.New(io.Discard, "", 0)
		p := u.plain
		u.t.Cleanup(func() { p.CloseClientConnections(); p.Close() })
	}
	return u.plain.URL
}

// overTLSAndPlain runs f with a provider over HTTPS, then over plain HTTP: the gateway reads the
// two differently.
func overTLSAndPlain(t *testing.T, f func(t *testing.T, url func(*upstream) string)) {
	t.Run("https", func(t *testing.T) { f(t, (*upstream).URL) })
	t.Run("http", func(t *testing.T) { f(t, (*upstream).PlainURL) })
}

// Addr is host:port.
func (u *upstream) Addr() string { return u.srv.Listener.Addr().String() }

var testCA = sync.OnceValues(func() (*testca.CA, error) { return testca.New("airelay gateway test CA") })

func mustCA(t testing.TB) *testca.CA {
	ca, err := testCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// startUpstream starts a fake; set configures it before it serves (it is never changed after).
func startUpstream(t testing.TB, key string, set ...func(*fakeprovider.Server)) *upstream {
	t.Helper()
	ca := mustCA(t)
	leaf, err := ca.Leaf("127.0.0.1", "api.openai.com", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{Server: fakeprovider.New(key), t: t}
	for _, f := range set {
		f(u.Server)
	}
	u.srv = httptest.NewUnstartedServer(u.Server)
	u.srv.EnableHTTP2 = true
	u.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.newConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			u.closed.Add(1)
		}
	}
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.srv.StartTLS()
	t.Cleanup(func() {
		if u.Step != nil {
			// Let a fake blocked on Step see its request end.
			u.srv.CloseClientConnections()
		}
		u.srv.Close()
	})
	return u
}

// env is a gateway on loopback in front of fake providers.
type env struct {
	t      testing.TB
	table  atomic.Pointer[config.Table]
	gw     *Gateway
	reg    *stats.Registry
	logs   *testnet.Buffer
	base   string // http://127.0.0.1:port
	client *http.Client
	dials  atomic.Int64
	bodies []string // every body the gateway itself answered with an error, for the leak check
}

// mainSection is the 'main' section with test-friendly limits; opts override them.
func mainSection(opts ...string) string {
	o := map[string]string{
		"max_body": "64K", "retry_body": "16K", "first_byte_timeout": "5s",
		"stream_idle_timeout": "5s", "connect_timeout": "2s", "header_timeout": "2s",
		"default_access": "allow",
	}
	for i := 0; i+1 < len(opts); i += 2 {
		o[opts[i]] = opts[i+1]
	}
	var b strings.Builder
	b.WriteString("config airelay 'main'\n")
	for _, k := range []string{"max_body", "retry_body", "first_byte_timeout", "stream_idle_timeout", "connect_timeout", "header_timeout", "default_access", "max_header_bytes", "max_conns", "max_conns_per_device", "write_timeout", "idle_timeout"} {
		if v, ok := o[k]; ok {
			fmt.Fprintf(&b, "\toption %s '%s'\n", k, v)
		}
	}
	return b.String()
}

// provider is a provider section.
func provider(id, upstreamURL, key, auth string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nconfig provider '%s'\n\toption upstream '%s'\n\toption prefix '/%s'\n\toption auth '%s'\n", id, upstreamURL, id, auth)
	if key != "" {
		fmt.Fprintf(&b, "\toption api_key '%s'\n", key)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		kw := "option"
		if extra[i] == "fallback" {
			kw = "list"
		}
		fmt.Fprintf(&b, "\t%s %s '%s'\n", kw, extra[i], extra[i+1])
	}
	return b.String()
}

func loadTable(t testing.TB, uci string) *config.Table {
	t.Helper()
	tab, err := config.LoadBytes("test.uci", []byte(uci))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, uci)
	}
	return tab
}

func startGateway(t testing.TB, uci string, mods ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, reg: stats.New(), logs: &testnet.Buffer{}}
	e.table.Store(loadTable(t, uci))
	o := Options{
		Table:   e.table.Load,
		Stats:   e.reg,
		RootCAs: mustCA(t).Pool(),
		Log:     logging.Text(e.logs, logging.NewLevel(logging.LevelDebug)),
		Dial: func(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error) {
			e.dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	for _, m := range mods {
		m(&o)
	}
	e.gw = New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- e.gw.Serve(ln) }()
	e.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(func() {
		e.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		e.gw.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		e.checkNoKeys()
	})
	return e
}

// do sends a request to the gateway and reads the whole answer.
func (e *env) do(method, path string, body string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		e.t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	if res.Header.Get("X-Content-Type-Options") == "nosniff" { // the gateway's own error
		e.bodies = append(e.bodies, string(b))
	}
	return res, string(b)
}

// values returns the counters of the loopback device for one provider ("" : its totals).
func (e *env) values(providerID string) stats.Values {
	var infos []stats.ProviderInfo
	for _, p := range e.table.Load().Providers {
		infos = append(infos, stats.ProviderInfo{ID: p.ID, Enabled: p.Enabled})
	}
	_, ds := e.reg.Snapshot(infos, nil)
	for _, d := range ds {
		if d.Addr == "127.0.0.1" {
			if providerID == "" {
				return d.Values
			}
			return d.Providers[providerID]
		}
	}
	return stats.Values{}
}

// idle waits until no request is in progress at the gateway, so that counters are final.
func (e *env) idle() {
	e.t.Helper()
	eventually(e.t, "requests to finish", func() bool { return e.values("").Active == 0 })
}

// checkNoKeys fails if any router key shows in logs, /status, /metrics or an error body.
func (e *env) checkNoKeys() {
	e.t.Helper()
	var infos []stats.ProviderInfo
	for _, p := range e.table.Load().Providers {
		infos = append(infos, stats.ProviderInfo{ID: p.ID, Enabled: p.Enabled})
	}
	ps, ds := e.reg.Snapshot(infos, nil)
	st := &stats.Status{Version: "test", Providers: ps, Devices: ds}
	var metrics bytes.Buffer
	if err := stats.WriteMetrics(&metrics, st); err != nil {
		e.t.Fatal(err)
	}
	places := map[string]string{"logs": e.logs.String(), "metrics": metrics.String(),
		"status": fmt.Sprintf("%+v", st), "error bodies": strings.Join(e.bodies, "\n")}
	for where, text := range places {
		for _, k := range allKeys {
			if strings.Contains(text, k) || strings.Contains(text, k[len(k)-8:]) {
				e.t.Errorf("a router key shows in %s:\n%s", where, text)
			}
		}
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitClosed fails unless ch closes within a few seconds.
func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func nextArrival(t testing.TB, u *upstream) *fakeprovider.Record {
	t.Helper()
	select {
	case r := <-u.Arrivals:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the fake provider got no request")
		return nil
	}
}

// sseReader reads SSE events (their data lines) from a body on its own goroutine, so a test can
// wait for each with a deadline.
type sseReader struct {
	events chan string
	err    chan error
}

func readSSE(body io.Reader) *sseReader {
	r := &sseReader{events: make(chan string, 64), err: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(body)
		var data []string
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if len(data) > 0 {
					r.events <- strings.Join(data, "\n")
					data = nil
				}
				continue
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = append(data, d)
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		r.err <- err
		close(r.events)
	}()
	return r
}

// next returns the next event, or fails when none arrives within d.
func (r *sseReader) next(t testing.TB, d time.Duration, what string) string {
	t.Helper()
	select {
	case ev, ok := <-r.events:
		if !ok {
			t.Fatalf("%s: the stream ended: %v", what, <-r.err)
		}
		return ev
	case <-time.After(d):
		t.Fatalf("%s: no event within %v", what, d)
		return ""
	}
}
