// Package logging owns where airelay's log lines go and at which priority, so that a router's
// logread and a systemd journal file each line under its real level:
//
//	log, err := logging.New("auto", os.Stderr, &level) // once, at start
//	defer log.Close()
//
// Targets: "stderr" writes slog-style text lines as they are (a terminal, tests); "journal" puts
// journald's "<N>" level prefix before each line on stderr (systemd reads it, SyslogLevelPrefix
// is on by default); "syslog" sends each line as one datagram to /dev/log (OpenWrt's logd, or
// any syslogd) with facility daemon and the level's priority, which procd's stderr capture
// cannot do (it files everything on stderr as daemon.err). "syslog:PATH" names another socket.
// "auto" is journal when stderr is the journal's stream (JOURNAL_STREAM), else stderr.
//
// It must not decide what is logged (callers do) nor ever block the daemon on a dead log
// socket: a send that fails is retried once on a fresh socket, then the line goes to stderr;
// a socket missing at start is dialled again at the next line.
package logging

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Syslog severities (RFC 5424) of the four levels, and the daemon facility.
const (
	facilityDaemon = 3 << 3
	sevErr         = 3
	sevWarning     = 4
	sevInfo        = 6
	sevDebug       = 7
)

// severity maps a level to its syslog severity: below info is debug, below warn is info.
func severity(l Level) int {
	switch {
	case l >= LevelError:
		return sevErr
	case l >= LevelWarn:
		return sevWarning
	case l >= LevelInfo:
		return sevInfo
	}
	return sevDebug
}

// DefaultSocket is where syslog daemons listen.
const DefaultSocket = "/dev/log"

// New returns a logger for target writing records at or above level. stderr is where the
// "stderr" and "journal" targets write and where "syslog" falls back to. Its Close ends the
// syslog socket (a no-op for the others).
func New(target string, stderr io.Writer, level *LevelVar) (*Logger, error) {
	if err := CheckTarget(target); err != nil {
		return nil, err
	}
	if target == "" || target == "auto" {
		target = "stderr"
		if isJournal(stderr) {
			target = "journal"
		}
	}
	switch {
	case target == "stderr":
		return Text(stderr, level), nil
	case target == "journal":
		return byLevel(level, nopCloser{}, func(sev int) io.Writer {
			return &prefixWriter{w: stderr, prefix: "<" + strconv.Itoa(sev) + ">"}
		}), nil
	case target == "syslog" || strings.HasPrefix(target, "syslog:"):
		path := strings.TrimPrefix(strings.TrimPrefix(target, "syslog"), ":")
		if path == "" {
			path = DefaultSocket
		}
		s := &syslogConn{path: path, tag: progName() + "[" + strconv.Itoa(os.Getpid()) + "]: ", fallback: stderr}
		// A socket that is not there yet (logd still starting) is dialled again for each line;
		// until it answers, lines go to stderr with their level, never lost.
		_ = s.dial()
		return byLevel(level, s, func(sev int) io.Writer { return &syslogWriter{c: s, pri: facilityDaemon | sev} }), nil
	}
	panic("unreachable: CheckTarget let " + target + " through")
}

// CheckTarget tells whether New knows target, without opening anything.
func CheckTarget(target string) error {
	switch {
	case target == "" || target == "auto" || target == "stderr" || target == "journal" || target == "syslog":
		return nil
	case strings.HasPrefix(target, "syslog:") && len(target) > len("syslog:"):
		return nil
	}
	return fmt.Errorf("log target %q: want auto, stderr, journal, syslog or syslog:PATH", target)
}

// byLevel is a logger whose lines go to the writer of their severity, so the writer knows the
// priority without parsing the line. Time and level are left out: syslog and the journal keep
// both themselves.
func byLevel(level *LevelVar, closer io.Closer, writer func(sev int) io.Writer) *Logger {
	l := &Logger{level: orInfo(level), closer: closer, mu: new(sync.Mutex)}
	for i, sev := range [...]int{sevDebug, sevInfo, sevWarning, sevErr} {
		l.w[i] = writer(sev)
	}
	return l
}

// prefixWriter writes prefix before each line (the logger writes one line a call).
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(append(p.buf[:0], p.prefix...), b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// isJournal reports whether w is the stream systemd connected to the journal: JOURNAL_STREAM
// holds its device and inode ("dev:ino"), which must match w's file.
func isJournal(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == strconv.FormatUint(uint64(st.Dev), 10)+":"+strconv.FormatUint(uint64(st.Ino), 10)
}

func progName() string {
	name := os.Args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		name = "airelay"
	}
	return name
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// syslogConn is the socket to the syslog daemon, shared by the four writers.
type syslogConn struct {
	path     string
	tag      string // "airelay[pid]: "
	fallback io.Writer

	mu     sync.Mutex
	conn   net.Conn
	stream bool // connected with "unix" (SOCK_STREAM): messages end in a newline
	buf    []byte
}

func (s *syslogConn) dial() error {
	var err error
	for _, network := range []string{"unixgram", "unix"} {
		var c net.Conn
		if c, err = net.Dial(network, s.path); err == nil {
			if s.conn != nil {
				s.conn.Close()
			}
			s.conn, s.stream = c, network == "unix"
			return nil
		}
	}
	return err
}

func (s *syslogConn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// send writes one message "<PRI>Mmm dd hh:mm:ss tag[pid]: line", the form libc's syslog()
// sends and logd and busybox syslogd read. A stream socket gets a newline as the separator.
func (s *syslogConn) send(pri int, line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line = trimNewline(line)
	s.buf = append(s.buf[:0], '<')
	s.buf = strconv.AppendInt(s.buf, int64(pri), 10)
	s.buf = append(s.buf, '>')
	s.buf = time.Now().AppendFormat(s.buf, time.Stamp)
	s.buf = append(s.buf, ' ')
	s.buf = append(s.buf, s.tag...)
	s.buf = append(s.buf, line...)
	for try := 0; try < 2; try++ {
		if s.conn == nil {
			if s.dial() != nil {
				break
			}
		}
		msg := s.buf
		if s.stream {
			msg = append(msg, '\n')
		}
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := s.conn.Write(msg); err == nil {
			return
		}
		s.conn.Close()
		s.conn = nil // logd restarted: dial again once
	}
	fmt.Fprintf(s.fallback, "<%d>%s\n", pri&7, line)
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// syslogWriter sends each Write as one message at its priority.
type syslogWriter struct {
	c   *syslogConn
	pri int
}

func (w *syslogWriter) Write(b []byte) (int, error) {
	w.c.send(w.pri, b)
	return len(b), nil
}
