package service

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/stats"
	"github.com/airelay/airelay/src/internal/testnet"
)

// With the router's networks in the runtime copy, the relay listens on every served and
// passed-through network's device and the gateway on every served one's, all on the configured
// port; a network whose device cannot be bound is reported in status and the others serve;
// /status lists the networks and each device's network; a reload that stops serving a network
// closes its listeners.
func TestNetworkListeners(t *testing.T) {
	other := ""
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			other = i.Name
			break
		}
	}
	if other == "" {
		t.Skip("no non-loopback interface is up")
	}
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	tlsPort, httpPort := port(), port()
	dir := t.TempDir()
	path := filepath.Join(dir, "airelay")
	state := filepath.Join(dir, "redirect")
	fw4 := filepath.Join(dir, "fw4.state")
	os.WriteFile(fw4, nil, 0o644)
	os.WriteFile(state, []byte("inactive\nnot redirected on guest\nnet lan active\nnet guest inactive its redirect is not in fw4's live dstnat chain\n"), 0o644)
	write := func(guestMode string) {
		text := fmt.Sprintf(`config airelay 'main'
	option dns_listen ''
	option tls_listen ':%d'
	option http_listen ':%d'
	option status_listen '127.0.0.1:0'
config provider 'openai'
	list host 'api.openai.com'
	option connect '127.0.0.1:1'
config runtime_network
	option network 'lan'
	option device 'lo'
	list ipv4 '127.0.0.1/8'
	option mode 'served'
config runtime_network
	option network 'guest'
	option device '%s'
	list ipv4 '192.0.2.1/24'
	option mode '%s'
config runtime_network
	option network 'iot'
	option device 'nosuchdev7'
	list ipv4 '198.18.7.1/24'
	option mode 'served'
config runtime_network
	option network 'office'
	option device 'nosuchdev8'
	option mode 'untouched'
	option reason 'not in the network list of main'
`, tlsPort, httpPort, other, guestMode)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("passthrough")
	sig := make(chan os.Signal, 1)
	done := make(chan error, 1)
	ready := make(chan map[string]string, 1)
	logs := &lockedBuffer{}
	go func() {
		done <- Run(Options{Load: func() (*config.Table, error) { return config.Load(path) }, Log: logs, Signals: sig,
			RedirectState: state, FW4State: fw4, Ready: func(a map[string]string) { ready <- a }})
	}()
	var addrs map[string]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, logs.String())
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	defer func() { sig <- syscall.SIGTERM; <-done }()
	tp, hp := ":"+strconv.Itoa(tlsPort), ":"+strconv.Itoa(httpPort)
	for key, want := range map[string]string{"tls@lo": tp, "tls@" + other: tp, "http@lo": hp, "tls": tp, "http": hp} {
		if !strings.HasSuffix(addrs[key], want) {
			t.Errorf("listener %s = %q, want port %s (all: %v)", key, addrs[key], want, addrs)
		}
	}
	for _, key := range []string{"http@" + other, "tls@nosuchdev8", "tls@nosuchdev7"} {
		if a, ok := addrs[key]; ok {
			t.Errorf("listener %s = %s: the gateway is not offered to a passthrough network, nor anything to an untouched one, and nosuchdev7 does not exist", key, a)
		}
	}
	// a device on lan (loopback here) reaches the relay
	c, err := net.DialTimeout("tcp", "127.0.0.1"+tp, 2*time.Second)
	if err != nil {
		t.Fatalf("relay from lan: %v", err)
	}
	c.Write(testnet.ClientHello(t, "api.openai.com"))
	io.ReadAll(c)
	c.Close()
	status := func() stats.Status {
		resp, err := http.Get("http://" + addrs["status"] + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st stats.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := status()
	nets := map[string]stats.NetworkStatus{}
	for _, n := range st.Networks {
		nets[n.Name] = n
	}
	if n := nets["lan"]; !n.Served || n.Device != "lo" || n.IPv4 != "127.0.0.1" || n.Mode != "served" || n.Reason != "" {
		t.Errorf("lan: %+v", n)
	}
	if n := nets["guest"]; n.Served || n.Mode != "passthrough" || !strings.Contains(n.Reason, "HTTPS to the router is not redirected: its redirect is not in fw4's live dstnat chain") {
		t.Errorf("guest: %+v", n)
	}
	if n := nets["iot"]; n.Served || !strings.Contains(n.Reason, "tls listener on nosuchdev7") {
		t.Errorf("iot, whose device is gone: %+v", n)
	}
	if n := nets["office"]; n.Served || n.Mode != "untouched" || n.Reason != "not in the network list of main" {
		t.Errorf("office: %+v", n)
	}
	if st.Redirect == nil || st.Redirect.Active || st.Redirect.Reason != "not redirected on guest" {
		t.Errorf("redirect: %+v", st.Redirect)
	}
	found := false
	for _, d := range st.Devices {
		if d.Addr == "127.0.0.1" {
			found = d.Network == "lan"
		}
	}
	if !found {
		t.Errorf("the loopback device is not shown on lan: %+v", st.Devices)
	}

	// firewall stop: fw4's state file goes; the redirect is shown inactive at once
	os.Remove(fw4)
	if st := status(); st.Redirect == nil || st.Redirect.Active || !strings.Contains(st.Redirect.Reason, "the firewall is stopped") {
		t.Errorf("firewall stopped: %+v", st.Redirect)
	}

	// guest no longer passed through: its listener closes, the others stay
	write("untouched")
	gen := status().Config.Generation
	sig <- syscall.SIGHUP
	for i := 0; i < 200 && status().Config.Generation == gen; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	st = status()
	if _, ok := st.Listeners["tls@"+other]; ok || !strings.HasSuffix(st.Listeners["tls@lo"], tp) {
		t.Errorf("after the reload: %v\n%s", st.Listeners, logs.String())
	}
}
