package logging

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		l    Level
		want int
	}{
		{LevelDebug - 4, 7}, {LevelDebug, 7}, {LevelInfo, 6}, {LevelInfo + 2, 6},
		{LevelWarn, 4}, {LevelError, 3}, {LevelError + 4, 3},
	} {
		if got := severity(tc.l); got != tc.want {
			t.Errorf("severity(%v) = %d, want %d", tc.l, got, tc.want)
		}
	}
}

// TestSyslog reads what a syslog daemon would: one datagram a record, facility daemon with
// the level's severity (daemon.debug 31, daemon.info 30, daemon.warn 28, daemon.err 27), the
// program tag and pid, no level= or time= (the stderr lines' own), attributes kept.
func TestSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	level := NewLevel(LevelDebug)
	var fallback bytes.Buffer
	root, err := New("syslog:"+sock, &fallback, level)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	log := root.With("role", "tls")
	log.Debug("d", "k", 1)
	log.Info("ready", "listeners", "tls :8443")
	log.Warn("w")
	log.Error("e", "err", "boom")
	tag := progName() + "[" + strconv.Itoa(os.Getpid()) + "]: "
	for _, want := range []struct {
		pri  string
		rest string
	}{
		{"<31>", `msg=d role=tls k=1`},
		{"<30>", `msg=ready role=tls listeners="tls :8443"`},
		{"<28>", `msg=w role=tls`},
		{"<27>", `msg=e role=tls err=boom`},
	} {
		buf := make([]byte, 2048)
		_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want.pri) {
			t.Errorf("datagram %q: want priority %s", got, want.pri)
			continue
		}
		// "<PRI>Jan _2 15:04:05 airelay[pid]: msg=…", as libc's syslog() sends it
		rest := got[len(want.pri):]
		if len(rest) < len(time.Stamp)+1 || rest[len(time.Stamp)] != ' ' {
			t.Errorf("datagram %q: no timestamp after the priority", got)
			continue
		}
		if _, err := time.Parse(time.Stamp, rest[:len(time.Stamp)]); err != nil {
			t.Errorf("datagram %q: timestamp: %v", got, err)
		}
		if body := rest[len(time.Stamp)+1:]; body != tag+want.rest {
			t.Errorf("datagram body %q, want %q", body, tag+want.rest)
		}
	}
	level.Set(LevelInfo)
	log.Debug("not sent")
	log.Info("sent")
	buf := make([]byte, 2048)
	n, _ := l.Read(buf)
	if !strings.Contains(string(buf[:n]), "msg=sent") {
		t.Errorf("after raising the level to info: %q", buf[:n])
	}
	if fallback.Len() != 0 {
		t.Errorf("fell back to stderr: %q", fallback.String())
	}
}

// TestSyslogDaemonRestarts: a send to a socket nobody reads any more is sent again on a new
// socket (logd restarted), and with no daemon at all the line goes to stderr, not lost.
func TestSyslogDaemonRestarts(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	listen := func() *net.UnixConn {
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := listen()
	var fallback bytes.Buffer
	log, err := New("syslog:"+sock, &fallback, NewLevel(LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	l.Close()
	os.Remove(sock)
	l = listen()
	defer l.Close()
	log.Info("after restart")
	buf := make([]byte, 512)
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := l.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "msg=\"after restart\"") {
		t.Fatalf("after the daemon restarted: %q %v (stderr %q)", buf[:n], err, fallback.String())
	}
	l.Close()
	os.Remove(sock)
	log.Error("nobody listens")
	if got := fallback.String(); got != "<3>msg=\"nobody listens\"\n" {
		t.Errorf("with no syslog daemon, stderr got %q", got)
	}
}

func TestJournal(t *testing.T) {
	var out bytes.Buffer
	log, err := New("journal", &out, NewLevel(LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("a")
	log.Info("ready")
	log.Warn("b")
	log.Error("c")
	want := "<7>msg=a\n<6>msg=ready\n<4>msg=b\n<3>msg=c\n"
	if out.String() != want {
		t.Errorf("journal lines:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestAuto: stderr stays plain text lines unless it is the journal's stream.
func TestAuto(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", "1:2")
	log, _ := New("auto", f, NewLevel(LevelInfo))
	log.Info("plain")
	t.Setenv("JOURNAL_STREAM", strconv.FormatUint(uint64(st.Dev), 10)+":"+strconv.FormatUint(uint64(st.Ino), 10))
	log, _ = New("auto", f, NewLevel(LevelInfo))
	log.Info("journal")
	b, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "time=") || !strings.Contains(lines[0], "level=INFO msg=plain") || lines[1] != "<6>msg=journal" {
		t.Errorf("auto wrote %q", lines)
	}
}

func TestBadTarget(t *testing.T) {
	if _, err := New("file", os.Stderr, NewLevel(LevelInfo)); err == nil || !strings.Contains(err.Error(), `"file"`) {
		t.Errorf("New(file): %v", err)
	}
}

// TestSyslogLateDaemon: logd not yet listening when airelay starts: lines go to stderr with
// their level, and once the socket exists they reach it (issue 13's review: before, stderr
// stayed for the daemon's whole life, all daemon.err under procd).
func TestSyslogLateDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	var fallback bytes.Buffer
	log, err := New("syslog:"+sock, &fallback, NewLevel(LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	log.Info("early")
	if fallback.String() != "<6>msg=early\n" {
		t.Errorf("before the daemon: stderr %q", fallback.String())
	}
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	log.Info("late")
	buf := make([]byte, 512)
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := l.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "<30>") || !strings.HasSuffix(string(buf[:n]), "msg=late") {
		t.Errorf("after the daemon started: %q %v", buf[:n], err)
	}
}
