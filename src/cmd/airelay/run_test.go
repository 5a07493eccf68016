package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/testnet"
)

// buildBinary builds airelay; extra go build flags (an -overlay) may be given.
func buildBinary(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "airelay")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

var dnsAddrRE = regexp.MustCompile(`dns=(\S+)`)

// The real binary: ready line, DNS served, SIGHUP reload, SIGTERM exit 0; bad config exit 2.
func TestRunProcess(t *testing.T) {
	bin := buildBinary(t)
	cfg := writeConfig(t, "config airelay 'main'\n\toption lan_ipv4 '10.1.1.1'\n\toption dns_listen '127.0.0.1:0'\n\toption tls_listen '127.0.0.1:0'\n\toption http_listen '127.0.0.1:0'\n\toption status_listen '127.0.0.1:0'\nconfig provider 'openai'\n\tlist host 'api.openai.com'\n")
	cmd := exec.Command(bin, "run", "--config", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(substr string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("exited before %q", substr)
				}
				if strings.Contains(l, substr) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %q line", substr)
			}
		}
	}
	ready := waitLine("msg=ready")
	m := dnsAddrRE.FindStringSubmatch(ready)
	if m == nil {
		t.Fatalf("ready line without the dns listener: %s", ready)
	}
	ask := func() string {
		q := new(dns.Msg)
		q.SetQuestion("api.openai.com.", dns.TypeA)
		in, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, m[1])
		if err != nil || len(in.Answer) != 1 {
			t.Fatalf("dns: %v %v", in, err)
		}
		return in.Answer[0].(*dns.A).A.String()
	}
	if got := ask(); got != "10.1.1.1" {
		t.Fatalf("A %s", got)
	}
	st := regexp.MustCompile(`status=(\S+)`).FindStringSubmatch(ready)
	out, err := exec.Command(bin, "status", "--addr", st[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config "+cfg+" (generation 1)") || !strings.Contains(string(out), "PROVIDER") {
		t.Fatalf("airelay status: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "status", "--json", "--addr", st[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"generation": 1`) {
		t.Fatalf("airelay status --json: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(data), "10.1.1.1", "10.2.2.2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLine("msg=reloaded")
	if got := ask(); got != "10.2.2.2" {
		t.Fatalf("after SIGHUP A %s", got)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitLine("msg=stopped")
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	bad := writeConfig(t, "config airelay 'main'\n\toption tls_listen 'nowhere'\n")
	out, err = exec.Command(bin, "run", "--config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "option 'tls_listen' value 'nowhere'") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	// Status of a daemon that is not running: exit 1 and say so.
	out, err = exec.Command(bin, "status", "--addr", st[1]).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "not running") {
		t.Fatalf("status of a stopped daemon: %v\n%s", err, out)
	}
	// A port taken by someone else: exit 1 naming the listener.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	busy := writeConfig(t, "config airelay 'main'\n\toption tls_listen '"+ln.Addr().String()+"'\n\toption dns_listen ''\n\toption http_listen ''\n\toption status_listen ''\n")
	out, err = exec.Command(bin, "run", "--config", busy).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "tls listen "+ln.Addr().String()) {
		t.Fatalf("busy port: %v\n%s", err, out)
	}
}

// make EMBED_CONFIG=site.uci builds a site config in place of the default (in a copy of the
// module: go build -overlay misses //go:embed files before Go 1.24); the binary then uses it
// when /etc/config/airelay is absent.
func TestEmbeddedSiteConfig(t *testing.T) {
	if _, err := os.Stat(config.DefaultPath); err == nil {
		t.Skip(config.DefaultPath + " exists on this machine; the embedded config would not be used")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dir := t.TempDir()
	site := filepath.Join(dir, "site.uci")
	// The comment makes the file unique: a build cache entry for the same content made by a
	// go build -overlay of Go < 1.24 (which hashes the overlay but embeds the original) would
	// otherwise hide what this build embeds.
	if err := os.WriteFile(site, []byte("# "+dir+"\nconfig airelay 'main'\n\toption lan_ipv4 '10.42.0.1'\nconfig provider 'sitellm'\n\tlist host 'llm.corp.example'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "airelay")
	root, _ := filepath.Abs("../../..")
	if out, err := exec.Command("make", "-C", root, "--no-print-directory", "build", "EMBED_CONFIG="+site, "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build EMBED_CONFIG=…: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "print-config").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config provider 'sitellm'") || !strings.Contains(string(out), "10.42.0.1") || strings.Contains(string(out), "'openai'") {
		t.Fatalf("site config not embedded: %v\n%s", err, out)
	}
}

// TestRunSyslog: `airelay run --log syslog:PATH` (the init script passes --log syslog) sends the
// ready line as daemon.info and a failed reload as daemon.err to the socket, nothing to stderr;
// an unknown target is refused before anything starts.
func TestRunSyslog(t *testing.T) {
	bin := buildBinary(t)
	sock := filepath.Join(t.TempDir(), "log")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := writeConfig(t, "config airelay 'main'\n\toption dns_listen '127.0.0.1:0'\n\toption tls_listen '127.0.0.1:0'\n\toption http_listen ''\n\toption status_listen ''\n")
	cmd := exec.Command(bin, "run", "--log", "syslog:"+sock, "--config", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	next := func(substr string) string {
		t.Helper()
		buf := make([]byte, 4096)
		for {
			_ = l.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := l.Read(buf)
			if err != nil {
				t.Fatalf("no %q message: %v (stderr %q)", substr, err, stderr.String())
			}
			t.Logf("syslog: %q", buf[:n])
			if m := string(buf[:n]); strings.Contains(m, substr) {
				return m
			}
		}
	}
	if m := next("msg=ready"); !strings.HasPrefix(m, "<30>") || !strings.Contains(m, " airelay["+strconv.Itoa(cmd.Process.Pid)+"]: msg=ready") {
		t.Errorf("ready message %q, want <30> (daemon.info) and the tag airelay[pid]", m)
	}
	if err := os.WriteFile(cfg, []byte("config airelay 'main'\n\toption dns_ttl 'x'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	if m := next("reload"); !strings.HasPrefix(m, "<27>") {
		t.Errorf("failed reload message %q, want <27> (daemon.err)", m)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	next("msg=stopped")
	if err := cmd.Wait(); err != nil || stderr.Len() != 0 {
		t.Errorf("exit %v, stderr %q (want nothing: every line went to syslog)", err, stderr.String())
	}

	out, err := exec.Command(bin, "run", "--log", "file", "--config", cfg).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `log target "file"`) {
		t.Errorf("--log file: %v %s", err, out)
	}
}

// TestRunHomeControls drives the real binary's clock (AIRELAY_CLOCK_FILE, re-read on SIGHUP)
// across a client's schedule: outside its window the relay answers the device's ClientHello
// with access_denied; inside, it relays. Status shows the schedule and today's use; the
// history survives in history_file after SIGTERM and `airelay history` prints it.
func TestRunHomeControls(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	got := make(chan int, 4)
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 4096)
			n, _ := c.Read(b)
			got <- n
			c.Write([]byte("hello from the provider"))
			c.Close()
		}
	}()
	clock := filepath.Join(dir, "clock")
	history := filepath.Join(dir, "history.json")
	os.WriteFile(clock, []byte("2026-12-07T21:00:00Z\n"), 0o644) // a Monday, after the window
	cfg := writeConfig(t, "config airelay 'main'\n\toption dns_listen ''\n\toption tls_listen '127.0.0.1:0'\n\toption http_listen ''\n\toption status_listen '127.0.0.1:0'\n\toption history_file '"+history+"'\n"+
		"config provider 'openai'\n\tlist host 'api.openai.com'\n\toption connect '"+up.Addr().String()+"'\n"+
		"config client 'kid'\n\toption name 'Kid'\n\tlist ip '127.0.0.1'\n\tlist schedule 'Mon-Fri 15:00-20:00'\n")
	cmd := exec.Command(bin, "run", "--log", "stderr", "--config", cfg)
	cmd.Env = append(os.Environ(), "TZ=UTC", "AIRELAY_CLOCK_FILE="+clock)
	var stderr testnet.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var ready string
	for i := 0; i < 100 && ready == ""; i++ {
		time.Sleep(50 * time.Millisecond)
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, "msg=ready") {
				ready = l
			}
		}
	}
	tlsAddr := regexp.MustCompile(`tls=(\S+)`).FindStringSubmatch(ready)
	statusAddr := regexp.MustCompile(`status=(\S+)`).FindStringSubmatch(ready)
	if tlsAddr == nil || statusAddr == nil {
		t.Fatalf("no ready line: %s", stderr.String())
	}
	hello := func() []byte {
		t.Helper()
		c, err := net.Dial("tcp", tlsAddr[1])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(testnet.ClientHello(t, "api.openai.com"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return b
	}
	if b := hello(); !bytes.Equal(b, []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49}) {
		t.Fatalf("outside the window: got %q, want the access_denied alert", b)
	}
	st := status(t, bin, statusAddr[1])
	if !strings.Contains(st, `"open": false`) || !strings.Contains(st, `"windows": "Mon,Tue,Wed,Thu,Fri 15:00-20:00"`) || !strings.Contains(st, `"next": "2026-12-08T15:00:00Z"`) || !strings.Contains(st, `"name_source": "client"`) {
		t.Errorf("status outside the window:\n%s", st)
	}

	os.WriteFile(clock, []byte("2026-12-08T16:00:00Z\n"), 0o644) // Tuesday, inside
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Count(stderr.String(), "msg=reloaded") == 1 })
	if b := hello(); string(b) != "hello from the provider" {
		t.Fatalf("inside the window: got %q", b)
	}
	if n := <-got; n == 0 {
		t.Error("the provider got no ClientHello")
	}
	waitFor(t, func() bool { return strings.Contains(status(t, bin, statusAddr[1]), `"open": true`) })
	out, err := exec.Command(bin, "history", "--addr", statusAddr[1]).CombinedOutput()
	if err != nil || !regexp.MustCompile(`2026-12-07\s+127\.0\.0\.1 \(Kid\)\s+openai\s+0\s+0\s+0\s+0B\s+0B\s+1`).Match(out) || !strings.Contains(string(out), "usage 2026-11-08 to 2026-12-08 (31 days)") {
		t.Errorf("airelay history: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "history", "--json", "--days", "1", "--device", "127.0.0.1", "--addr", statusAddr[1]).CombinedOutput(); err != nil || !strings.Contains(string(out), `"from": "2026-12-08"`) || strings.Contains(string(out), "2026-12-07") {
		t.Errorf("airelay history --json --days 1: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "history", "--device", "kid", "--addr", statusAddr[1]).CombinedOutput(); err == nil || !strings.Contains(string(out), "device: want an IP address") {
		t.Errorf("airelay history --device kid: %v\n%s", err, out)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(history)
	// the refusal on Monday and the relayed connection on Tuesday, each on its own day
	if err != nil || !regexp.MustCompile(`\{"day":"2026-12-07","addr":"127.0.0.1","provider":"openai","tokens_in":0,"tokens_out":0,"requests":0,"bytes_up":0,"bytes_down":0,"denied":1\}`).Match(b) ||
		!regexp.MustCompile(`\{"day":"2026-12-08","addr":"127.0.0.1","provider":"openai","tokens_in":0,"tokens_out":0,"requests":0,"bytes_up":[1-9][0-9]*,"bytes_down":23,"denied":0\}`).Match(b) {
		t.Errorf("history file after stop: %v\n%s", err, b)
	}
}

func status(t *testing.T, bin, addr string) string {
	t.Helper()
	out, err := exec.Command(bin, "status", "--json", "--addr", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v %s", err, out)
	}
	return string(out)
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}
