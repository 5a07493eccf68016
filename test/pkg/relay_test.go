package pkg

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// binaryOf extracts /usr/sbin/airelay of one architecture's ipk.
func binaryOf(t *testing.T, arch string) string {
	t.Helper()
	b, err := fileOf(openIPK(t, ipks(t)["airelay/"+arch]), "./usr/sbin/airelay")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "airelay")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// command runs the packaged binary of arch, under qemu-user when it is not the host's.
func command(t *testing.T, arch string, args ...string) *exec.Cmd {
	t.Helper()
	bin := binaryOf(t, arch)
	if q := arches[arch].qemu; q != "" {
		return exec.Command(need(t, q), append([]string{bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

var listenRE = regexp.MustCompile(`\b(tls|dns|http|status)=(\S+)`)

// daemon is a running `airelay run`.
type daemon struct {
	cmd   *exec.Cmd
	addrs map[string]string
	log   *syncBuf
}

// startDaemon runs `airelay run --config cfg` and waits for its ready line.
func startDaemon(t *testing.T, cmd *exec.Cmd) *daemon {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, addrs: map[string]string{}, log: &syncBuf{}}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			d.log.WriteString(l + "\n")
			if strings.Contains(l, "msg=ready") {
				ready <- l
			}
		}
		close(ready)
	}()
	select {
	case l, ok := <-ready:
		if !ok {
			t.Fatalf("airelay exited before it was ready:\n%s", d.log)
		}
		for _, m := range listenRE.FindAllStringSubmatch(l, -1) {
			d.addrs[m[1]] = m[2]
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("airelay not ready after 60s:\n%s", d.log)
	}
	return d
}

var (
	fakeOnce sync.Once
	fakeBin  string
	fakeErr  error
)

// upstream runs src/cmd/fakeprovider (an HTTPS stand-in for api.openai.com whose leaf comes
// from a throwaway src/testca CA) and returns the pool trusting that CA and its address.
func upstream(t *testing.T) (*x509.CertPool, string) {
	t.Helper()
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airelay-pkg-fake")
		if err != nil {
			fakeErr = err
			return
		}
		fakeBin = filepath.Join(dir, "fakeprovider")
		out, err := exec.Command("go", "build", "-o", fakeBin, "github.com/airelay/airelay/src/cmd/fakeprovider").CombinedOutput()
		if err != nil {
			fakeErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if fakeErr != nil {
		t.Fatalf("build fakeprovider: %v", fakeErr)
	}
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(fakeBin, "--listen", addr, "--selfsigned", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("fakeprovider did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool, addr
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func relayConfig(connect, dnsListen string) string {
	return "config airelay 'main'\n\toption lan_ipv4 '10.9.9.9'\n\toption dns_listen '" + dnsListen + "'\n" +
		"\toption tls_listen '127.0.0.1:0'\n\toption http_listen ''\n\toption status_listen '127.0.0.1:0'\n" +
		"config provider 'openai'\n\tlist host 'api.openai.com'\n\toption connect '" + connect + "'\n" +
		"config provider 'corp'\n\tlist host '*.ai.example.com'\n\toption upstream 'https://x.ai.example.com'\n"
}

// tlsExchange connects to the relay as a device sent there by DNS would (TLS with the
// provider's SNI, the provider's certificate checked end to end) and makes an API call.
func tlsExchange(t *testing.T, pool *x509.CertPool, relay string) {
	t.Helper()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 20 * time.Second}).DialContext(ctx, "tcp", relay)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	resp, err := c.Get("https://api.openai.com/v1/models")
	if err != nil {
		t.Fatalf("HTTPS through the relay: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"data"`)) {
		t.Fatalf("through the relay: %s %s", resp.Status, body)
	}
}

// The mipsel and arm64 binaries (what most routers run) and the host's own: version, then a
// TLS connection relayed by SNI to a local server.
func TestBinariesRelay(t *testing.T) {
	for _, arch := range []string{"mipsel_24kc", "aarch64_cortex-a53", "x86_64"} {
		t.Run(arch, func(t *testing.T) {
			out, err := command(t, arch, "version").CombinedOutput()
			if err != nil || !regexp.MustCompile(`^airelay [0-9][^ ]*-r?[0-9A-Za-z.]+\n$`).Match(out) {
				t.Fatalf("version: %q %v", out, err)
			}
			ca, up := upstream(t)
			cfg := writeFile(t, "airelay", relayConfig(up, "127.0.0.1:0"))
			d := startDaemon(t, command(t, arch, "run", "--config", cfg))
			if d.addrs["tls"] == "" {
				t.Fatalf("no tls listener in the ready line:\n%s", d.log)
			}
			tlsExchange(t, ca, d.addrs["tls"])
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return freePort(t)
	}
	u.Close()
	return p
}

// A real dnsmasq with OpenWrt's rebind protection reads exactly what `airelay dnsmasq-conf`
// prints, forwards the AI names to airelay and hands back the router's (private) address;
// "*.x" catches subdomains only; without the rebind-domain-ok lines the answer would be dropped.
func TestDnsmasqForwards(t *testing.T) {
	dnsmasq := need(t, "dnsmasq")
	_, up := upstream(t)
	dnsPort := freePort(t)
	cfg := writeFile(t, "airelay", relayConfig(up, "127.0.0.1:"+strconv.Itoa(dnsPort)))
	startDaemon(t, command(t, "x86_64", "run", "--config", cfg))
	conf, err := command(t, "x86_64", "dnsmasq-conf", "--config", cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		conf  string
		query string
		want  string // "" : not 10.9.9.9
		nx    bool   // the answer must be NXDOMAIN
	}{
		{"forwarded", string(conf), "api.openai.com.", "10.9.9.9", false},
		// Firefox's DoH canary: NXDOMAIN keeps its DNS over HTTPS off (doh_canary, default on)
		{"doh canary", string(conf), "use-application-dns.net.", "", true},
		{"wildcard subdomain", string(conf), "x.ai.example.com.", "10.9.9.9", false},
		{"wildcard parent not caught", string(conf), "ai.example.com.", "", false},
		{"rebind protection without rebind-domain-ok", regexp.MustCompile(`(?m)^rebind-domain-ok=.*\n`).ReplaceAllString(string(conf), ""), "api.openai.com.", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			confFile := writeFile(t, "airelay.conf", c.conf)
			cmd := exec.Command(dnsmasq, "--keep-in-foreground", "--conf-file="+confFile, "--port="+strconv.Itoa(port),
				"--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=",
				"--stop-dns-rebind", "--user=root", "--log-facility=-")
			var log syncBuf
			cmd.Stderr = &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			q := new(dns.Msg)
			q.SetQuestion(c.query, dns.TypeA)
			var in *dns.Msg
			for i := 0; i < 50; i++ {
				if in, _, err = (&dns.Client{Timeout: time.Second}).Exchange(q, "127.0.0.1:"+strconv.Itoa(port)); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("dnsmasq: %v\n%s", err, log.String())
			}
			got := ""
			for _, rr := range in.Answer {
				if a, ok := rr.(*dns.A); ok {
					got = a.A.String()
				}
			}
			if c.nx != (in.Rcode == dns.RcodeNameError) {
				t.Errorf("%s via dnsmasq: rcode %s, want NXDOMAIN %v", c.query, dns.RcodeToString[in.Rcode], c.nx)
			}
			if c.want != "" && got != c.want || c.want == "" && got == "10.9.9.9" {
				t.Errorf("%s via dnsmasq: %q (rcode %s), want %q\n%s", c.query, got, dns.RcodeToString[in.Rcode], c.want, log.String())
			}
		})
	}
}
