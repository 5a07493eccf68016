package pkg

import (
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
)

// The systemd units load (systemd-analyze verify), and the packaged binary started through
// systemd-socket-activate with a named socket serves on that inherited socket (its configured
// address cannot even be bound here) and tells NOTIFY_SOCKET READY=1, then WATCHDOG=1; the status
// listener on its inherited socket answers `airelay status`.
func TestSystemdSocketActivation(t *testing.T) {
	activate := need(t, "systemd-socket-activate")
	root := repoRoot(t)
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		bin := binaryOf(t, "x86_64")
		units, _ := filepath.Glob(filepath.Join(root, "files", "airelay*.s*"))
		var args []string
		for _, u := range units {
			if !strings.HasSuffix(u, ".service") && !strings.HasSuffix(u, ".socket") {
				continue
			}
			b, _ := os.ReadFile(u)
			p := filepath.Join(dir, filepath.Base(u))
			os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/airelay", bin)), 0o644)
			args = append(args, p)
		}
		if len(args) != 5 {
			t.Errorf("units: %v", args)
		}
		out, err := exec.Command(sa, append([]string{"verify"}, args...)...).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		for _, u := range args {
			b, _ := os.ReadFile(u)
			if strings.HasSuffix(u, ".socket") && !regexp.MustCompile(`(?m)^FileDescriptorName=(dns|tls|http|status)$`).Match(b) {
				t.Errorf("%s names no role", u)
			}
		}
	}

	dir := t.TempDir()
	notify := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pool, up := upstream(t)
	cfg := writeFile(t, "airelay", "config airelay 'main'\n\toption dns_listen ''\n\toption http_listen ''\n"+
		"\toption tls_listen '192.0.2.1:8443'\n\toption status_listen '192.0.2.1:9099'\n"+ // TEST-NET: not an address of this machine
		"config provider 'openai'\n\tlist host 'api.openai.com'\n\toption connect '"+up+"'\n")
	port, statusPort := freePort(t), freePort(t)
	bin := binaryOf(t, "x86_64")
	cmd := exec.Command(activate, "-l", "127.0.0.1:"+strconv.Itoa(port), "-l", "127.0.0.1:"+strconv.Itoa(statusPort), "--fdname=tls:status",
		"-E", "NOTIFY_SOCKET="+notify, "-E", "WATCHDOG_USEC=400000",
		bin, "run", "--config", cfg)
	var log syncBuf
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	// systemd-socket-activate starts the program on the first connection
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatalf("systemd-socket-activate does not listen: %v\n%s", err, log.String())
		}
		time.Sleep(25 * time.Millisecond)
	}

	got := map[string]bool{}
	buf := make([]byte, 4096)
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !got["READY=1"] || !got["WATCHDOG=1"] {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("notify socket: %v (got %v)\n%s", err, got, log.String())
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			got[l] = true
		}
	}
	tlsExchange(t, pool, "127.0.0.1:"+strconv.Itoa(port))
	out, err := exec.Command(bin, "status", "--json", "--addr", "127.0.0.1:"+strconv.Itoa(statusPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"generation": 1`) {
		t.Errorf("airelay status on the inherited status socket: %v\n%s\n%s", err, out, log.String())
	}
	if strings.Contains(log.String(), "192.0.2.1") && strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("the daemon tried the configured address instead of the inherited socket:\n%s", log.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !got["STOPPING=1"] {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("no STOPPING=1 after SIGTERM: %v\n%s", err, log.String())
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			got[l] = true
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
	}
}
