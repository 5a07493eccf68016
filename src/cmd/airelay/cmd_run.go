package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/jsonw"
	"github.com/airelay/airelay/src/internal/logging"
	"github.com/airelay/airelay/src/internal/service"
	"github.com/airelay/airelay/src/internal/stats"
)

func init() {
	commands["run"] = command{"run the daemon (SIGHUP reloads the config, SIGTERM drains and stops)", runRun}
	commands["status"] = command{"show the running daemon's counters", runStatus}
}

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	path := configFlag(fs)
	logTarget := fs.String("log", "auto", "where logs go: stderr, journal (stderr with systemd's <N> level prefixes), syslog (/dev/log, daemon facility, a priority per level; the OpenWrt init script's choice) or syslog:PATH; auto is journal under systemd, else stderr")
	redirect := fs.String("redirect-state", "", "file in which the init script records whether the firewall redirect loaded; shown in status")
	statePath, runAs := configStateFlag(fs), runAsFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if err := logging.CheckTarget(*logTarget); err != nil {
		fmt.Fprintln(stderr, "airelay run: --log:", err)
		return exitConfig
	}
	err := service.Run(service.Options{
		Load:          func() (*config.Table, error) { return loadServed(*path, *statePath, *runAs) },
		Version:       version,
		Log:           stderr,
		LogTarget:     *logTarget,
		RedirectState: *redirect,
		FW4State:      fw4State(*redirect),
	})
	var ce *service.ConfigError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, err)
		return exitConfig
	case err != nil:
		fmt.Fprintln(stderr, "airelay:", err)
		return exitFail
	}
	return exitOK
}

// fw4State is fw4's state file, which the daemon checks beside the redirect state file the
// init script writes: it exists while the firewall runs (fw4 stop deletes it).
func fw4State(redirect string) string {
	if redirect == "" {
		return ""
	}
	return "/var/run/fw4.state"
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print the status document as JSON")
	addr := fs.String("addr", "", "status address (default: status_listen from the config)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	body, code := getDaemon(*path, *addr, "/status", stderr)
	if code != exitOK {
		return code
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		return exitOK
	}
	var st stats.Status
	if err := jsonw.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "airelay: the daemon's status is not valid: %v\n", err)
		return exitFail
	}
	printStatus(stdout, &st)
	return exitOK
}

// getDaemon GETs path from the running daemon's status listener (addr, or status_listen of
// the config at configPath) and returns the body; on failure it has said why on stderr and
// returns the exit code.
func getDaemon(configPath, addr, path string, stderr io.Writer) ([]byte, int) {
	if addr == "" {
		t, err := loadConfig(configPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, exitConfig
		}
		if t.Main.StatusListen == "" {
			fmt.Fprintln(stderr, "airelay: status_listen is empty in", t.Source, "so the daemon serves no status")
			return nil, exitFail
		}
		addr = dialable(t.Main.StatusListen)
	}
	status, body, err := stats.Get(addr, path, 5*time.Second, 64<<20)
	if err != nil && status == 0 {
		fmt.Fprintf(stderr, "airelay is not running or not reachable at %s: %v\n", addr, err)
		return nil, exitFail
	}
	if err != nil || status != 200 {
		what := strings.TrimPrefix(strings.SplitN(path, "?", 2)[0], "/")
		if err != nil {
			fmt.Fprintf(stderr, "airelay: %s from %s: %v\n", what, addr, err)
		} else {
			fmt.Fprintf(stderr, "airelay: %s from %s: status %d: %s\n", what, addr, status, bytes.TrimSpace(body))
		}
		if status == 400 {
			return nil, exitConfig
		}
		return nil, exitFail
	}
	return body, exitOK
}

// dialable turns a listen address into one a client can dial (a wildcard host → loopback).
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	} else if host == "::" {
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

func printStatus(w io.Writer, st *stats.Status) {
	fmt.Fprintf(w, "airelay %s, up %s, config %s (generation %d)\n", st.Version, time.Duration(st.UptimeSeconds)*time.Second, st.Config.Source, st.Config.Generation)
	if st.Config.State != "" && st.Config.State != "current" {
		// the config on disk does not pass: say what serves instead, and why, first
		fmt.Fprintf(w, "config state: %s: %s\n", st.Config.State, st.Config.Message)
	}
	if st.Config.LastError != "" && !strings.Contains(st.Config.Message, st.Config.LastError) {
		fmt.Fprintf(w, "last reload FAILED (previous config serving): %s\n", st.Config.LastError)
	}
	if st.Disabled {
		fmt.Fprintln(w, "SWITCHED OFF (option enabled '0'): nothing is relayed; the gateway answers 503 disabled")
	}
	roles := make([]string, 0, len(st.Listeners))
	for r := range st.Listeners {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	var ls []string
	for _, r := range roles {
		ls = append(ls, r+" "+st.Listeners[r])
	}
	fmt.Fprintf(w, "listening: %s\n", strings.Join(ls, ", "))
	if r := st.Redirect; r != nil {
		state := "active"
		if !r.Active {
			state = "NOT active"
		}
		if r.Reason != "" {
			state += ": " + r.Reason
		}
		fmt.Fprintf(w, "TLS redirect (LAN port 443): %s\n", state)
	}
	for _, n := range st.Networks {
		line := "network " + n.Name
		if n.Device != "" {
			line += " (" + n.Device + ")"
		}
		switch {
		case n.Served:
			line += ": served"
		case n.Mode == "passthrough":
			line += ": NOT served, passed through"
		default:
			line += ": NOT served, untouched"
		}
		if n.Reason != "" {
			line += ": " + n.Reason
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PROVIDER\tCONNS\tACTIVE\tREQUESTS\tDENIED\tERRORS\tUP\tDOWN\tTOKENS IN\tTOKENS OUT\t")
	for _, p := range st.Providers {
		if p.Conns+p.Requests+p.Denied == 0 && p.Active == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t\n", p.ID, p.Conns, p.Active, p.Requests, p.Denied, p.Errors, size(p.BytesUp), size(p.BytesDown), p.TokensIn, p.TokensOut)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "DEVICE\tCONNS\tACTIVE\tREQUESTS\tDENIED\tERRORS\tUP\tDOWN\tTOKENS IN\tTOKENS OUT\t")
	for _, d := range st.Devices {
		label := d.Addr
		if d.Network != "" {
			label += " [" + d.Network + "]"
		}
		if d.Name != "" {
			label += " (" + d.Name + ")"
		} else if d.MAC != "" {
			label += " " + d.MAC
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t\n", label, d.Conns, d.Active, d.Requests, d.Denied, d.Errors, size(d.BytesUp), size(d.BytesDown), d.TokensIn, d.TokensOut)
	}
	_ = tw.Flush()
}

func size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
