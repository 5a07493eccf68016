package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/airelay/airelay/src/internal/jsonw"
	"github.com/airelay/airelay/src/internal/service"
)

func init() {
	commands["history"] = command{"show the running daemon's usage per day, device and provider", runHistory}
}

func runHistory(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("history", stderr)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print the history document as JSON")
	days := fs.Int("days", 0, "last N days, today included (default: history_days)")
	device := fs.String("device", "", "only this device (its IP address)")
	addr := fs.String("addr", "", "status address (default: status_listen from the config)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *days < 0 || *days > 366 {
		fmt.Fprintln(stderr, "airelay history: --days: want 1 to 366")
		return exitConfig
	}
	q := url.Values{}
	if *days > 0 {
		q.Set("days", strconv.Itoa(*days))
	}
	if *device != "" {
		q.Set("device", *device)
	}
	body, code := getDaemon(*path, *addr, "/history?"+q.Encode(), stderr)
	if code != exitOK {
		return code
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		return exitOK
	}
	var h service.History
	if err := jsonw.Unmarshal(body, &h); err != nil {
		fmt.Fprintf(stderr, "airelay: the daemon's history is not valid: %v\n", err)
		return exitFail
	}
	printHistory(stdout, &h)
	return exitOK
}

func printHistory(w io.Writer, h *service.History) {
	fmt.Fprintf(w, "usage %s to %s (%d days)\n\n", h.From, h.To, h.Days)
	if len(h.Rows) == 0 {
		fmt.Fprintln(w, "no use recorded")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DAY\tDEVICE\tPROVIDER\tREQUESTS\tTOKENS IN\tTOKENS OUT\tUP\tDOWN\tDENIED\t")
	for _, r := range h.Rows {
		dev := r.Addr
		if r.Name != "" {
			dev += " (" + r.Name + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%d\t\n", r.Day, dev, r.Provider, r.Requests, r.TokensIn, r.TokensOut, size(r.BytesUp), size(r.BytesDown), r.Denied)
	}
	_ = tw.Flush()
}
