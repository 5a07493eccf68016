package service

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/fakeprovider"
	"github.com/airelay/airelay/src/internal/stats"
)

// TestQuotaPastManyAddresses (issue 23.1): with default_daily_requests 2, after more than
// stats.MaxDevices addresses were seen (each with one request that got 404), a new address is
// still held to its quota by the daemon's gateway: 200 200 429 429, never 200 six times.
func TestQuotaPastManyAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4,100 connections")
	}
	f := fakeprovider.New("")
	f.Arrivals = nil
	up := httptest.NewServer(f)
	defer up.Close()
	path := filepath.Join(t.TempDir(), "airelay")
	cfg := fmt.Sprintf(`
config airelay 'main'
	option dns_listen ''
	option tls_listen ''
	option http_listen '127.0.0.1:0'
	option status_listen '127.0.0.1:0'
	option default_daily_requests '2'
	option max_conns_per_device '1048576'

config provider 'openai'
	list host 'api.openai.com'
	option upstream '%s'
`, up.URL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	done := make(chan error, 1)
	ready := make(chan map[string]string, 1)
	go func() {
		done <- Run(Options{
			Load:    func() (*config.Table, error) { return config.Load(path) },
			Version: "test",
			Log:     io.Discard,
			Signals: sig,
			Ready:   func(a map[string]string) { ready <- a },
		})
	}()
	var addrs map[string]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	defer func() {
		sig <- syscall.SIGTERM
		<-done
	}()

	// get sends one request from source address src (any of 127.0.0.0/8 is this host's) and
	// returns the status.
	get := func(src net.IP, path string) int {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addrs["http"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: router.lan\r\nConnection: close\r\n\r\n", path)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("from %v: %v", src, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range stats.MaxDevices + 4 {
		if code := get(net.IPv4(127, 1, byte(i>>8), byte(i)), "/nothing-routed-here"); code != 404 {
			t.Fatalf("request %d: %d, want 404", i, code)
		}
	}
	time.Sleep(stats.RetireIdle) // the first addresses are now idle long enough to make room
	var codes []int
	for range 6 {
		codes = append(codes, get(net.IPv4(127, 2, 0, 1), "/openai/v1/models"))
	}
	if fmt.Sprint(codes) != "[200 200 429 429 429 429]" {
		t.Errorf("a new address past %d, with default_daily_requests 2: %v, want [200 200 429 429 429 429]", stats.MaxDevices, codes)
	}
}
