package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Every program the test starts runs through `ip netns exec NS prog…`, which enters the
// namespace (and binds /etc/netns/NS/* over /etc) and then execs prog, so the pid is prog's. Each
// gets its own process group (so a signal to the test's terminal does not reach it and the
// cleanup can kill it with its children) and SIGKILL when the test process dies, however it dies.

// programEnv is the whole environment of the programs in the namespaces: nothing of the
// caller's (no proxy variables, no OPENAI_BASE_URL) leaks into the devices.
var programEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}

func netnsCommand(ctx context.Context, ns string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append(append([]string(nil), programEnv...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// result is how a one-shot program ended.
type result struct {
	out, errOut string
	code        int // exit code; -1 when it did not start or was killed
	err         error
	took        time.Duration
}

func (r result) ok() bool { return r.err == nil && r.code == 0 }

func (r result) String() string {
	s := fmt.Sprintf("exit %d", r.code)
	if r.err != nil {
		s += " (" + r.err.Error() + ")"
	}
	return fmt.Sprintf("%s after %s\nstdout: %s\nstderr: %s", s, r.took.Round(time.Millisecond), clip(r.out), clip(r.errOut))
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = s[:1000] + "\n…\n" + s[len(s)-1000:]
	}
	return s
}

// runIn runs a program in namespace ns to completion, killing it (and its process group) after
// timeout.
func runIn(ns string, timeout time.Duration, env []string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := netnsCommand(ctx, ns, env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := result{out: out.String(), errOut: errOut.String(), code: -1, took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		r.err = err
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("killed after %s", timeout)
		r.code = -1
	}
	return r
}

// proc is a long-running program in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  syncBuf // stdout and stderr, interleaved
	done chan struct{}
	err  error // how it ended; read after done
}

// startIn starts a long-running program in namespace ns.
func startIn(name, ns string, env []string, args ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = netnsCommand(context.Background(), ns, env, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) error { return syscall.Kill(p.pid(), sig) }

// waitOutput waits until the program has printed want, failing when it exits first or after
// timeout.
func (p *proc) waitOutput(want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), want) {
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before printing %q:\n%s", p.name, p.err, want, clip(p.out.String()))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %s:\n%s", p.name, want, timeout, clip(p.out.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// stop ends the program and everything in its process group: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// kill ends it at once, the way a crash would.
func (p *proc) kill() {
	if !p.exited() {
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// syncBuf is an output sink safe to read while a process writes to it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// inNetns runs f on an OS thread that is inside network namespace ns, so the sockets f creates
// belong to ns (they stay there when the thread switches back). It is how the test serves and
// dials from its own process in the namespaces.
func inNetns(ns string, f func() error) error {
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := setns(self); err != nil {
			// The thread stays locked, so it ends with this goroutine and never runs Go code
			// in the wrong namespace.
			errc <- fmt.Errorf("setns back from %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// sysSetns is setns(2)'s number; package syscall does not define it, and the project does not
// import golang.org/x/sys.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268, "riscv64": 268, "loong64": 268, "386": 346, "arm": 375, "ppc64le": 350, "s390x": 339}[runtime.GOARCH]

func setns(f *os.File) error {
	if sysSetns == 0 {
		return fmt.Errorf("setns: system call number unknown on %s", runtime.GOARCH)
	}
	if _, _, e := syscall.Syscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// dialIn connects to addr from inside namespace ns.
func dialIn(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// waitTCP waits until something accepts TCP connections on addr in ns.
func waitTCP(ns, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := dialIn(ns, "tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s in %s after %s: %v", addr, ns, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
