// Command mkipk builds an OpenWrt package from files on disk: an .ipk for opkg (OpenWrt 24.10 and
// before; see package ipk) or, with --format apk, an .apk for apk-tools v3 (OpenWrt 25.12; see
// package apk). The same flags describe the same tree for both. mk/ipk.mk and mk/apk.mk drive
// it; it knows nothing about airelay beyond what its flags say.
//
//	mkipk --out dist --name airelay --version 0.1.0-r5 --arch x86_64 \
//	    --description "…" --file dist/airelay-linux-amd64=/usr/sbin/airelay:0755 \
//	    --tree luci-app/htdocs=/www --link /usr/share/x.nft=/var/run/x.nft \
//	    --conffile /etc/config/airelay --postinst-pkg files/pkg/airelay.postinst-pkg
//	mkipk --format apk --sign-key key.pem … (the same flags)
//
// --postinst-pkg, --prerm-pkg and --postrm are a package's own scripts, what an OpenWrt feed
// Makefile defines as Package/<name>/postinst, /prerm and /postrm; both formats wrap them the way
// OpenWrt's include/package-pack.mk does (default_postinst and default_prerm around them), so
// the packages carry the scripts an OpenWrt SDK build of that Makefile gives.
//
// It prints the path and size of the package it wrote.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/airelay/airelay/src/internal/apk"
	"github.com/airelay/airelay/src/internal/ipk"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkipk:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("mkipk", flag.ContinueOnError)
	var c ipk.Control
	var files, trees, links, conffiles list
	out := fl.String("out", ".", "directory the .ipk is written to")
	fl.StringVar(&c.Package, "name", "", "package name")
	fl.StringVar(&c.Version, "version", "", "package version (opkg form: 0.1.0-r1)")
	fl.StringVar(&c.Architecture, "arch", "", "OpenWrt package architecture (mipsel_24kc, all…)")
	depends := fl.String("depends", "", "comma-separated dependencies")
	fl.StringVar(&c.Section, "section", "", "Section field")
	fl.StringVar(&c.License, "license", "", "License field")
	fl.StringVar(&c.Source, "source", "", "Source field (where the feed Makefile lives)")
	fl.StringVar(&c.SourceName, "source-name", "", "SourceName field")
	fl.StringVar(&c.URL, "url", "", "URL field")
	fl.StringVar(&c.Maintainer, "maintainer", "", "Maintainer field")
	fl.StringVar(&c.RequireUser, "require-user", "", "Require-User field (user:group default_postinst creates)")
	fl.StringVar(&c.Description, "description", "", "Description (first line: summary)")
	fl.Var(&files, "file", "SRC=DEST[:MODE] a file (mode defaults to the source's: 0755 if executable, else 0644)")
	fl.Var(&trees, "tree", "SRCDIR=DESTDIR every file under SRCDIR, installed under DESTDIR")
	fl.Var(&links, "link", "DEST=TARGET a symlink")
	fl.Var(&conffiles, "conffile", "a path opkg keeps when the user changed it (repeatable)")
	postinstPkg := fl.String("postinst-pkg", "", "the package's own postinst part (Package/<name>/postinst), run by default_postinst")
	prermPkg := fl.String("prerm-pkg", "", "the package's own prerm part (Package/<name>/prerm), run by default_prerm")
	postrm := fl.String("postrm", "", "the package's postrm (Package/<name>/postrm; apk: post-deinstall)")
	epoch := fl.Int64("epoch", -1, "mtime of every entry (default $SOURCE_DATE_EPOCH, else 0)")
	format := fl.String("format", "ipk", "ipk (opkg) or apk (apk-tools v3, OpenWrt 25.12)")
	signKey := fl.String("sign-key", "", "apk: PEM private key (ECDSA P-256 or RSA) to sign the package with")
	gzipCmd := fl.String("gzip", "auto", "gzip program for the archives (auto: gzip on PATH, else Go's compress/gzip; none: Go's)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	switch *gzipCmd {
	case "auto":
		if p, err := exec.LookPath("gzip"); err == nil {
			ipk.GzipCommand, apk.GzipCommand = p, p
		}
	case "none", "":
	default:
		ipk.GzipCommand, apk.GzipCommand = *gzipCmd, *gzipCmd
	}
	if *epoch < 0 {
		*epoch = 0
		if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH %q: %v", v, err)
			}
			*epoch = n
		}
	}
	for _, d := range strings.Split(*depends, ",") {
		if d = strings.TrimSpace(d); d != "" {
			c.Depends = append(c.Depends, d)
		}
	}
	if *epoch > 0 {
		c.SourceDateEpoch = *epoch
	}
	p := &ipk.Package{Control: c, Conffiles: conffiles, Scripts: map[string][]byte{}, MTime: time.Unix(*epoch, 0)}
	for _, f := range files {
		src, dest, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("--file %q: want SRC=DEST[:MODE]", f)
		}
		var mode fs.FileMode
		if d, m, ok := strings.Cut(dest, ":"); ok {
			n, err := strconv.ParseUint(m, 8, 32)
			if err != nil || n > 0o7777 {
				return fmt.Errorf("--file %q: mode %q is not octal", f, m)
			}
			dest, mode = d, fs.FileMode(n)
		}
		if err := addFile(p, src, dest, mode); err != nil {
			return err
		}
	}
	for _, t := range trees {
		src, dest, ok := strings.Cut(t, "=")
		if !ok {
			return fmt.Errorf("--tree %q: want SRCDIR=DESTDIR", t)
		}
		if err := addTree(p, src, dest); err != nil {
			return err
		}
	}
	for _, l := range links {
		dest, target, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--link %q: want DEST=TARGET", l)
		}
		p.AddLink(dest, target)
	}
	var parts [3][]byte // postinst-pkg, prerm-pkg, postrm
	for i, file := range []string{*postinstPkg, *prermPkg, *postrm} {
		if file == "" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		parts[i] = b
	}
	var buf bytes.Buffer
	var file string
	switch *format {
	case "ipk":
		if *signKey != "" {
			return errors.New("--sign-key is for --format apk")
		}
		p.Scripts = ipk.OpenWrtScripts(parts[0], parts[1], parts[2])
		if err := p.Write(&buf); err != nil {
			return err
		}
		file = c.FileName()
	case "apk":
		a, err := toAPK(p, parts)
		if err != nil {
			return err
		}
		var key *apk.Key
		if *signKey != "" {
			b, err := os.ReadFile(*signKey)
			if err != nil {
				return err
			}
			if key, err = apk.ParseKey(b); err != nil {
				return fmt.Errorf("--sign-key %s: %v", *signKey, err)
			}
		}
		if err := a.Write(&buf, key); err != nil {
			return err
		}
		file = a.Info.FileName()
	default:
		return fmt.Errorf("--format %q: want ipk or apk", *format)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	name := filepath.Join(*out, file)
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("%-52s %9d bytes  %6.2f MiB\n", name, buf.Len(), float64(buf.Len())/(1<<20))
	return nil
}

// toAPK turns the package the flags describe into the .apk OpenWrt 25.12's build would make of
// it (include/package-pack.mk): the same files, modes and owners; architecture "all" becomes
// "noarch"; the control fields become info fields; every package provides its virtual
// name-any; /lib/apk/packages/ gets the list, conffiles and users files; and the maintainer
// scripts are OpenWrt's defaults around the package's own parts (postinst-pkg, prerm-pkg), and
// its postrm as post-deinstall.
func toAPK(p *ipk.Package, parts [3][]byte) (*apk.Package, error) {
	c := p.Control
	arch := c.Architecture
	if arch == "all" {
		arch = "noarch"
	}
	a := &apk.Package{
		Info: apk.Info{
			Name: c.Package, Version: c.Version, Description: c.Description, Arch: arch,
			License: c.License, Origin: c.Source, Maintainer: c.Maintainer, URL: c.URL,
			Depends: c.Depends, Provides: []string{c.Package + "-any"},
		},
		MTime: p.MTime,
	}
	for _, f := range p.Files {
		a.Files = append(a.Files, apk.File{Path: f.Path, Mode: f.Mode, Data: f.Data, Link: f.Link, Dir: f.Dir})
	}
	if err := a.OpenWrt(p.Conffiles, c.RequireUser); err != nil {
		return nil, err
	}
	a.Scripts = apk.OpenWrtScripts(c.Package, parts[0], parts[1])
	if len(parts[2]) > 0 {
		// package-pack.mk: the postrm as it is, only blanks before its "#!" dropped
		s := parts[2]
		if t := bytes.TrimLeft(s, " \t\r\n"); bytes.HasPrefix(t, []byte("#!")) {
			s = t
		}
		a.Scripts["post-deinstall"] = s
	}
	return a, nil
}

func addFile(p *ipk.Package, src, dest string, mode fs.FileMode) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if mode == 0 {
		mode = 0o644
		if st.Mode()&0o111 != 0 {
			mode = 0o755
		}
	}
	p.AddFile(dest, mode, b)
	return nil
}

// addTree adds the regular files and symlinks under dir; directories come from their paths.
func addTree(p *ipk.Package, dir, dest string) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, file)
		if err != nil || rel == "." {
			return err
		}
		target := path.Join("/", dest, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(file)
			if err != nil {
				return err
			}
			p.AddLink(target, l)
			return nil
		case d.Type().IsRegular():
			return addFile(p, file, target, 0)
		}
		return errors.New(file + ": not a file, directory or symlink")
	})
}
