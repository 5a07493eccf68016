package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The LAN device's link, in 198.18.0.0/15 (RFC 2544: for benchmarks), so that it collides with
// no network of the machine's.
const (
	lanRouter = "198.18.254.1"
	lanDevice = "198.18.254.2"
	lanMAC    = "02:00:00:00:be:02"
	lanPrefix = "airbench-lan-"
)

// lanConfig names the LAN device by its MAC, so that every connection from it is decided on
// the MAC the router's kernel holds for its address, and moves airelay's listeners to the
// router's end of the LAN link.
func lanConfig(tlsPort, httpPort int) string {
	return fmt.Sprintf(`
config airelay 'main'
	option tls_listen '%s:%d'
	option http_listen '%s:%d'

config client 'lan'
	option name 'bench LAN device'
	list mac '%s'
`, lanRouter, tlsPort, lanRouter, httpPort, lanMAC)
}

// runLAN measures what a device on the LAN pays for each new connection, now that each is
// decided on the MAC the kernel holds at that moment (issue 19): relay handshakes and gateway
// new connections from a device in a network namespace behind a veth pair, whose MAC the
// router's kernel learnt by ARP, beside the same from the router's own address (no
// neighbour entry), through one airelay, in the same run. Root only.
func (e *env) runLAN() error {
	if os.Geteuid() != 0 {
		e.note("lan: needs root (a network namespace for the LAN device); skipped")
		return nil
	}
	if _, ok := lookPath("ip"); !ok {
		e.note("lan: needs the ip command (iproute2); skipped")
		return nil
	}
	sweepLAN()
	l, err := newLAN()
	if err != nil {
		return err
	}
	defer l.close()
	for _, k := range []string{"l_air_tls", "l_air_http", "l_air_dns", "l_air_status"} {
		e.port[k] = freePort()
	}
	// the gateway's upstream: the fake's first plain port (the gateway pools its connections
	// to it, so this section leaves next to no TIME_WAIT sockets there)
	e.port["l_plain"] = e.port["plain"]
	cfg, err := e.airelayConfig("l_", lanConfig(e.port["l_air_tls"], e.port["l_air_http"]))
	if err != nil {
		return err
	}
	path := filepath.Join(e.dir, "airelay-lan.uci")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	abs, _ := filepath.Abs(e.o.airelay)
	p, err := start(e.dir, "airelay-lan", e.p.ProxyCPUs, []string{"GOMAXPROCS=1", "SSL_CERT_FILE=" + filepath.Join(e.dir, "ca.pem")}, abs, "run", "--config", path)
	if err != nil {
		return err
	}
	defer p.stop()
	tlsAddr := net.JoinHostPort(lanRouter, strconv.Itoa(e.port["l_air_tls"]))
	httpAddr := net.JoinHostPort(lanRouter, strconv.Itoa(e.port["l_air_http"]))
	for _, a := range []string{tlsAddr, httpAddr} {
		if err := waitTCP(p, a, 10*time.Second); err != nil {
			return err
		}
	}
	router, err := newNSDialer("")
	if err != nil {
		return err
	}
	defer router.close()
	device, err := newNSDialer(l.ns)
	if err != nil {
		return err
	}
	defer device.close()
	froms := []struct {
		name string
		d    *nsDialer
	}{
		{"from the router's own address (no neighbour entry)", router},
		{"from a LAN device (neighbour entry learnt by ARP, client by MAC)", device},
	}
	rows := make([]*LANRow, len(froms))
	firstErr := make([]error, len(froms))
	fail := func(i int, err error) {
		rows[i].Errors++
		if firstErr[i] == nil {
			firstErr[i] = err
		}
	}
	hs, gw := make([][]float64, len(froms)), make([][]float64, len(froms))
	cfgTLS := e.tlsConfig()
	for i, f := range froms {
		rows[i] = &LANRow{From: f.name}
		for range 20 { // warm-up, and the ARP exchange that puts the device in the table
			if c, _, err := f.d.handshake(tlsAddr, cfgTLS); err == nil {
				c.Close()
			}
			f.d.newConnRequest(httpAddr)
		}
	}
	for round := range e.p.Rounds {
		for k := range froms {
			i := (k + round) % len(froms)
			for range e.p.Handshakes {
				c, d, err := froms[i].d.handshake(tlsAddr, cfgTLS)
				if err != nil {
					fail(i, err)
					continue
				}
				c.Close()
				hs[i] = append(hs[i], float64(d.Nanoseconds())/1e3)
				d, err = froms[i].d.newConnRequest(httpAddr)
				if err != nil {
					fail(i, err)
					continue
				}
				gw[i] = append(gw[i], float64(d.Nanoseconds())/1e3)
			}
		}
	}
	for i, r := range rows {
		r.HandshakeP50, r.HandshakeP99, r.Handshakes = pct(hs[i], .5), pct(hs[i], .99), len(hs[i])
		r.GatewayP50, r.GatewayP99, r.Requests = pct(gw[i], .5), pct(gw[i], .99), len(gw[i])
		log.Printf("lan %-62s relay handshake p50 %6.0fµs p99 %6.0fµs; gateway new connection p50 %6.0fµs p99 %6.0fµs (%d errors)",
			r.From, r.HandshakeP50, r.HandshakeP99, r.GatewayP50, r.GatewayP99, r.Errors)
		if firstErr[i] != nil {
			e.note(fmt.Sprintf("lan %s: %d errors, the first: %v", r.From, r.Errors, firstErr[i]))
		}
	}
	if mac := neighMAC(lanDevice); mac != lanMAC {
		e.note(fmt.Sprintf("lan: the router's neighbour entry for %s is %q, not %s", lanDevice, mac, lanMAC))
	}
	e.res.LAN = &LANSection{Rows: rows}
	return nil
}

// lanNet is the LAN device's namespace and the veth pair to it.
type lanNet struct{ ns, link string }

func newLAN() (*lanNet, error) {
	pid := os.Getpid()
	l := &lanNet{ns: fmt.Sprintf("%s%d", lanPrefix, pid), link: fmt.Sprintf("abl%d", pid)}
	steps := [][]string{
		{"netns", "add", l.ns},
		{"link", "add", l.link, "type", "veth", "peer", "name", "eth0", "netns", l.ns},
		{"addr", "add", lanRouter + "/24", "dev", l.link},
		{"link", "set", l.link, "up"},
		{"-n", l.ns, "link", "set", "lo", "up"},
		{"-n", l.ns, "link", "set", "eth0", "address", lanMAC},
		{"-n", l.ns, "addr", "add", lanDevice + "/24", "dev", "eth0"},
		{"-n", l.ns, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			l.close()
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return l, nil
}

// close removes the namespace, and with it the veth pair.
func (l *lanNet) close() {
	exec.Command("ip", "netns", "del", l.ns).Run()
	exec.Command("ip", "link", "del", l.link).Run()
}

// sweepLAN removes the namespaces of earlier runs that were killed before they could.
func sweepLAN() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], lanPrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[0], lanPrefix))
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			(&lanNet{ns: f[0], link: fmt.Sprintf("abl%d", pid)}).close()
		}
	}
}

// neighMAC is the router's neighbour entry for addr, as `ip neigh` shows it.
func neighMAC(addr string) string {
	out, _ := exec.Command("ip", "neigh", "show", addr).Output()
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// nsDialer opens TCP connections from a thread in a network namespace ("" = this one): the
// socket belongs to the namespace of the thread that creates it. Both rows dial through one,
// so both pay the same hand-over.
type nsDialer struct {
	req  chan string
	resp chan dialed
}

type dialed struct {
	c   net.Conn
	err error
}

func newNSDialer(ns string) (*nsDialer, error) {
	d := &nsDialer{req: make(chan string), resp: make(chan dialed)}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if ns != "" {
			f, err := os.Open("/var/run/netns/" + ns)
			if err != nil {
				ready <- err
				return
			}
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
			if err != nil {
				ready <- fmt.Errorf("setns %s: %w", ns, err)
				return
			}
		}
		ready <- nil
		for addr := range d.req {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			d.resp <- dialed{c, err}
		}
	}()
	return d, <-ready
}

func (d *nsDialer) close() { close(d.req) }

func (d *nsDialer) dial(addr string) (net.Conn, error) {
	d.req <- addr
	r := <-d.resp
	return r.c, r.err
}

// handshake is relay.go's handshake, dialled from d's namespace.
func (d *nsDialer) handshake(addr string, cfg *tls.Config) (*tls.Conn, time.Duration, error) {
	return handshakeVia(d.dial, addr, cfg)
}

// newConnRequest is a device's first gateway request on a new connection: connect, one
// GET of the models list (the gateway adds the router's key), the whole answer, close.
func (d *nsDialer) newConnRequest(addr string) (time.Duration, error) {
	t0 := time.Now()
	c, err := d.dial(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /openai/v1/models HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != 200 {
		err = fmt.Errorf("gateway: %s", res.Status)
	}
	return time.Since(t0), err
}
