package apk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Field numbers of the package schema ("pckg") and the objects in it, as apk-tools numbers them.
const (
	pkgInfo    = 1
	pkgPaths   = 2
	pkgScripts = 3

	piName          = 1
	piVersion       = 2
	piHashes        = 3
	piDescription   = 4
	piArch          = 5
	piLicense       = 6
	piOrigin        = 7
	piMaintainer    = 8
	piURL           = 9
	piInstalledSize = 12
	piFileSize      = 13
	piDepends       = 15
	piProvides      = 16
	piTags          = 21
	piMax           = 22

	depName = 1

	aclMode  = 1
	aclUser  = 2
	aclGroup = 3

	fiName   = 1
	fiACL    = 2
	fiSize   = 3
	fiMTime  = 4
	fiHashes = 5
	fiTarget = 6

	diName  = 1
	diACL   = 2
	diFiles = 3

	ndxDescription = 1
	ndxPackages    = 2
)

// scriptNames are the scripts object's fields, field i+1 at index i.
var scriptNames = []string{"trigger", "pre-install", "post-install", "pre-deinstall", "post-deinstall", "pre-upgrade", "post-upgrade"}

// scriptSlot is the field number of a script, or 0.
func scriptSlot(name string) int {
	for i, n := range scriptNames {
		if n == name {
			return i + 1
		}
	}
	return 0
}

// Info is the package's metadata (the "info" object; `apk mkpkg --info key:value`).
type Info struct {
	Name        string
	Version     string // apk syntax: 1.2.3-r4
	Description string
	Arch        string // an OpenWrt package architecture, or "noarch"
	License     string
	Origin      string // the source package (OpenWrt: the feed Makefile's directory)
	Maintainer  string
	URL         string
	Depends     []string // package names
	Provides    []string // names, "name=version", or virtual names
	Tags        []string
}

// File is one entry of the package. Exactly one of Data, Link or Dir is meaningful.
type File struct {
	Path string      // absolute, as installed: "/usr/sbin/airelay"
	Mode fs.FileMode // permission bits
	Data []byte
	Link string
	Dir  bool
}

// Package is everything an .apk holds.
type Package struct {
	Info    Info
	Files   []File
	Scripts map[string][]byte // "post-install", "pre-deinstall", "post-upgrade", …
	MTime   time.Time         // every file's mtime (SOURCE_DATE_EPOCH); zero: the Unix epoch
}

// AddFile adds a regular file.
func (p *Package) AddFile(name string, mode fs.FileMode, data []byte) {
	p.Files = append(p.Files, File{Path: name, Mode: mode, Data: data})
}

// AddLink adds a symlink.
func (p *Package) AddLink(name, target string) {
	p.Files = append(p.Files, File{Path: name, Mode: 0o777, Link: target})
}

// FileName is the name OpenWrt's build gives the package (include/package-pack.mk, apk):
// name-version.apk, without the architecture, which is the feed directory's name.
func (i *Info) FileName() string { return i.Name + "-" + i.Version + ".apk" }

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+_.-]*$`)
	archRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
	// apk's version grammar: digits[.digits]…[letter][_suffix[digits]]…[~hash][-rN]
	versionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)
)

// ValidVersion reports whether v is a version apk accepts: "0.1.0-r12" is; "0.1.0-12",
// "v0.1.0" and "1:0.1.0-r1" (an opkg epoch) are not.
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

func (i *Info) validate() error {
	switch {
	case !nameRE.MatchString(i.Name):
		return fmt.Errorf("apk: package name %q: want [A-Za-z0-9][A-Za-z0-9+_.-]*", i.Name)
	case !ValidVersion(i.Version):
		return fmt.Errorf("apk: %s: version %q is not an apk version: want N[.N]…[_suffix][-rN], e.g. 1.2.3-r4", i.Name, i.Version)
	case !archRE.MatchString(i.Arch):
		return fmt.Errorf("apk: %s: architecture %q", i.Name, i.Arch)
	case strings.TrimSpace(i.Description) == "":
		return fmt.Errorf("apk: %s: description is empty", i.Name)
	}
	for _, d := range append(append([]string(nil), i.Depends...), i.Provides...) {
		if d == "" || strings.ContainsAny(d, " ,\t\n") {
			return fmt.Errorf("apk: %s: dependency or provide %q: want one name", i.Name, d)
		}
	}
	return nil
}

// dir is one directory of the package with the files directly in it.
type dir struct {
	name  string // relative, "" for the root
	mode  fs.FileMode
	files []File
}

// tree groups the files by directory: every directory on the way to a file is listed, the
// root first, then by name bytewise (how apk mkpkg walks a directory), files by name within.
func (p *Package) tree() ([]*dir, error) {
	dirs := map[string]*dir{"": {name: "", mode: 0o755}}
	seen := map[string]bool{}
	var ensure func(string) *dir
	ensure = func(name string) *dir {
		if d := dirs[name]; d != nil {
			return d
		}
		if parent := path.Dir(name); parent != "." {
			ensure(parent)
		}
		d := &dir{name: name, mode: 0o755}
		dirs[name] = d
		return d
	}
	for _, f := range p.Files {
		if !strings.HasPrefix(f.Path, "/") || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("apk: %s: path %q: want a clean absolute path", p.Info.Name, f.Path)
		}
		rel := f.Path[1:]
		if seen[rel] {
			return nil, fmt.Errorf("apk: %s: %s added twice", p.Info.Name, f.Path)
		}
		seen[rel] = true
		if f.Dir {
			ensure(rel).mode = f.Mode.Perm()
			continue
		}
		parent := path.Dir(rel)
		if parent == "." {
			parent = ""
		}
		d := ensure(parent)
		d.files = append(d.files, f)
	}
	var out []*dir
	for _, d := range dirs {
		sort.Slice(d.files, func(i, j int) bool { return d.files[i].Path < d.files[j].Path })
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// uniqueIDLen is the length of the package's own "hashes" field: SHA-256 of the ADB block
// (with this field zero) cut to 20 bytes, as apk mkpkg fills it in.
const uniqueIDLen = 20

// Write writes the .apk to w, signed with key when key is not nil.
func (p *Package) Write(w io.Writer, key *Key) error {
	adb, dirs, err := p.adb()
	if err != nil {
		return err
	}
	c := header(SchemaPackage)
	c = appendBlock(c, blockADB, adb)
	if key != nil {
		sig, err := key.signatureBlock(SchemaPackage, adb)
		if err != nil {
			return fmt.Errorf("apk: %s: sign: %w", p.Info.Name, err)
		}
		c = appendBlock(c, blockSig, sig)
	}
	for i, d := range dirs {
		for j, f := range d.files {
			if f.Link != "" || len(f.Data) == 0 {
				continue
			}
			hdr := binary.LittleEndian.AppendUint32(nil, uint32(i+1))
			hdr = binary.LittleEndian.AppendUint32(hdr, uint32(j+1))
			c = appendBlock(c, blockData, append(hdr, f.Data...))
		}
	}
	out, err := compress(c)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// adb builds the package's ADB block.
func (p *Package) adb() ([]byte, []*dir, error) {
	if err := p.Info.validate(); err != nil {
		return nil, nil, err
	}
	dirs, err := p.tree()
	if err != nil {
		return nil, nil, err
	}
	mtime := p.MTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	b := newBuilder()
	root := b.str("root")
	acl := func(mode fs.FileMode) Val {
		return b.object([]Val{0, aclMode: b.integer(uint64(mode.Perm())), aclUser: root, aclGroup: root})
	}
	var installed uint64
	var paths []Val
	for _, d := range dirs {
		var files []Val
		for _, f := range d.files {
			fv := make([]Val, fiTarget+1)
			fv[fiName] = b.str(path.Base(f.Path))
			size := uint64(len(f.Data))
			if f.Link != "" {
				target := binary.LittleEndian.AppendUint16(nil, 0o120000) // S_IFLNK
				fv[fiTarget] = b.blob(append(target, f.Link...))
				size = uint64(len(f.Link))
			} else {
				sum := sha256.Sum256(f.Data)
				fv[fiHashes] = b.blob(sum[:])
				installed += size
			}
			fv[fiMTime] = b.integer(uint64(mtime.Unix()))
			fv[fiSize] = b.integer(size)
			fv[fiACL] = acl(f.Mode)
			files = append(files, b.object(fv))
		}
		dv := make([]Val, diFiles+1)
		dv[diName] = b.str(d.name)
		dv[diACL] = acl(d.mode)
		dv[diFiles] = b.array(files)
		paths = append(paths, b.object(dv))
	}
	if installed == 0 && (len(p.Files) > 0 || len(p.Scripts) > 0) {
		installed = 1 // apk mkpkg never writes 0 for a package with content
	}

	info, idOff := p.Info.values(b, installed)
	pkg := make([]Val, pkgScripts+1)
	pkg[pkgInfo] = info
	pkg[pkgPaths] = b.array(paths)
	if len(p.Scripts) > 0 {
		sv := make([]Val, len(scriptNames)+1)
		for name := range p.Scripts {
			if scriptSlot(name) == 0 {
				return nil, nil, fmt.Errorf("apk: %s: unknown script %q", p.Info.Name, name)
			}
		}
		for i, name := range scriptNames { // in slot order: map order would move the bytes
			if s, ok := p.Scripts[name]; ok {
				sv[i+1] = b.blob(s)
			}
		}
		pkg[pkgScripts] = b.object(sv)
	}
	adb := b.finish(b.object(pkg))
	sum := sha256.Sum256(adb)
	copy(adb[idOff:idOff+uniqueIDLen], sum[:uniqueIDLen])
	return adb, dirs, nil
}

// values writes the info object with a zero unique id and returns it and the id's offset.
func (i *Info) values(b *builder, installed uint64) (Val, uint32) {
	v := make([]Val, piMax)
	v[piName] = b.str(i.Name)
	v[piVersion] = b.str(i.Version)
	v[piDescription] = b.str(strings.TrimSpace(i.Description))
	v[piArch] = b.str(i.Arch)
	v[piLicense] = b.str(i.License)
	v[piOrigin] = b.str(i.Origin)
	v[piMaintainer] = b.str(i.Maintainer)
	v[piURL] = b.str(i.URL)
	v[piInstalledSize] = b.integer(installed)
	v[piDepends] = depArray(b, i.Depends)
	v[piProvides] = depArray(b, i.Provides)
	var tags []Val
	for _, t := range i.Tags {
		tags = append(tags, b.str(t))
	}
	v[piTags] = b.array(tags)
	v[piHashes] = b.blobVal(make([]byte, uniqueIDLen), false)
	return b.object(v), v[piHashes].value() + 1
}

// depArray writes dependencies sorted by name with duplicates dropped (apk's
// adb_wa_sort_unique). A "name=version" is split into its name and version.
func depArray(b *builder, deps []string) Val {
	ds := append([]string(nil), deps...)
	sort.Strings(ds)
	var vals []Val
	for i, d := range ds {
		if i > 0 && ds[i-1] == d {
			continue
		}
		name, ver, hasVer := strings.Cut(d, "=")
		o := []Val{0, depName: b.str(name)}
		if hasVer {
			o = append(o, b.str(ver)) // depVersion; an "=" match is the default, left out
		}
		vals = append(vals, b.object(o))
	}
	return b.array(vals)
}

// OpenWrt adds what OpenWrt's include/package-pack.mk puts into every apk package under
// /lib/apk/packages/: name.rusers (the Require-User users default_postinst creates), name.list
// (every file and symlink, sorted; default_postinst runs the uci-defaults and enables the init
// scripts it lists, default_prerm stops and disables them), name.conffiles (the files sysupgrade
// keeps) and name.conffiles_static ("path sha256" of each as shipped, so sysupgrade can tell
// edited ones). Call it after every file is added.
func (p *Package) OpenWrt(conffiles []string, requireUser string) error {
	dir := "/lib/apk/packages/" + p.Info.Name
	if requireUser != "" {
		p.AddFile(dir+".rusers", 0o644, []byte(requireUser+"\n"))
	}
	var list []string
	data := map[string][]byte{}
	for _, f := range p.Files {
		if !f.Dir {
			list = append(list, f.Path)
		}
		if !f.Dir && f.Link == "" {
			data[f.Path] = f.Data
		}
	}
	sort.Strings(list)
	p.AddFile(dir+".list", 0o644, []byte(strings.Join(list, "\n")+"\n"))
	if len(conffiles) == 0 {
		return nil
	}
	var static strings.Builder
	for _, c := range conffiles {
		if !strings.HasPrefix(c, "/etc/") {
			// apk keeps a user's edits on upgrade only under /etc (its protected paths)
			return fmt.Errorf("apk: %s: conffile %s is not under /etc/, where apk keeps edited files", p.Info.Name, c)
		}
		b, ok := data[c]
		if !ok {
			return fmt.Errorf("apk: %s: conffile %s is not a regular file in the package", p.Info.Name, c)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&static, "%s %s\n", c, hex.EncodeToString(sum[:]))
	}
	p.AddFile(dir+".conffiles", 0o644, []byte(strings.Join(conffiles, "\n")+"\n"))
	p.AddFile(dir+".conffiles_static", 0o644, []byte(static.String()))
	return nil
}

// OpenWrtScripts are the maintainer scripts include/package-pack.mk generates for apk: every
// one sources the target's /lib/functions.sh and names the package; post-install creates the
// Require-User users and runs default_postinst (uci-defaults, then enable and start the init
// scripts; only enable against an offline root), then the package's own postinst part;
// post-upgrade is the same with PKG_UPGRADE=1 (start without enabling again); pre-deinstall runs
// default_prerm (stop and disable), then the package's own prerm part. postinstPkg and prermPkg
// may be empty; a "#!" line in them is dropped.
func OpenWrtScripts(name string, postinstPkg, prermPkg []byte) map[string][]byte {
	body := func(b []byte) string {
		var out []string
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "#!") && l != "" {
				out = append(out, l)
			}
		}
		s := strings.Join(out, "")
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		return s
	}
	head := `[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
export root="${IPKG_INSTROOT}"
export pkgname="` + name + `"
`
	install := `[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
` + head + `add_group_and_user
default_postinst
` + body(postinstPkg)
	return map[string][]byte{
		"post-install":  []byte("#!/bin/sh\n" + install),
		"post-upgrade":  []byte("#!/bin/sh\nexport PKG_UPGRADE=1\n" + install),
		"pre-deinstall": []byte("#!/bin/sh\n" + head + "default_prerm\n" + body(prermPkg)),
	}
}
