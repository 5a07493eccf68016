// Command airelay is a minimal-overhead AI API relay for home and edge routers: it answers DNS
// for the configured AI API names with the router's address, relays their TLS by SNI to the real
// providers, and serves a plain-HTTP gateway that keeps the API keys on the router.
//
// This file holds the flags and subcommands only; the work is in src/internal.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/airelay/airelay/src/internal/config"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// command is one subcommand. run gets the arguments after the subcommand's name and returns the
// process exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is filled by init functions in this package's files, one file per group.
var commands = map[string]command{}

const (
	exitOK     = 0
	exitFail   = 1 // runtime failure (daemon not reachable, bind failed…)
	exitConfig = 2 // bad config or bad usage
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitConfig
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "airelay: unknown command %q\n", args[0])
		usage(stderr)
		return exitConfig
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: airelay COMMAND [options]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'airelay COMMAND -h' for a command's options.")
}

// newFlags makes a FlagSet for a subcommand that prints errors to stderr and does not exit.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("airelay "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses and returns (exit code, done): done is true when the caller must return.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitConfig, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitConfig, true
	}
	return 0, false
}

// configFlag adds --config. An empty value means: /etc/config/airelay when it exists, else the
// embedded config.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "UCI config file (default "+config.DefaultPath+", or the embedded config when that file does not exist)")
}

// loadConfig reads the config named by --config.
func loadConfig(path string) (*config.Table, error) {
	if path == "" {
		if _, err := os.Stat(config.DefaultPath); errors.Is(err, os.ErrNotExist) {
			return config.LoadEmbedded()
		}
		path = config.DefaultPath
	}
	return config.Load(path)
}
