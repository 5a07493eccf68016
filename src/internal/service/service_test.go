package service

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/testca"
)

type harness struct {
	t        *testing.T
	path     string
	ca       *testca.CA
	backend  *httptest.Server
	sig      chan os.Signal
	addrs    map[string]string
	done     chan error // receives Run's result once
	ended    bool
	logs     *lockedBuffer
	reloaded chan struct{} // one value per handled SIGHUP
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const base = `
config airelay 'main'
	option lan_ipv4 '%s'
	option dns_listen '127.0.0.1:0'
	option tls_listen '%s'
	option http_listen '127.0.0.1:0'
	option status_listen '127.0.0.1:0'
	option drain_timeout '%s'
	option hello_timeout '2s'

config provider 'openai'
	list host 'api.openai.com'
	option upstream 'https://api.openai.com'
	option connect '%s'
`

func (h *harness) write(lan, tlsListen, drain string) {
	text := fmt.Sprintf(base, lan, tlsListen, drain, h.backend.Listener.Addr())
	if err := os.WriteFile(h.path, []byte(text), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func start(t *testing.T, drain string) *harness {
	t.Helper()
	return startWith(t, drain, nil)
}

// startWith runs the service on the harness's file, read by load when set (else config.Load).
func startWith(t *testing.T, drain string, load func(path string) (*config.Table, error)) *harness {
	t.Helper()
	ca, err := testca.New("svc test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := ca.Leaf("api.openai.com")
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(700 * time.Millisecond)
		}
		fmt.Fprint(w, "backend "+r.URL.Path)
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	backend.StartTLS()
	t.Cleanup(backend.Close)
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "airelay"), ca: ca, backend: backend,
		sig: make(chan os.Signal, 1), done: make(chan error, 1), logs: &lockedBuffer{}, reloaded: make(chan struct{}, 1)}
	if load == nil {
		load = config.Load
	}
	h.write("192.168.1.1", "127.0.0.1:0", drain)
	ready := make(chan map[string]string, 1)
	go func() {
		h.done <- Run(Options{
			Load:     func() (*config.Table, error) { return load(h.path) },
			Version:  "test",
			Log:      h.logs,
			Signals:  h.sig,
			Ready:    func(a map[string]string) { ready <- a },
			Reloaded: func() { h.reloaded <- struct{}{} },
		})
	}()
	select {
	case h.addrs = <-ready:
	case err := <-h.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	t.Cleanup(func() {
		if !h.ended {
			h.sig <- syscall.SIGTERM
			<-h.done
		}
	})
	return h
}

func (h *harness) lookup() string {
	m := new(dns.Msg)
	m.SetQuestion("api.openai.com.", dns.TypeA)
	in, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, h.addrs["dns"])
	if err != nil {
		h.t.Fatal(err)
	}
	if len(in.Answer) != 1 {
		return ""
	}
	return in.Answer[0].(*dns.A).A.String()
}

func (h *harness) status() stats.Status {
	resp, err := http.Get("http://" + h.addrs["status"] + "/status")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stats.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) tlsGet(addr, path string) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{RootCAs: h.ca.Pool(), ServerName: "api.openai.com"})
	if err != nil {
		return "", err
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n", path)
	b, err := io.ReadAll(c)
	return string(b), err
}

// reload sends SIGHUP and returns once the service has handled it and published the outcome.
func (h *harness) reload() {
	h.t.Helper()
	h.sig <- syscall.SIGHUP
	select {
	case <-h.reloaded:
	case err := <-h.done:
		h.ended = true
		h.t.Fatalf("Run returned on SIGHUP: %v", err)
	case <-time.After(time.Minute): // a hang, not a slow machine
		h.t.Fatal("SIGHUP not handled within a minute")
	}
}

func TestServeReloadStop(t *testing.T) {
	h := start(t, "5s")
	if !strings.Contains(h.logs.String(), "level=INFO msg=ready") {
		t.Fatalf("no ready line:\n%s", h.logs.String())
	}
	if got := h.lookup(); got != "192.168.1.1" {
		t.Fatalf("A = %q", got)
	}
	if body, err := h.tlsGet(h.addrs["tls"], "/v1/models"); err != nil || !strings.Contains(body, "backend /v1/models") {
		t.Fatalf("relay: %q %v", body, err)
	}
	st := h.status()
	if st.Config.Generation != 1 || st.Version != "test" || st.Listeners["tls"] != h.addrs["tls"] {
		t.Fatalf("status: %+v", st)
	}
	resp, err := http.Get("http://" + h.addrs["status"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `airelay_provider_connections_total{provider="openai"} 1`) {
		t.Fatalf("metrics:\n%s", m)
	}

	// Good reload: new answer, generation 2.
	h.write("192.168.1.254", h.addrs["tls"], "5s")
	h.reload()
	if got := h.lookup(); got != "192.168.1.254" {
		t.Fatalf("after reload A = %q", got)
	}
	if st := h.status(); st.Config.Generation != 2 || st.Config.LastError != "" {
		t.Fatalf("status after reload: %+v", st.Config)
	}

	// Bad reload: the old config keeps serving and the error is visible.
	if err := os.WriteFile(h.path, []byte("config airelay 'main'\n\toption dns_ttl 'never'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.reload()
	if got := h.lookup(); got != "192.168.1.254" {
		t.Fatalf("after bad reload A = %q", got)
	}
	st = h.status()
	if st.Config.Generation != 2 || !strings.Contains(st.Config.LastError, "option 'dns_ttl' value 'never'") {
		t.Fatalf("status after bad reload: %+v", st.Config)
	}
	if !strings.Contains(h.logs.String(), "reload failed; the previous config keeps serving") {
		t.Fatal("bad reload not logged")
	}

	// The same listener written another way is not rebound (no EADDRINUSE, no error).
	if st := h.status(); st.Listeners["tls"] != h.addrs["tls"] {
		t.Fatalf("tls listener changed: %v", st.Listeners)
	}
	h.write("192.168.1.254", "0.0.0.0:"+portOf(h.addrs["tls"]), "5s")
	h.reload()
	if st := h.status(); st.Config.LastError != "" || !strings.HasSuffix(st.Listeners["tls"], ":"+portOf(h.addrs["tls"])) {
		t.Fatalf("same port, other host: %+v %v", st.Config, st.Listeners)
	}
	if _, err := h.tlsGet(h.addrs["tls"], "/x"); err != nil {
		t.Fatalf("tls after same-port rebind: %v", err)
	}

	// Moving a listener on reload.
	h.write("192.168.1.254", "127.0.0.1:0", "5s")
	old := h.addrs["tls"]
	h.reload()
	moved := h.status().Listeners["tls"]
	if moved == old || moved == "" {
		t.Fatalf("tls listener did not move: %s", moved)
	}
	if _, err := h.tlsGet(moved, "/x"); err != nil {
		t.Fatalf("new tls listener: %v", err)
	}
	if _, err := net.DialTimeout("tcp", old, time.Second); err == nil {
		t.Fatal("old tls listener still accepts")
	}

	// SIGTERM while a response is streaming: it completes, then Run returns. The connections
	// before it have ended first, so that the one counted open is the stream's, accepted (one
	// still in the listener's queue when SIGTERM closes the listener is reset by the kernel).
	h.waitIdle("openai")
	got := make(chan string, 1)
	go func() { b, err := h.tlsGet(moved, "/slow"); got <- fmt.Sprint(b, err) }()
	h.waitActive("openai", 1)
	h.sig <- syscall.SIGTERM
	select {
	case b := <-got:
		if !strings.Contains(b, "backend /slow") {
			t.Fatalf("in-flight response cut by SIGTERM: %q\n%s", b, h.logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight response never finished")
	}
	select {
	case err := <-h.done:
		h.ended = true
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
	if !strings.Contains(h.logs.String(), "msg=stopped") {
		t.Fatal("no stopped line")
	}
}

// waitIdle waits until provider p has no open connection.
func (h *harness) waitIdle(p string) {
	h.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		idle := true
		for _, ps := range h.status().Providers {
			if ps.ID == p && ps.Active != 0 {
				idle = false
			}
		}
		if idle {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("provider %s kept open connections", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitActive returns once status counts n open connections to provider p.
func (h *harness) waitActive(p string, n int64) {
	h.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, ps := range h.status().Providers {
			if ps.ID == p && ps.Active >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("provider %s never had %d open connections", p, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadPublishedWhenInPlace (issue 19.8): while a reload moves a listener, status still
// shows the old generation with the old listener; once the reload is handled it shows the new
// generation with the new listener, which accepts at once.
func TestReloadPublishedWhenInPlace(t *testing.T) {
	h := start(t, "5s")
	old := h.addrs["tls"]
	binding := make(chan struct{})
	release := make(chan struct{})
	testHookBind = func(role string) {
		if role == "tls" {
			close(binding)
			<-release
		}
	}
	defer func() { testHookBind = nil }()
	h.write("192.168.1.254", "127.0.0.2:0", "5s") // the relay moves to another address
	h.sig <- syscall.SIGHUP
	select {
	case <-binding:
	case <-h.reloaded:
		t.Fatal("the reload did not move the tls listener")
	case <-time.After(time.Minute):
		t.Fatal("no reload within a minute")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + h.addrs["status"] + "/status")
	if err != nil {
		close(release)
		t.Fatalf("status while the listener moves: %v", err)
	}
	var mid stats.Status
	err = json.NewDecoder(resp.Body).Decode(&mid)
	resp.Body.Close()
	close(release)
	if err != nil || mid.Config.Generation != 1 || mid.Listeners["tls"] != old {
		t.Fatalf("status while the listener moves: generation %d, tls %q (was %q), err %v: a reload shown before it happened",
			mid.Config.Generation, mid.Listeners["tls"], old, err)
	}
	<-h.reloaded
	st := h.status()
	if st.Config.Generation != 2 || st.Listeners["tls"] == old {
		t.Fatalf("after the reload: generation %d, tls %q", st.Config.Generation, st.Listeners["tls"])
	}
	if body, err := h.tlsGet(st.Listeners["tls"], "/x"); err != nil || !strings.Contains(body, "backend /x") {
		t.Fatalf("the published tls listener: %q %v", body, err)
	}
}

// TestSwitchedOff: option enabled '0' shows in /status, and the daemon relays nothing: the
// relay takes no name, the gateway answers 503 disabled. Switched on again, both serve.
func TestSwitchedOff(t *testing.T) {
	h := start(t, "5s")
	gatewayGet := func() string {
		resp, err := http.Get("http://" + h.addrs["http"] + "/openai/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	for _, on := range []bool{false, true} {
		text := fmt.Sprintf(base, "192.168.1.1", h.addrs["tls"], "5s", h.backend.Listener.Addr())
		if !on {
			text += "\nconfig airelay 'main'\n\toption enabled '0'\n"
		}
		if err := os.WriteFile(h.path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		h.reload()
		if st := h.status(); st.Disabled == on || st.Config.LastError != "" {
			t.Fatalf("enabled %v: status disabled %v, last error %q", on, st.Disabled, st.Config.LastError)
		}
		body, err := h.tlsGet(h.addrs["tls"], "/v1/models")
		if relayed := err == nil && strings.Contains(body, "backend /v1/models"); relayed != on {
			t.Errorf("enabled %v: relayed %v (%q, %v)", on, relayed, body, err)
		}
		if got := gatewayGet(); strings.HasPrefix(got, "503 ") != !on || !on && !strings.Contains(got, `"code":"disabled"`) {
			t.Errorf("enabled %v: the gateway answered %s", on, got)
		}
	}
}

// TestConfigStateInStatus (issue 19.2): which config serves and why, as the loader says, is in
// /status and the log; a reload the init script refused keeps the generation and the table,
// and shows the refusal.
func TestConfigStateInStatus(t *testing.T) {
	var mu sync.Mutex
	fallback := config.Fallback{State: "last_valid", Message: "serving the last valid config from 2026-12-01 10:00 UTC; /etc/config/airelay:7: section 'kid' option 'schedule' value 'Mon-Fry 15:00-20:00': bad day"}
	h := startWith(t, "5s", func(path string) (*config.Table, error) {
		tb, err := config.Load(path)
		if err == nil {
			mu.Lock()
			tb.Fallback = fallback
			mu.Unlock()
		}
		return tb, err
	})
	st := h.status()
	if st.Config.State != "last_valid" || st.Config.Message != fallback.Message || st.Config.Generation != 1 || st.Config.LastError != "" {
		t.Fatalf("status at start: %+v", st.Config)
	}
	if !strings.Contains(h.logs.String(), "level=ERROR msg=\"config: last_valid: serving the last valid config from 2026-12-01 10:00 UTC; /etc/config/airelay:7:") {
		t.Errorf("not logged as an error:\n%s", h.logs.String())
	}

	// the config on disk fixed: current
	mu.Lock()
	fallback = config.Fallback{}
	mu.Unlock()
	h.reload()
	if st := h.status(); st.Config.State != "current" || st.Config.Message != "" || st.Config.Generation != 2 {
		t.Fatalf("status after a good reload: %+v", st.Config)
	}

	// broken again on reload: the init script kept the copy and said so
	mu.Lock()
	fallback = config.Fallback{State: "last_valid", Message: "serving the last valid config from 2026-12-02 09:00 UTC; /etc/config/airelay:9: section 'kid' option 'acess': no", Refused: "/etc/config/airelay:9: section 'kid' option 'acess': no"}
	mu.Unlock()
	h.write("192.168.1.99", h.addrs["tls"], "5s") // must not be applied
	h.reload()
	st = h.status()
	if st.Config.State != "last_valid" || st.Config.Generation != 2 || st.Config.LastError != fallback.Refused || !strings.HasPrefix(st.Config.Message, "serving the last valid config from 2026-12-02") {
		t.Fatalf("status after a refused reload: %+v", st.Config)
	}
	if got := h.lookup(); got != "192.168.1.1" {
		t.Errorf("a refused reload was applied: A = %q", got)
	}
	if !strings.Contains(h.logs.String(), "reload refused") {
		t.Errorf("the refused reload is not logged:\n%s", h.logs.String())
	}
}

func TestDrainDeadline(t *testing.T) {
	h := start(t, "300ms")
	c, err := tls.Dial("tcp", h.addrs["tls"], &tls.Config{RootCAs: h.ca.Pool(), ServerName: "api.openai.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.sig <- syscall.SIGTERM
	select {
	case <-h.done:
		h.ended = true
	case <-time.After(5 * time.Second):
		t.Fatal("an idle open connection held the stop past drain_timeout")
	}
	if !strings.Contains(h.logs.String(), "drain deadline reached") {
		t.Fatalf("logs:\n%s", h.logs.String())
	}
}

func TestBadConfigAtStart(t *testing.T) {
	err := Run(Options{Load: func() (*config.Table, error) {
		return config.LoadBytes("x", []byte("config airelay 'main'\n\toption dns_ttl 'x'\n"))
	}})
	if _, ok := err.(*ConfigError); !ok {
		t.Fatalf("err = %T %v, want *ConfigError", err, err)
	}
}

func TestBindFailureAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	text := "config airelay 'main'\n\toption tls_listen '" + ln.Addr().String() + "'\n\toption dns_listen ''\n\toption http_listen ''\n\toption status_listen ''\n"
	err = Run(Options{Load: func() (*config.Table, error) { return config.LoadBytes("x", []byte(text)) }, Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "tls listen "+ln.Addr().String()) {
		t.Fatalf("err = %v", err)
	}
}

func portOf(a string) string {
	_, p, _ := net.SplitHostPort(a)
	return p
}

// TestListenDevice: with listen_device set, a listener on a wildcard address takes only what
// arrives on that device; loopback listeners are left alone; a missing device fails the start
// with its name.
func TestListenDevice(t *testing.T) {
	other := ""
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			other = i.Name
			break
		}
	}
	runWith := func(device string) (map[string]string, func(), error) {
		text := "config airelay 'main'\n\toption tls_listen ':0'\n\toption dns_listen ''\n\toption http_listen ''\n\toption status_listen '127.0.0.1:0'\n\toption listen_device '" + device + "'\n"
		sig := make(chan os.Signal, 1)
		done := make(chan error, 1)
		ready := make(chan map[string]string, 1)
		go func() {
			done <- Run(Options{Load: func() (*config.Table, error) { return config.LoadBytes("x", []byte(text)) },
				Log: io.Discard, Signals: sig, Ready: func(a map[string]string) { ready <- a }})
		}()
		select {
		case a := <-ready:
			return a, func() { sig <- syscall.SIGTERM; <-done }, nil
		case err := <-done:
			return nil, nil, err
		case <-time.After(5 * time.Second):
			t.Fatal("not ready")
		}
		return nil, nil, nil
	}
	dial := func(a map[string]string, role string) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", portOf(a[role])), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}

	a, stop, err := runWith("lo")
	if err != nil {
		t.Fatalf("listen_device lo: %v", err)
	}
	if err := dial(a, "tls"); err != nil {
		t.Errorf("bound to lo, a connection over lo: %v", err)
	}
	stop()

	if other != "" {
		a, stop, err = runWith(other)
		if err != nil {
			t.Fatalf("listen_device %s: %v", other, err)
		}
		if err := dial(a, "tls"); err == nil {
			t.Errorf("bound to %s, the relay still took a connection that arrived on lo", other)
		}
		if err := dial(a, "status"); err != nil {
			t.Errorf("a loopback listener must not be bound to %s: %v", other, err)
		}
		stop()
	} else {
		t.Log("no non-loopback interface is up: the refusal half is not checked")
	}

	if _, _, err := runWith("nosuchdev0"); err == nil || !strings.Contains(err.Error(), `"nosuchdev0"`) {
		t.Errorf("a missing device: err = %v", err)
	}
}
