package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startOnce execs argv pinned to the proxy CPUs and returns the time from just before the fork
// to the first gateway answer (GET /openai/v1/models through to the fake, status 200), and for
// airelay the time to its "ready" log line. The client polls connect every 100 µs from the load
// CPU, so polling does not take CPU from the program starting.
func (e *env) startOnce(argv []string, env []string, addr, req string, readyWord string) (first, ready time.Duration, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw, _ := os.Pipe()
	cmd.Stderr, cmd.Stdout = pw, io.Discard
	readyAt := make(chan time.Time, 1)
	t0 := time.Now()
	if err := startPinned(cmd, e.p.ProxyCPUs); err != nil {
		pw.Close()
		pr.Close()
		return 0, 0, err
	}
	pw.Close()
	var tail []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		seen := false
		for sc.Scan() {
			if len(tail) < 20 {
				tail = append(tail, sc.Text())
			}
			if !seen && readyWord != "" && strings.Contains(sc.Text(), readyWord) {
				readyAt <- time.Now()
				seen = true
			}
		}
		pr.Close()
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	deadline := t0.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			<-scanned
			return 0, 0, fmt.Errorf("exited before answering (%v): %s", waitErr, strings.Join(tail, " | "))
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			time.Sleep(100 * time.Microsecond)
			continue
		}
		io.Copy(io.Discard, res.Body)
		first = time.Since(t0)
		c.Close()
		if res.StatusCode != 200 {
			return first, 0, fmt.Errorf("status %s", res.Status)
		}
		break
	}
	if first == 0 {
		return 0, 0, errors.New("no answer within 10s")
	}
	if readyWord != "" {
		select {
		case t := <-readyAt:
			ready = t.Sub(t0)
		case <-time.After(2 * time.Second):
		}
	}
	return first, ready, nil
}

func (e *env) runStartup() error {
	cfg, err := e.airelayConfig("s_", "")
	if err != nil {
		return err
	}
	uci := filepath.Join(e.dir, "startup.uci")
	if err := os.WriteFile(uci, []byte(cfg), 0o600); err != nil {
		return err
	}
	abs, _ := filepath.Abs(e.o.airelay)
	type prog struct {
		row   *StartupRow
		argv  []string
		env   []string
		addr  string
		req   string
		ready string
		rdy   []float64
	}
	models := "GET /openai/v1/models HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
	progs := []*prog{{row: &StartupRow{Program: "airelay"}, argv: []string{abs, "run", "--config", uci},
		env: []string{"GOMAXPROCS=1", "SSL_CERT_FILE=" + filepath.Join(e.dir, "ca.pem")}, addr: e.addr("s_air_http"), req: models, ready: "msg=ready"}}
	if bin, ok := lookPath("nginx"); ok {
		conf, err := e.nginxConf("startup-nginx", "s_", 1)
		if err != nil {
			return err
		}
		progs = append(progs, &prog{row: &StartupRow{Program: "nginx"}, argv: []string{bin, "-p", e.dir, "-c", conf},
			addr: e.addr("s_ngx_http"), req: models})
	}
	if e.hasPK {
		req := "GET /v1/models HTTP/1.1\r\nHost: bench\r\n" + strings.Join(portkeyHeaders(e.addr("s_plain"), ""), "\r\n") + "\r\nConnection: close\r\n\r\n"
		progs = append(progs, &prog{row: &StartupRow{Program: "portkey"}, argv: e.portkeyArgv(e.port["s_pk_http"]), env: portkeyEnv,
			addr: e.addr("s_pk_http"), req: req})
	}
	// One unmeasured start each: page cache, the dynamic loader's cache.
	for _, p := range progs {
		e.startOnce(p.argv, p.env, p.addr, p.req, p.ready)
	}
	for range e.p.StartupRuns {
		for _, p := range progs {
			d, r, err := e.startOnce(p.argv, p.env, p.addr, p.req, p.ready)
			if err != nil {
				p.row.Errors++
				log.Printf("%s startup: %v", p.row.Program, err)
				continue
			}
			p.row.Runs = append(p.row.Runs, float64(d.Microseconds())/1e3)
			if r > 0 {
				p.rdy = append(p.rdy, float64(r.Microseconds())/1e3)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The floor: fork+exec+exit of /bin/true, started the same way.
	floor := &StartupRow{Program: "exec-floor"}
	for range e.p.StartupRuns {
		cmd := exec.Command("/bin/true")
		t0 := time.Now()
		if err := startPinned(cmd, e.p.ProxyCPUs); err != nil {
			floor.Errors++
			continue
		}
		cmd.Wait()
		floor.Runs = append(floor.Runs, float64(time.Since(t0).Microseconds())/1e3)
	}
	e.res.Startup = &StartupSection{}
	for _, p := range append(progs, &prog{row: floor}) {
		r := p.row
		r.MedianMs, r.P90Ms = median(r.Runs), pct(r.Runs, .9)
		if len(r.Runs) > 0 {
			r.MinMs = pct(r.Runs, 0)
		}
		r.ReadyMs = median(p.rdy)
		log.Printf("%-8s exec → first answer: median %.1f ms, min %.1f, p90 %.1f (%d runs); ready line %.1f ms",
			r.Program, r.MedianMs, r.MinMs, r.P90Ms, len(r.Runs), r.ReadyMs)
		e.res.Startup.Rows = append(e.res.Startup.Rows, r)
	}
	return nil
}
