package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Processes under test. Each is started from a thread whose CPU affinity is set for the fork
// (Linux hands the forking thread's mask to the child), so the program runs pinned from its
// first instruction without a taskset in between: that matters for the startup timing.

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

var (
	procsMu sync.Mutex
	procs   = map[*proc]struct{}{}
)

// cpuMask is a CPU affinity mask for sched_setaffinity.
type cpuMask [16]uint64

func maskOf(cpus []int) cpuMask {
	var m cpuMask
	for _, c := range cpus {
		m[c/64] |= 1 << (c % 64)
	}
	return m
}

func setAffinity(m *cpuMask) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return e
	}
	return nil
}

func getAffinity() (cpuMask, error) {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return m, e
	}
	return m, nil
}

// startPinned starts cmd on cpus; nil cpus: the harness's own mask.
func startPinned(cmd *exec.Cmd, cpus []int) error {
	if cpus == nil {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := getAffinity()
	if err != nil {
		return err
	}
	m := maskOf(cpus)
	if err := setAffinity(&m); err != nil {
		return fmt.Errorf("sched_setaffinity: %w", err)
	}
	err = cmd.Start()
	if e := setAffinity(&old); e != nil && err == nil {
		err = e
	}
	return err
}

// start runs a program under test on cpus, its output in dir/name.log.
func start(dir, name string, cpus []int, env []string, argv ...string) (*proc, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := startPinned(cmd, cpus); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: f}
	procsMu.Lock()
	procs[p] = struct{}{}
	procsMu.Unlock()
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM (nginx: fast shutdown; airelay: drain), then SIGKILL after a while.
func (p *proc) stop() {
	if p == nil {
		return
	}
	procsMu.Lock()
	delete(procs, p)
	procsMu.Unlock()
	if !p.alive() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		for _, pid := range treePIDs(p.pid()) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-p.done
	}
}

// logTail is the end of the program's output, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func stopAll() {
	procsMu.Lock()
	var ps []*proc
	for p := range procs {
		ps = append(ps, p)
	}
	procsMu.Unlock()
	for _, p := range ps {
		p.stop()
	}
}

// waitHTTP waits until addr answers path with any HTTP status.
func waitTCP(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil && !p.alive() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	name := "?"
	if p != nil {
		name = p.name
	}
	return fmt.Errorf("%s: nothing listens on %s after %v", name, addr, timeout)
}

// --- /proc ---

// clockTicks is USER_HZ; 100 on every Linux architecture the bench runs on.
const clockTicks = 100

// treePIDs returns pid and its descendants.
func treePIDs(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(n); err == nil {
			parent[n] = st.ppid
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for c, pp := range parent {
			if pp == out[i] {
				out = append(out, c)
			}
		}
	}
	return out
}

type procStat struct {
	ppid         int
	utime, stime int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("bad stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After the comm: state(3) ppid(4) … utime(14) stime(15); f[0] is field 3.
	if len(f) < 13 {
		return procStat{}, errors.New("short stat")
	}
	var st procStat
	st.ppid, _ = strconv.Atoi(f[1])
	st.utime, _ = strconv.ParseInt(f[11], 10, 64)
	st.stime, _ = strconv.ParseInt(f[12], 10, 64)
	return st, nil
}

// cpuSeconds is utime+stime of pid and its descendants.
func cpuSeconds(pid int) float64 {
	var t int64
	for _, p := range treePIDs(pid) {
		if st, err := readStat(p); err == nil {
			t += st.utime + st.stime
		}
	}
	return float64(t) / clockTicks
}

// memory of a process tree, in bytes: VmRSS from /proc/PID/status and Pss from
// /proc/PID/smaps_rollup, summed over the tree (Pss shares pages fairly between nginx's master
// and workers; RSS counts shared pages once per process).
type mem struct {
	RSS   int64 `json:"rss_bytes"`
	PSS   int64 `json:"pss_bytes"`
	Procs int   `json:"processes"`
}

func memOf(pid int) mem {
	var m mem
	for _, p := range treePIDs(pid) {
		m.RSS += kbField(fmt.Sprintf("/proc/%d/status", p), "VmRSS:")
		m.PSS += kbField(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
		m.Procs++
	}
	return m
}

func kbField(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpusAllowed is the Cpus_allowed_list of pid, to record the pinning actually in force.
func cpusAllowed(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// raiseNofile lifts RLIMIT_NOFILE to its hard limit for the harness and everything it starts
// (setting it explicitly stops Go from restoring the old soft limit in children).
func raiseNofile() uint64 {
	var r syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	want := uint64(1 << 20)
	if r.Max < want {
		r.Max = want // root may raise the hard limit
	}
	r.Cur = r.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}

// runOut runs a command pinned to cpus and returns its combined output.
func runOut(cpus []int, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := startPinned(cmd, cpus); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return buf.String(), err
}
