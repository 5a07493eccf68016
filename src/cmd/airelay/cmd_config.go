package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/openwrt"
)

func init() {
	commands["version"] = command{"print the version", runVersion}
	commands["check"] = command{"validate the config; exit 2 when it is bad", runCheck}
	commands["print-config"] = command{"print the effective config (keys redacted)", runPrintConfig}
	commands["schema"] = command{"print every section and option airelay reads", runSchema}
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintln(stdout, "airelay", version)
	return exitOK
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	path := configFlag(fs)
	runAs := runAsFlag(fs)
	keysPath := fs.String("keys", "", "also check this UCI file of API keys (/etc/config/airelay_keys)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	t, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if errs := openwrt.PrivilegedPorts(t, *runAs, unprivilegedPortStart()); len(errs) > 0 {
		fmt.Fprintln(stderr, errors.Join(errs...))
		return exitConfig
	}
	if *keysPath != "" {
		keys, err := config.LoadKeys(*keysPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitConfig
		}
		for p := range keys {
			if t.Provider(p) == nil {
				fmt.Fprintf(stderr, "warning: %s: section '%s': no provider section has that name; its key is not used\n", *keysPath, p)
			}
		}
	}
	for _, w := range t.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	enabled := 0
	for _, p := range t.Providers {
		if p.Enabled {
			enabled++
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%d providers, %d enabled, %d clients)\n", t.Source, len(t.Providers), enabled, len(t.Clients))
	return exitOK
}

func runPrintConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("print-config", stderr)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of UCI")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	t, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if *asJSON {
		err = t.Effective().WriteJSON(stdout)
	} else {
		err = t.Effective().WriteUCI(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	return exitOK
}

func runSchema(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("schema", stderr)
	fs.Bool("json", true, "print JSON (the default)")
	md := fs.Bool("markdown", false, "print the documentation page (docs/config.md) instead")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *md {
		if err := config.WriteMarkdown(stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		return exitOK
	}
	if err := config.WriteSchemaJSON(stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	return exitOK
}
