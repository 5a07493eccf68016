// Package ipk writes OpenWrt packages (.ipk) the way OpenWrt's scripts/ipkg-build does, so that
// opkg on OpenWrt 23.05 and 24.10 installs them like feed packages:
//
//	outer gzip'd tar (GNU format):  ./debian-binary  ./data.tar.gz  ./control.tar.gz
//	debian-binary:                  "2.0\n"
//	data.tar.gz, control.tar.gz:    GNU tar, "./"-relative names sorted per directory,
//	                                owner 0/0 with no user or group names, one fixed mtime
//	control:                        Package, Version, Depends, …, Installed-Size, Description
//
//	p := &ipk.Package{Control: ipk.Control{Package: "airelay", Version: "0.1.0-r1", Architecture: "x86_64", Description: "…"}}
//	p.AddFile("/usr/sbin/airelay", 0o755, bin)
//	p.Conffiles = []string{"/etc/config/airelay"}
//	err := p.Write(w)
//
// The output is a function of the Package only (no clock, no host user names), so two builds of
// the same inputs are byte-identical. This package does not read files or know about airelay.
package ipk

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Control holds the fields of the control file, written in the order OpenWrt's
// include/package-ipkg.mk writes them. Empty optional fields are left out.
type Control struct {
	Package         string
	Version         string
	Depends         []string
	Source          string
	SourceName      string
	License         string
	Section         string
	SourceDateEpoch int64 // 0: left out
	URL             string
	Maintainer      string
	RequireUser     string // "user:group", created by default_postinst before the service starts
	Architecture    string
	Description     string // first line is the summary; later lines are indented on output
}

// File is one entry of data.tar.gz. Exactly one of Data, Link or Dir is meaningful.
type File struct {
	Path string      // absolute, as installed: "/usr/sbin/airelay"
	Mode fs.FileMode // permission bits (0o755…)
	Data []byte
	Link string // symlink target
	Dir  bool
}

// Package is everything an .ipk holds.
type Package struct {
	Control   Control
	Files     []File
	Conffiles []string          // absolute paths of files opkg keeps when the user changed them
	Scripts   map[string][]byte // postinst, prerm, preinst, postrm, postinst-pkg, prerm-pkg: mode 0755
	MTime     time.Time         // every entry's mtime (SOURCE_DATE_EPOCH); zero: the Unix epoch
}

// AddFile adds a regular file.
func (p *Package) AddFile(name string, mode fs.FileMode, data []byte) {
	p.Files = append(p.Files, File{Path: name, Mode: mode, Data: data})
}

// AddLink adds a symlink.
func (p *Package) AddLink(name, target string) {
	p.Files = append(p.Files, File{Path: name, Mode: 0o777, Link: target})
}

// FileName is the name ipkg-build gives the package: name_version_arch.ipk.
func (c *Control) FileName() string {
	return c.Package + "_" + c.Version + "_" + c.Architecture + ".ipk"
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*$`)
	archRE    = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
	versionRE = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$`)
)

// ValidVersion reports whether v has the form opkg compares: [epoch:]upstream[-release] with
// upstream starting with a digit, and at most one "-". "0.1.0-r12" is; "v0.1.0" and
// "0.1.0-3-gabc" are not.
func ValidVersion(v string) bool {
	return versionRE.MatchString(v)
}

func (c *Control) validate() error {
	switch {
	case !nameRE.MatchString(c.Package):
		return fmt.Errorf("ipk: package name %q: want only [a-z0-9+.-]", c.Package)
	case !ValidVersion(c.Version):
		return fmt.Errorf("ipk: %s: version %q is not an opkg version: want [epoch:]N…[-release]", c.Package, c.Version)
	case !archRE.MatchString(c.Architecture):
		return fmt.Errorf("ipk: %s: architecture %q", c.Package, c.Architecture)
	case strings.TrimSpace(c.Description) == "":
		return fmt.Errorf("ipk: %s: description is empty", c.Package)
	}
	for _, d := range c.Depends {
		if strings.ContainsAny(d, ",\n") || strings.TrimSpace(d) == "" {
			return fmt.Errorf("ipk: %s: dependency %q", c.Package, d)
		}
	}
	return nil
}

// text renders the control file. installed is the Installed-Size value.
func (c *Control) text(installed int64) []byte {
	var b bytes.Buffer
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	field("Package", c.Package)
	field("Version", c.Version)
	field("Depends", strings.Join(c.Depends, ", "))
	field("Source", c.Source)
	field("SourceName", c.SourceName)
	field("License", c.License)
	field("Section", c.Section)
	if c.SourceDateEpoch != 0 {
		field("SourceDateEpoch", strconv.FormatInt(c.SourceDateEpoch, 10))
	}
	field("URL", c.URL)
	field("Maintainer", c.Maintainer)
	field("Require-User", c.RequireUser)
	field("Architecture", c.Architecture)
	field("Installed-Size", strconv.FormatInt(installed, 10))
	lines := strings.Split(strings.TrimSpace(c.Description), "\n")
	fmt.Fprintf(&b, "Description: %s\n", strings.TrimSpace(lines[0]))
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if l == "" {
			l = "." // an empty continuation line would end the stanza
		}
		fmt.Fprintf(&b, " %s\n", l)
	}
	return b.Bytes()
}

// Write writes the .ipk to w.
func (p *Package) Write(w io.Writer) error {
	if err := p.Control.validate(); err != nil {
		return err
	}
	mtime := p.MTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	mtime = mtime.UTC().Truncate(time.Second)

	data, err := p.dataTar(mtime)
	if err != nil {
		return err
	}
	installed := int64(len(data)) // ipkg-build: Installed-Size is the uncompressed data.tar size
	dataGz, err := gz(data)
	if err != nil {
		return err
	}

	var ctl []entry
	ctl = append(ctl, entry{name: "control", mode: 0o644, data: p.Control.text(installed)})
	if len(p.Conffiles) > 0 {
		cf := append([]string(nil), p.Conffiles...)
		sort.Strings(cf)
		for _, c := range cf {
			if !p.hasRegular(c) {
				return fmt.Errorf("ipk: %s: conffile %s is not a regular file in the package", p.Control.Package, c)
			}
		}
		ctl = append(ctl, entry{name: "conffiles", mode: 0o644, data: []byte(strings.Join(cf, "\n") + "\n")})
	}
	for name, s := range p.Scripts {
		switch name {
		case "preinst", "postinst", "prerm", "postrm", "postinst-pkg", "prerm-pkg":
		default:
			return fmt.Errorf("ipk: %s: unknown maintainer script %q", p.Control.Package, name)
		}
		ctl = append(ctl, entry{name: name, mode: 0o755, data: s})
	}
	ctlTar, err := tarOf(tree(ctl), mtime)
	if err != nil {
		return err
	}
	ctlGz, err := gz(ctlTar)
	if err != nil {
		return err
	}

	// The outer members in ipkg-build's order (given on its command line, so not sorted).
	outer, err := tarOf([]entry{
		{name: "debian-binary", mode: 0o644, data: []byte("2.0\n")},
		{name: "data.tar.gz", mode: 0o644, data: dataGz},
		{name: "control.tar.gz", mode: 0o644, data: ctlGz},
	}, mtime)
	if err != nil {
		return err
	}
	outerGz, err := gz(outer)
	if err != nil {
		return err
	}
	_, err = w.Write(outerGz)
	return err
}

func (p *Package) hasRegular(name string) bool {
	for _, f := range p.Files {
		if f.Path == name && !f.Dir && f.Link == "" {
			return true
		}
	}
	return false
}

// entry is one tar member, named relative to "./" without the prefix.
type entry struct {
	name string
	mode fs.FileMode
	data []byte
	link string
	dir  bool
}

func (p *Package) dataTar(mtime time.Time) ([]byte, error) {
	var es []entry
	seen := map[string]bool{}
	for _, f := range p.Files {
		if !strings.HasPrefix(f.Path, "/") || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("ipk: %s: path %q: want a clean absolute path", p.Control.Package, f.Path)
		}
		name := f.Path[1:]
		if seen[name] {
			return nil, fmt.Errorf("ipk: %s: %s added twice", p.Control.Package, f.Path)
		}
		seen[name] = true
		es = append(es, entry{name: name, mode: f.Mode.Perm(), data: f.Data, link: f.Link, dir: f.Dir})
	}
	return tarOf(tree(es), mtime)
}

// tree adds the parent directories (mode 0755) that are not listed and orders the entries the
// way GNU tar --sort=name walks "." : "./" first, then each directory followed by its contents,
// names compared bytewise within a directory.
func tree(es []entry) []entry {
	have := map[string]bool{}
	for _, e := range es {
		if e.dir {
			have[e.name] = true
		}
	}
	out := append([]entry(nil), es...)
	for _, e := range es {
		for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
			if !have[d] {
				have[d] = true
				out = append(out, entry{name: d, mode: 0o755, dir: true})
			}
		}
	}
	out = append(out, entry{name: ".", mode: 0o755, dir: true})
	sort.Slice(out, func(i, j int) bool { return walkLess(out[i].name, out[j].name) })
	return out
}

// walkLess orders paths as a depth-first walk with sorted directory listings.
func walkLess(a, b string) bool {
	if a == "." {
		return b != "."
	}
	if b == "." {
		return false
	}
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

func tarOf(es []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{
			Name:    "./" + e.name,
			Mode:    int64(e.mode.Perm()),
			ModTime: mtime,
			Format:  tar.FormatGNU,
		}
		switch {
		case e.name == ".":
			h.Name = "./"
			h.Typeflag = tar.TypeDir
		case e.dir:
			h.Name += "/"
			h.Typeflag = tar.TypeDir
		case e.link != "":
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.link
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("ipk: %s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// GzipCommand, when set, is a gzip program that compresses in place of compress/gzip, run as
// "gzip -9 -n". GNU gzip also takes 3-byte matches, which Go's encoder (4-byte hashes) leaves:
// the mipsel ipk comes out about 43 KB (1.4%) smaller, which is flash on a router. Either way
// the bytes depend on the input only.
var GzipCommand string

// gz compresses like gzip -n: no name, no timestamp, so the bytes depend on the input only.
func gz(b []byte) ([]byte, error) {
	if GzipCommand != "" {
		cmd := exec.Command(GzipCommand, "-9", "-n", "-c")
		cmd.Stdin = bytes.NewReader(b)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s -9 -n: %v: %s", GzipCommand, err, bytes.TrimSpace(errb.Bytes()))
		}
		return out.Bytes(), nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// IndexStanza is the stanza of a feed's Packages file for the .ipk file named name with the
// bytes file, as OpenWrt's scripts/ipkg-make-index.sh writes it: the package's control file with
// Filename, Size and SHA256sum inserted before Description, then an empty line.
func IndexStanza(name string, file []byte) ([]byte, error) {
	ctl, err := member(file, "./control.tar.gz")
	if err != nil {
		return nil, fmt.Errorf("ipk: %s: %w", name, err)
	}
	control, err := member(ctl, "./control")
	if err != nil {
		return nil, fmt.Errorf("ipk: %s: control.tar.gz: %w", name, err)
	}
	sum := sha256.Sum256(file)
	extra := fmt.Sprintf("Filename: %s\nSize: %d\nSHA256sum: %s\n", name, len(file), hex.EncodeToString(sum[:]))
	i := bytes.Index(control, []byte("\nDescription:"))
	if i < 0 && !bytes.HasPrefix(control, []byte("Description:")) {
		return nil, fmt.Errorf("ipk: %s: control has no Description", name)
	}
	var out bytes.Buffer
	out.Write(control[:i+1])
	out.WriteString(extra)
	out.Write(control[i+1:])
	if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// member is the content of the named member of a gzip'd tar.
func member(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("no %s", name)
		}
		if err != nil {
			return nil, err
		}
		if h.Name == name {
			return io.ReadAll(io.LimitReader(tr, 64<<20))
		}
	}
}

// OpenWrtScripts are the maintainer scripts OpenWrt's include/package-pack.mk puts in every .ipk:
// a postinst and a prerm that source the target's /lib/functions.sh and run default_postinst
// (the Require-User user, uci-defaults, then enable and start the init scripts; only enable
// against an offline root) and default_prerm (stop, and on removal disable, them), byte for byte
// as OpenWrt writes them; the package's own parts go beside them as postinst-pkg and prerm-pkg,
// which default_postinst and default_prerm run, and postrm as it is. Empty parts are left out.
func OpenWrtScripts(postinstPkg, prermPkg, postrm []byte) map[string][]byte {
	m := map[string][]byte{
		"postinst": []byte("#!/bin/sh\n[ \"${IPKG_NO_SCRIPT}\" = \"1\" ] && exit 0\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_postinst $0 $@\n"),
		"prerm":    []byte("#!/bin/sh\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_prerm $0 $@\n"),
	}
	for name, b := range map[string][]byte{"postinst-pkg": postinstPkg, "prerm-pkg": prermPkg, "postrm": postrm} {
		if len(b) > 0 {
			m[name] = b
		}
	}
	return m
}
