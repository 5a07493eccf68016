// Package service runs airelay: it loads the config, binds (or inherits from systemd) the
// listeners, wires the DNS interceptor, relay, gateway and status page to one atomic pointer to
// the current config table, and handles the lifecycle: SIGHUP reloads (a bad config keeps the
// old one serving), SIGTERM drains and stops, sd_notify tells systemd when it is ready.
//
// It owns no protocol logic: that lives in dnsserver, relay, gateway and stats.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/miekg/dns"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/dnsserver"
	"github.com/airelay/airelay/src/internal/egress"
	"github.com/airelay/airelay/src/internal/gateway"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/neigh"
	"github.com/airelay/airelay/src/internal/relay"
	"github.com/airelay/airelay/src/internal/resolve"
	"github.com/airelay/airelay/src/internal/stats"
)

// Options configure Run.
type Options struct {
	Load    func() (*config.Table, error) // reads the config; called at start and on each reload
	Version string
	Log     io.Writer // log output; nil → stderr
	// LogTarget is where logs go: auto, stderr, journal, syslog or syslog:PATH (package
	// logging); "" is auto. An unusable target falls back to Log with a warning.
	LogTarget string
	// RedirectState is the file where the init script says whether the firewall redirect
	// loaded (stats.ParseRedirect); read for each status request. "": not shown.
	RedirectState string
	// FW4State is fw4's state file (/var/run/fw4.state), which exists while the firewall runs:
	// without it the redirect is shown inactive whatever RedirectState says. "": not checked.
	FW4State string
	// Signals, when set, replaces the process signals (tests send SIGHUP/SIGTERM through it).
	Signals <-chan os.Signal
	// Ready, when set, is called once the listeners serve, with their addresses by role.
	Ready func(map[string]string)
	// Reloaded, when set, is called after each SIGHUP has been handled and its outcome
	// published (tests wait on it instead of polling).
	Reloaded func()
}

// Service is a running airelay.
type Service struct {
	opts  Options
	table atomic.Pointer[config.Table] // what the servers read; swapped first on reload
	pub   atomic.Pointer[published]    // what status shows; swapped once all of a reload is in place
	gen   uint64                       // configs applied; only Run's goroutine writes it
	level logging.LevelVar
	log   *logging.Logger
	home  *home // schedules, quotas, usage history, device names

	stats    *stats.Registry
	resolver *resolve.Resolver
	neigh    *neigh.Table
	relay    *relay.Relay
	gateway  *gateway.Gateway
	dns      *dnsserver.Handler

	mu        sync.Mutex
	bound     map[string]*binding // by spec key: the role, or role@device
	inherited *inherited
	netErrs   map[string]string // network → why its listener failed (bindAll)
}

// binding is one role's open listener(s).
type binding struct {
	addr      string
	device    string // SO_BINDTODEVICE; "" for none
	inherited bool
	stop      func(ctx context.Context) // stop accepting; in-flight work is the server's to drain
	actual    string                    // bound address, for logs and status
}

// published is one consistent view of the service for status: a reload replaces it whole,
// after the listeners have moved and the table is in place, so status never shows a
// generation with another generation's listeners.
type published struct {
	t         *config.Table
	gen       uint64
	loadedAt  time.Time
	listeners map[string]string
	lastErr   string          // the last failed or refused reload since the last good one
	fallback  config.Fallback // which config serves and why, as its loader said
}

// publish makes what is in place now the status, with lastErr.
func (s *Service) publish(lastErr string) {
	p := &published{t: s.table.Load(), gen: s.gen, loadedAt: time.Now(), listeners: s.addrs(), lastErr: lastErr}
	p.fallback = p.t.Fallback
	if old := s.pub.Load(); old != nil && old.gen == s.gen {
		p.loadedAt = old.loadedAt // the same config: loaded when it was
	}
	s.pub.Store(p)
}

// Roles, in start order.
var roles = []string{"status", "dns", "tls", "http"}

// Run starts airelay and blocks until it is told to stop. A config error at start returns a
// *ConfigError.
func Run(opts Options) error {
	t, err := opts.Load()
	if err != nil {
		return &ConfigError{err}
	}
	s := newService(opts, t)
	// Before the listeners and the ready line: a SIGHUP sent as soon as the daemon looks
	// ready (a reload right after start) must reload it, not end it by default action.
	sig := opts.Signals
	if sig == nil {
		c := make(chan os.Signal, 4)
		signal.Notify(c, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(c)
		sig = c
	}
	in, err := inheritSockets()
	if err != nil {
		return fmt.Errorf("sockets from systemd: %w", err)
	}
	s.inherited = in
	if err := s.bindAll(t, true); err != nil {
		s.stopAll(context.Background())
		return err
	}
	if left := in.unused(); len(left) > 0 {
		s.log.Warn("sockets from systemd match no configured listener; ignored", "sockets", left)
	}
	s.publish(t.Fallback.Refused)
	s.loadHistory(t)
	homeCtx, stopHome := context.WithCancel(context.Background())
	go s.runHome(homeCtx)
	s.logReady(t)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	stopWatchdog := s.watchdog()
	defer stopWatchdog()

	for v := range sig {
		if v == syscall.SIGHUP {
			s.reload()
			continue
		}
		break
	}
	stopHome()
	s.shutdown()
	return nil
}

// ConfigError is a config that could not be loaded at start (exit code 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func newService(opts Options, t *config.Table) *Service {
	out := opts.Log
	if out == nil {
		out = os.Stderr
	}
	s := &Service{opts: opts, stats: stats.New(), bound: map[string]*binding{}}
	var err error
	if s.log, err = logging.New(opts.LogTarget, out, &s.level); err != nil {
		s.log = logging.Text(out, &s.level)
		s.log.Warn("logging to stderr instead", "err", err)
	}
	s.resolver = &resolve.Resolver{Servers: func() []string { return s.table.Load().Main.Resolvers }}
	s.neigh = neigh.New()
	mac := func(a netip.Addr) net.HardwareAddr {
		m := s.neigh.Lookup(a)
		if m == nil && s.table.Load().HasMACRules() && s.log.Enabled(logging.LevelDebug) {
			// Lookup asked the kernel for this address just now (or within the second), so
			// rules naming MACs fail to match only for a device the router truly cannot see.
			s.log.Debug("neigh: no MAC for device after a fresh lookup; only IP rules and default_access apply", "client", a.String())
		}
		return m
	}
	s.home = newHome(s.stats, t)
	s.relay = &relay.Relay{Table: s.table.Load, Stats: s.stats, Dial: s.dialRelay, Direct: s.direct, MAC: mac, Guard: s.home.guard, Log: s.log}
	s.gateway = gateway.New(gateway.Options{Table: s.table.Load, Stats: s.stats, Dial: s.dial, MAC: mac, Guard: s.home.guard, Log: s.log})
	s.dns = &dnsserver.Handler{Table: s.table.Load, Log: s.log, Servers: s.resolver.Upstreams}
	s.apply(t)
	return s
}

// apply makes t the table the servers read. Status follows when publish is called.
func (s *Service) apply(t *config.Table) {
	s.table.Store(t)
	s.applyHome(t)
	s.gen++
	lvl, _ := logging.ParseLevel(t.Main.LogLevel) // the config checked it: info only if empty
	s.level.Set(lvl)
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := t.Main.MemoryLimit
		if limit <= 0 {
			limit = math.MaxInt64
		}
		debug.SetMemoryLimit(limit)
	}
	for _, w := range t.Warnings {
		s.log.Warn("config: " + w)
	}
	s.logFallback(t)
}

// logFallback says in the log (daemon.err on OpenWrt) when t serves instead of the config on
// disk.
func (s *Service) logFallback(t *config.Table) {
	switch f := t.Fallback; {
	case f.Refused != "":
		s.log.Error("config: reload refused: the config does not pass, the config in force keeps serving", "why", f.Refused)
	case f.State != "":
		s.log.Error("config: "+f.State+": "+f.Message, "state", f.State)
	}
}

// dial connects to a provider through its egress. Addresses written in the config (connect, or
// an upstream IP) are trusted; names are resolved upstream and private results refused unless
// allow_private.
func (s *Service) dial(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error) {
	return s.dialer(p, addr, false).DialContext(ctx, network, addr)
}

// dialRelay is dial for the relay, which turns keep-alive on itself, off the handshake's path
// (relay.Relay.Dial).
func (s *Service) dialRelay(ctx context.Context, p *config.Provider, network, addr string) (net.Conn, error) {
	return s.dialer(p, addr, true).DialContext(ctx, network, addr)
}

// direct is what the relay connects to itself for p: the dialer's addresses and interface
// (egress.Dialer.DirectAddrs).
func (s *Service) direct(ctx context.Context, p *config.Provider, network, addr string) ([]netip.AddrPort, string, bool, error) {
	return s.dialer(p, addr, true).DirectAddrs(ctx, network, addr)
}

// dialer is the egress dialer for a connection to p at addr.
func (s *Service) dialer(p *config.Provider, addr string, keepAliveLater bool) *egress.Dialer {
	return &egress.Dialer{
		Spec:           p.Egress,
		Timeout:        s.table.Load().Main.ConnectTimeout,
		Resolve:        s.resolver.LookupNetIP,
		AllowPrivate:   p.AllowPrivate || (p.Connect != "" && addr == p.Connect),
		KeepAliveLater: keepAliveLater,
	}
}

func listenAddrOf(t *config.Table, role string) string {
	switch role {
	case "status":
		return t.Main.StatusListen
	case "dns":
		return t.Main.DNSListen
	case "tls":
		return t.Main.TLSListen
	}
	return t.Main.HTTPListen
}

// spec is one listener the config asks for.
type spec struct {
	key     string // "tls", or "tls@br-guest" for a network's own listener
	role    string
	addr    string
	device  string // SO_BINDTODEVICE; "" for none
	network string // the runtime network the listener is for; "" for none
}

// listenSpecs lists the listeners t asks for: one per role, except the relay and the gateway
// when the runtime copy names the router's networks: one on each served network's device
// (the relay also on passed-through ones), so nothing that arrives on an unserved network's
// device, or the WAN, reaches them.
func listenSpecs(t *config.Table) []spec {
	var out []spec
	for _, role := range roles {
		addr := listenAddrOf(t, role)
		if addr == "" {
			continue
		}
		dev := listenDevice(t, addr)
		if (role == "tls" || role == "http") && dev == "" && len(t.Networks) > 0 && !loopbackAddr(addr) {
			seen := map[string]bool{}
			for _, n := range t.Networks {
				if !n.Serves() || n.Device == "" || seen[n.Device] || role == "http" && n.Mode != config.NetServed {
					continue
				}
				seen[n.Device] = true
				out = append(out, spec{key: role + "@" + n.Device, role: role, addr: addr, device: n.Device, network: n.Name})
			}
			continue
		}
		out = append(out, spec{key: role, role: role, addr: addr, device: dev})
	}
	return out
}

// bindAll opens every listener t asks for. At start a failure is fatal, except on one
// network's device (that network is reported in status, the others serve); on reload a
// listener whose address or device changed is rebound, a failed rebind keeps the old
// listener, and listeners t no longer asks for are closed.
func (s *Service) bindAll(t *config.Table, start bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	specs := listenSpecs(t)
	want := map[string]bool{}
	netErrs := map[string]string{}
	for _, sp := range specs {
		want[sp.key] = true
	}
	// Listeners no longer asked for go first: a device-less listener on a port holds it for
	// every device, so the per-network ones that replace it could not bind beside it.
	for key, b := range s.bound {
		if !want[key] && !b.inherited {
			b.stop(context.Background())
			delete(s.bound, key)
			s.log.Info("listener closed", "listener", key, "addr", b.actual)
		}
	}
	for _, sp := range specs {
		old := s.bound[sp.key]
		if old != nil && (old.addr == sp.addr || old.actual == sp.addr) && (old.device == sp.device || old.inherited) {
			old.addr = sp.addr
			continue
		}
		if old != nil && old.inherited {
			s.log.Warn("listener comes from systemd; change the socket unit to move it", "role", sp.role, "addr", old.actual, "configured", sp.addr)
			continue
		}
		if testHookBind != nil {
			testHookBind(sp.role)
		}
		b, err := s.bind(t, sp.role, sp.addr, sp.device)
		if err != nil && old != nil && errors.Is(err, syscall.EADDRINUSE) && samePort(old.actual, sp.addr) {
			// The same port named another way (":8443" → "0.0.0.0:8443"), or a host change on
			// one port: the old socket must go first. Connections already accepted are not
			// affected; if the new address still fails, the old one is bound again.
			old.stop(context.Background())
			if b, err = s.bind(t, sp.role, sp.addr, sp.device); err != nil {
				if back, rerr := s.bind(t, sp.role, old.addr, old.device); rerr == nil {
					s.bound[sp.key] = back
				} else {
					delete(s.bound, sp.key)
				}
				errs = append(errs, fmt.Errorf("%s: %s listen %s: %w", t.Source, sp.role, sp.addr, err))
				continue
			}
			old = nil
		}
		if err != nil {
			if sp.network != "" {
				// One network's device (gone since the init script looked): that network is
				// not served, and says so in status; the others are.
				if netErrs[sp.network] != "" {
					netErrs[sp.network] += "; "
				}
				netErrs[sp.network] += fmt.Sprintf("%s listener on %s: %v", sp.role, sp.device, err)
				s.log.Warn("listener on a network's device failed; that network is not served", "network", sp.network, "device", sp.device, "role", sp.role, "err", err)
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %s listen %s: %w", t.Source, sp.role, sp.addr, err))
			continue
		}
		if old != nil {
			old.stop(context.Background())
		}
		if prev := s.bound[sp.key]; prev != nil {
			s.log.Info("listener moved", "listener", sp.key, "from", prev.actual, "to", b.actual)
		}
		s.bound[sp.key] = b
	}
	s.netErrs = netErrs
	return errors.Join(errs...)
}

// testHookBind, when set by a test, runs before each listener is bound.
var testHookBind func(role string)

// listenDevice is the device a listener on addr is bound to: listen_device, except for a
// loopback address, which no other device can reach anyway (and which lo would not carry if
// bound elsewhere).
func listenDevice(t *config.Table, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "localhost" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return ""
	}
	return t.Main.ListenDevice
}

// loopbackAddr reports whether a listen address is on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback() || host == "localhost"
}

func samePort(a, b string) bool {
	_, pa, err1 := net.SplitHostPort(a)
	_, pb, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && pa == pb
}

func (s *Service) bind(t *config.Table, role, addr, device string) (*binding, error) {
	b := &binding{addr: addr}
	var ln net.Listener
	if s.inherited != nil {
		ln = s.inherited.takeStream(role, addr)
	}
	b.inherited = ln != nil // systemd binds it (BindToDevice= in the socket unit)
	// No TCP keep-alive probes toward LAN devices (Go turns them on for every accepted
	// connection: four setsockopt calls each): idle_timeout and write_timeout end what a device
	// left behind, as nginx and HAProxy do by default. Provider connections keep theirs (a NAT
	// on the WAN side may drop a quiet one).
	lc := net.ListenConfig{KeepAlive: -1}
	if !b.inherited {
		if b.device = device; b.device != "" {
			lc.Control = egress.BindToDevice(b.device)
		}
	}
	if ln == nil {
		var err error
		if ln, err = lc.Listen(context.Background(), "tcp", addr); err != nil {
			return nil, err
		}
	}
	b.actual = ln.Addr().String()
	switch role {
	case "tls":
		go func() {
			if err := s.relay.Serve(ln); err != nil {
				s.log.Error("relay stopped", "err", err)
			}
		}()
		b.stop = func(context.Context) { ln.Close() }
	case "http":
		go func() {
			if err := s.gateway.Serve(ln); err != nil && !errors.Is(err, gateway.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				s.log.Error("gateway stopped", "err", err)
			}
		}()
		b.stop = func(context.Context) { ln.Close() }
	case "status":
		pages := stats.Pages(s.Status)
		pages["/history"] = s.historyPage
		srv := stats.NewServer(pages)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("status listener stopped", "err", err)
			}
		}()
		b.stop = func(ctx context.Context) { _ = srv.Shutdown(ctx) }
	case "dns":
		var pc net.PacketConn
		if s.inherited != nil {
			pc = s.inherited.takePacket(role, addr)
		}
		if pc == nil {
			// UDP on the same port as the TCP listener just bound (port 0 in tests).
			var err error
			if pc, err = lc.ListenPacket(context.Background(), "udp", b.actual); err != nil {
				ln.Close()
				return nil, err
			}
		}
		us := dnsserver.NewUDPServer(s.dns, pc, 1232)
		ts := &dns.Server{Listener: ln, Handler: s.dns, ReadTimeout: 5 * time.Second}
		go func() { _ = us.ActivateAndServe() }()
		go func() { _ = ts.ActivateAndServe() }()
		b.stop = func(ctx context.Context) { _ = us.ShutdownContext(ctx); _ = ts.ShutdownContext(ctx) }
	}
	return b, nil
}

func (s *Service) logReady(t *config.Table) {
	addrs := s.addrs()
	enabled := 0
	for _, p := range t.Providers {
		if p.Enabled {
			enabled++
		}
	}
	args := []any{"version", s.opts.Version, "config", t.Source, "providers", enabled}
	for _, r := range roles {
		if a, ok := addrs[r]; ok {
			args = append(args, r, a)
		}
	}
	if t.Main.ListenDevice != "" {
		args = append(args, "device", t.Main.ListenDevice)
	}
	var served []string
	for _, n := range t.Networks {
		if n.Serves() {
			served = append(served, n.Name+"="+n.Device)
		}
	}
	if len(served) > 0 {
		args = append(args, "networks", strings.Join(served, ","))
	}
	s.log.Info("ready", args...)
	if s.opts.Ready != nil {
		s.opts.Ready(addrs)
	}
}

// addrs returns the bound address of each listener ("tls", "tls@br-guest"); a role whose
// listeners are all per network also appears under its own name, with the first device's.
func (s *Service) addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	keys := make([]string, 0, len(s.bound))
	for k, b := range s.bound {
		m[k] = b.actual
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if role, _, ok := strings.Cut(k, "@"); ok && m[role] == "" {
			m[role] = m[k]
		}
	}
	return m
}

// reload reads the config again. A bad one is logged and the old one keeps serving. The new
// config is published (status: its generation, its listeners) only once all of it is in
// place: the listeners moved first, then the table swapped.
func (s *Service) reload() {
	_, _ = daemon.SdNotify(false, "RELOADING=1\nMONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
	defer func() { _, _ = daemon.SdNotify(false, daemon.SdNotifyReady) }()
	if s.opts.Reloaded != nil {
		defer s.opts.Reloaded()
	}
	t, err := s.opts.Load()
	if err != nil {
		s.log.Error("reload failed; the previous config keeps serving", "err", err)
		s.publish(err.Error())
		return
	}
	if t.Fallback.Refused != "" {
		// The loader kept the config in force (the init script refused the one on disk):
		// nothing to swap, but status now says which config serves and why.
		s.logFallback(t)
		p := *s.pub.Load()
		p.lastErr, p.fallback = t.Fallback.Refused, t.Fallback
		s.pub.Store(&p)
		return
	}
	var lastErr string
	if err := s.bindAll(t, false); err != nil {
		lastErr = err.Error()
		s.log.Error("reload: a listener could not move; it stays where it was", "err", err)
	}
	s.apply(t)
	s.publish(lastErr)
	s.log.Info("reloaded", "config", t.Source, "generation", s.gen)
}

// shutdown stops accepting everywhere, lets open connections and streams finish until
// drain_timeout, then cuts what is left.
func (s *Service) shutdown() {
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	t := s.table.Load()
	s.log.Info("stopping", "drain_timeout", t.Main.DrainTimeout.String(), "relay_open", s.relay.Active())
	ctx, cancel := context.WithTimeout(context.Background(), t.Main.DrainTimeout)
	defer cancel()
	s.stopAll(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.relay.Shutdown(ctx) }()
	go func() { defer wg.Done(); _ = s.gateway.Shutdown(ctx) }()
	wg.Wait()
	if ctx.Err() != nil {
		s.log.Warn("drain deadline reached; open connections were cut")
	}
	s.saveHistory(t)
	s.log.Info("stopped")
	_ = s.log.Close() // the syslog socket; a no-op for stderr
}

func (s *Service) stopAll(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for r, b := range s.bound {
		b.stop(ctx)
		delete(s.bound, r)
	}
}

// watchdog pings systemd's watchdog at half its interval, when one is set.
func (s *Service) watchdog() func() {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(every / 2)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

func monotonicUsec() int64 {
	var ts syscall.Timespec
	// CLOCK_MONOTONIC = 1; systemd compares MONOTONIC_USEC with its own monotonic clock.
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return int64(ts.Sec)*1e6 + int64(ts.Nsec)/1e3 //nolint:unconvert // int32 on 32-bit targets
}

// Status is the /status document: what was last published, whole.
func (s *Service) Status() *stats.Status {
	pub := s.pub.Load()
	if pub == nil { // listeners still binding at start
		pub = &published{t: s.table.Load(), listeners: map[string]string{}}
	}
	t := pub.t
	infos := make([]stats.ProviderInfo, len(t.Providers))
	for i, p := range t.Providers {
		infos[i] = stats.ProviderInfo{ID: p.ID, Enabled: p.Enabled}
	}
	label := func(a netip.Addr, mac string) (string, string) {
		hw, _ := parseMAC(mac)
		if c := t.ClientFor(a, hw); c != nil {
			return c.ID, c.Name
		}
		return "", ""
	}
	ps, ds := s.stats.Snapshot(infos, label)
	s.decorate(t, ds)
	st := &stats.Status{
		Version:       s.opts.Version,
		UptimeSeconds: int64(time.Since(s.stats.Start).Seconds()),
		Disabled:      !t.Main.Enabled,
		Config: stats.ConfigStatus{
			Generation: pub.gen,
			Source:     t.Source,
			LoadedAt:   pub.loadedAt.UTC(),
			LastError:  pub.lastErr,
			State:      "current",
		},
		Listeners: pub.listeners,
		Providers: ps,
		Devices:   ds,
	}
	if f := pub.fallback; f.State != "" {
		st.Config.State, st.Config.Message = f.State, f.Message
	}
	var nets map[string]stats.RedirectStatus
	if s.opts.RedirectState != "" {
		if b, err := os.ReadFile(s.opts.RedirectState); err == nil {
			st.Redirect = stats.ParseRedirect(b)
			nets = stats.ParseRedirectNetworks(b)
			if s.opts.FW4State != "" {
				if _, err := os.Stat(s.opts.FW4State); os.IsNotExist(err) {
					// fw4 stop deletes its table and its state file, and runs no include.
					st.Redirect = &stats.RedirectStatus{Reason: "the firewall is stopped (" + s.opts.FW4State + " is gone): HTTPS to the router is not redirected"}
					for n := range nets {
						nets[n] = *st.Redirect
					}
				}
			}
		} else if !os.IsNotExist(err) {
			st.Redirect = &stats.RedirectStatus{Reason: "redirect state unreadable: " + err.Error()}
		}
	}
	st.Networks = s.networks(t, nets)
	return st
}

// networks is the networks part of /status: every LAN-side network the init script reported,
// whether it is served, and what is wrong with it (its plan's reason, a listener that failed,
// a redirect that is not live).
func (s *Service) networks(t *config.Table, redirect map[string]stats.RedirectStatus) []stats.NetworkStatus {
	if len(t.Networks) == 0 {
		return nil
	}
	s.mu.Lock()
	netErrs := s.netErrs
	s.mu.Unlock()
	out := make([]stats.NetworkStatus, 0, len(t.Networks))
	for _, n := range t.Networks {
		ns := stats.NetworkStatus{Name: n.Name, Device: n.Device, Zone: n.Zone, Served: n.Mode == config.NetServed, Mode: n.Mode.String()}
		if len(n.IPv4) > 0 {
			ns.IPv4 = n.IPv4[0].Addr().String()
		}
		if len(n.IPv6) > 0 {
			ns.IPv6 = n.IPv6[0].Addr().String()
		}
		why := []string{}
		if n.Reason != "" {
			why = append(why, n.Reason)
		}
		if e := netErrs[n.Name]; e != "" {
			ns.Served = false
			why = append(why, e)
		}
		if r, ok := redirect[n.Name]; ok && !r.Active && n.Serves() {
			why = append(why, "HTTPS to the router is not redirected: "+r.Reason)
		}
		ns.Reason = strings.Join(why, "; ")
		out = append(out, ns)
	}
	return out
}

// parseMAC reads a MAC as status shows it; "" is none.
func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	return net.ParseMAC(s)
}
