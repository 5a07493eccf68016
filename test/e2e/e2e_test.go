// Package e2e is the home-LAN end-to-end test (issue 7): a device, a router and the internet
// in network namespaces, with real programs throughout. The router runs airelay started the
// way files/airelay.init starts it (runtime-config, the dnsmasq conf-dir file and the fw4
// fragments the binary prints), a real dnsmasq as the LAN resolver and an fw4-shaped nftables
// ruleset; the devices run curl, dig and the official openai and @anthropic-ai/sdk clients with
// their default base URLs, and know nothing about airelay. See README.md for the topology and
// what each scenario proves.
//
// It needs root and `ip netns`, and runs only when AIRELAY_E2E=1 (`make e2e` sets it), so
// `go test ./...` stays unprivileged and `make test` runs it exactly once.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scenario is one numbered claim of issue 7.
type scenario struct {
	n     int
	title string
	run   func(s *sc)
}

// The order they run in: the faults (6) disturb the setup, so they go last.
var scenarios = []scenario{
	{1, "relay", relayScenario},
	{2, "dns", dnsScenario},
	{3, "web-ui", webUIScenario},
	{4, "deny", denyScenario},
	{5, "gateway", gatewayScenario},
	{9, "stream-usage", streamUsageScenario},
	{7, "egress", egressScenario},
	{12, "handover", handoverScenario},
	{6, "faults", faultScenario},
	{8, "home", homeScenario},
	{10, "mistakes", mistakesScenario},
	{11, "ipv6-quota", ipv6QuotaScenario},
	{13, "guest", guestScenario},
}

// sc is a running scenario: what it has proved so far, and why it failed.
type sc struct {
	t      *testing.T
	h      *home
	proved []string
	errs   []string
	parts  []string // results of sub-parts (scenario 6)
}

// prove records a fact the scenario established.
func (s *sc) prove(format string, args ...any) {
	s.proved = append(s.proved, fmt.Sprintf(format, args...))
}

func (s *sc) fatalf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	s.errs = append(s.errs, msg)
	s.t.Fatal(msg)
}

func (s *sc) errorf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	s.errs = append(s.errs, msg)
	s.t.Error(msg)
}

// part runs one part of a scenario as a subtest, so that a failed part does not hide the others.
func (s *sc) part(name string, f func(p *sc)) {
	p := &sc{h: s.h}
	start := time.Now()
	ok := s.t.Run(name, func(t *testing.T) {
		p.t = t
		defer s.h.under(t)()
		f(p)
	})
	took := dur(time.Since(start))
	if ok {
		s.parts = append(s.parts, fmt.Sprintf("[%s PASS %s: %s]", name, took, strings.Join(p.proved, "; ")))
	} else {
		s.parts = append(s.parts, fmt.Sprintf("[%s FAIL: %s]", name, firstLine(strings.Join(p.errs, "; "))))
		s.errs = append(s.errs, name+": "+strings.Join(p.errs, "; "))
	}
}

// dur rounds a duration for a person: to 10ms below a second, else to 100ms.
func dur(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		s = "failed (see the log above)"
	}
	return s
}

func TestE2E(t *testing.T) {
	if os.Getenv("AIRELAY_E2E") != "1" {
		t.Skip("the home-LAN end-to-end test runs with `make e2e` (root, ip netns); AIRELAY_E2E=1 runs it here")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, nftables")
	}
	var missing []string
	for _, prog := range []string{"ip", "nft", "dnsmasq", "dig", "curl", "node", "microsocks", "go"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	repo := repoRoot()
	for _, m := range []string{"openai", "@anthropic-ai/sdk"} {
		if _, err := os.Stat(filepath.Join(repo, "test/node/node_modules", m, "package.json")); err != nil {
			missing = append(missing, "test/node/node_modules/"+m)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing: %s (./.ci/deps installs them)", strings.Join(missing, ", "))
	}
	sweepStale(t)

	start := time.Now()
	// Its own temporary directory, named after the process like the namespaces, so that a later
	// run can remove it if this one is killed.
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", nsPrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	h := &home{t: t, repo: repo, dir: dir, procs: map[string]*proc{}}
	// An interrupted run (Ctrl-C, kill) still removes its namespaces and stops its programs.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	stopSig := make(chan struct{})
	go func() {
		select {
		case sig := <-sigc:
			fmt.Fprintf(os.Stderr, "e2e: %v: removing the namespaces and stopping the programs\n", sig)
			h.cleanup()
			os.Exit(1)
		case <-stopSig:
		}
	}()
	t.Cleanup(func() { signal.Stop(sigc); close(stopSig) })
	setupDone := false
	defer func() {
		if !setupDone && !t.Skipped() {
			fmt.Printf("\ne2e summary: the setup failed after %s (see above); no scenario ran:\n", dur(time.Since(start)))
			for n := 1; n <= len(scenarios); n++ {
				fmt.Printf("FAIL %d not run\n", n)
			}
		}
	}()
	h.up()
	setupDone = true
	setup := time.Since(start)
	t.Logf("setup: %s (namespaces %s)", setup.Round(time.Millisecond), strings.Join(h.namespaces(), " "))

	type outcome struct {
		n     int
		line  string
		fails bool
	}
	var results []outcome
	for _, sn := range scenarios {
		s := &sc{h: h}
		began := time.Now()
		ok := t.Run(fmt.Sprintf("%d-%s", sn.n, sn.title), func(t *testing.T) {
			s.t = t
			defer h.under(t)()
			sn.run(s)
		})
		took := dur(time.Since(began))
		what := strings.Join(append(s.proved, s.parts...), "; ")
		if ok {
			results = append(results, outcome{sn.n, fmt.Sprintf("PASS %d %-8s %6s  %s", sn.n, sn.title, took, what), false})
		} else {
			why := firstLine(strings.Join(s.errs, "; "))
			if len(s.parts) > 0 {
				why = strings.Join(s.parts, "; ")
			}
			results = append(results, outcome{sn.n, fmt.Sprintf("FAIL %d %-8s %6s  %s", sn.n, sn.title, took, why), true})
		}
	}
	if t.Failed() {
		t.Logf("programs' output:\n%s", h.logs())
	}
	sort.Slice(results, func(i, j int) bool { return results[i].n < results[j].n })
	fmt.Printf("\ne2e summary (setup %s, total %s):\n", dur(setup), dur(time.Since(start)))
	for _, r := range results {
		fmt.Println(r.line)
	}
}
