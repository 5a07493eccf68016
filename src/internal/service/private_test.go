package service

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/testca"
)

// A provider name that the upstream resolver maps to a loopback address is refused: relaying
// there would make airelay a way into the router itself. allow_private lifts that.
func TestDNSLearnedPrivateAddressRefused(t *testing.T) {
	ca, _ := testca.New("private test")

	// Upstream DNS: api.openai.com → 127.0.0.1.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("127.0.0.1")}}
		}
		_ = w.WriteMsg(m)
	})}
	go up.ActivateAndServe()
	defer up.Shutdown()

	for _, allow := range []string{"0", "1"} {
		t.Run("allow_private="+allow, func(t *testing.T) {
			// No connect override: the relay resolves the SNI name upstream and dials port 443.
			path := filepath.Join(t.TempDir(), "airelay")
			text := fmt.Sprintf("config airelay 'main'\n\toption dns_listen ''\n\toption http_listen ''\n\toption tls_listen '127.0.0.1:0'\n\toption status_listen '127.0.0.1:0'\n\tlist resolver '%s'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n\toption allow_private '%s'\n", pc.LocalAddr(), allow)
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &lockedBuffer{}
			sig := make(chan os.Signal, 1)
			ready := make(chan map[string]string, 1)
			done := make(chan error, 1)
			go func() {
				done <- Run(Options{Load: func() (*config.Table, error) { return config.Load(path) }, Log: logs, Signals: sig, Ready: func(a map[string]string) { ready <- a }})
			}()
			addrs := <-ready
			defer func() { sig <- syscall.SIGTERM; <-done }()
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addrs["tls"], &tls.Config{RootCAs: ca.Pool(), ServerName: "api.openai.com"})
			if err == nil {
				c.Close()
			}
			if err == nil {
				t.Fatal("handshake completed: something answered on 127.0.0.1:443")
			}
			waitLog := func(sub string) bool {
				for i := 0; i < 300; i++ {
					if strings.Contains(logs.String(), sub) {
						return true
					}
					time.Sleep(10 * time.Millisecond)
				}
				return false
			}
			if allow == "0" {
				if !waitLog("resolved to 127.0.0.1") || !waitLog("refused") {
					t.Fatalf("not refused as private:\n%s", logs.String())
				}
			} else {
				// Allowed: the dial to 127.0.0.1:443 is attempted (and fails, nothing listens
				// there unprivileged), not refused by policy.
				if !waitLog("relay: dial failed") || strings.Contains(logs.String(), "refused (a loop") {
					t.Fatalf("allow_private did not allow the dial:\n%s", logs.String())
				}
			}
		})
	}
}
